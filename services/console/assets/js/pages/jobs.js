// Jobs: the quantizer's and the trainer's jobs with state and progress;
// a job's page follows it live (WatchJob stream): progress, metrics, the
// training loss and validation curves, checkpoints, results, its log, and
// a cancel button.

import * as api from '../api.js';
import {lineChart} from '../chart.js';
import {failure, h, message, poller, replace} from '../dom.js';
import {ago, bytes, enumName, n, num, pct, ref, seconds, terminal, time} from '../format.js';
import {reportView} from '../report.js';

const KINDS = {trainer: 'Training', quantizer: 'Quantization'};

export function mount(main, params) {
  let view = null;
  const show = (p) => {
    if (view) view.stop();
    view = KINDS[p[0]] && p[1] ? detail(main, p[0], p[1]) : list(main);
  };
  show(params);
  return {
    stop: () => view && view.stop(),
    navigate(p) {
      show(p);
      return true;
    },
  };
}

function statePill(state) {
  const s = enumName(state);
  return h('span', {class: `pill pill-${s.replace(' ', '-')}`, 'data-state': s}, s);
}

function fraction(kind, job) {
  if (job.state === 'JOB_STATE_SUCCEEDED') return 1;
  if (kind === 'trainer') {
    const m = job.metrics || {};
    return n(m.total_steps) ? n(m.step) / n(m.total_steps) : 0;
  }
  return n(job.progress && job.progress.fraction);
}

function progressBar(kind, job, label) {
  const f = fraction(kind, job);
  return h('span', {class: 'progress-cell'},
    h('progress', {max: 1, value: f, 'aria-label': label}), h('span', {class: 'hint'}, ` ${pct(f, 0)}`));
}

function output(kind, job) {
  if (kind === 'trainer') {
    if ((job.results || []).length) return job.results.map((r, i) => [i ? ', ' : '', h('a', {href: `#/models/${encodeURIComponent(r.name)}/${r.version}`}, ref(r))]);
    const o = (job.request && job.request.output) || {};
    return o.name || 'trained';
  }
  if (job.result) return h('a', {href: `#/models/${encodeURIComponent(job.result.name)}/${job.result.version}`}, ref(job.result));
  const o = (job.request && job.request.output) || {};
  return o.name || '–';
}

function list(main) {
  const note = h('div', {'aria-live': 'polite'});
  const body = h('tbody');
  const table = h('div', {class: 'table-wrap'}, h('table', {class: 'data jobs'},
    h('caption', {class: 'sr'}, 'Quantization and training jobs, newest first'),
    h('thead', {}, h('tr', {}, ['Job', 'Kind', 'State', 'Progress', 'Output', 'Created', 'Took'].map((c) => h('th', {scope: 'col'}, c)))),
    body));
  replace(main,
    h('div', {class: 'page-head'}, h('h1', {}, 'Jobs'), h('p', {class: 'sub'}, 'Quantization and training jobs, refreshed every 2 s.')),
    note, table);
  const abort = new AbortController();
  const p = poller(async () => {
    const results = await Promise.allSettled(Object.keys(KINDS).map((k) => api.listJobs(k, abort.signal)));
    const failed = results.filter((r) => r.status === 'rejected' && r.reason.name !== 'AbortError').map((r) => r.reason);
    const errors = failed.map((e) => e.message);
    replace(note, failed.some((e) => e.unauthenticated) ? failure(failed[0]) : errors.length ? message('error', [...new Set(errors)].join(' ')) : null);
    if (failed.length === results.length && failed.every((e) => e.unauthenticated || e.forbidden)) p.stop();
    const rows = [];
    Object.keys(KINDS).forEach((kind, i) => {
      if (results[i].status === 'fulfilled') for (const job of results[i].value) rows.push({kind, job});
    });
    rows.sort((a, b) => (b.job.create_time || '').localeCompare(a.job.create_time || ''));
    if (!rows.length && !errors.length) {
      replace(body, h('tr', {}, h('td', {colspan: 7, class: 'hint'}, 'No jobs yet. Quantize a version from the Models page, or start training with bitnet train / the trainer API.')));
      return;
    }
    replace(body, rows.map(({kind, job}) => {
      const end = job.end_time ? Date.parse(job.end_time) : Date.now();
      const start = job.start_time ? Date.parse(job.start_time) : 0;
      return h('tr', {'data-job': job.job_id},
        h('th', {scope: 'row'}, h('a', {href: `#/jobs/${kind}/${encodeURIComponent(job.job_id)}`, class: 'mono'}, job.job_id)),
        h('td', {}, KINDS[kind]),
        h('td', {}, statePill(job.state)),
        h('td', {}, progressBar(kind, job, `Progress of ${job.job_id}`)),
        h('td', {}, output(kind, job)),
        h('td', {}, time(job.create_time)),
        h('td', {}, start ? seconds((end - start) / 1000) : '–'));
    }));
  }, 2000);
  return {stop: () => { p.stop(); abort.abort(); }};
}

function detail(main, kind, id) {
  const abort = new AbortController();
  const head = h('div', {class: 'page-head'},
    h('p', {class: 'crumbs'}, h('a', {href: '#/jobs'}, '← All jobs')),
    h('h1', {}, `${KINDS[kind]} job `, h('span', {class: 'mono'}, id)));
  const note = h('div', {'aria-live': 'polite'});
  const body = h('div', {class: 'job', 'data-kind': kind, 'data-job': id});
  replace(main, head, note, body);
  const v = kind === 'trainer' ? trainerView(kind, id) : quantizerView(kind, id);
  replace(body, v.el);
  const liveLines = []; // progress messages seen while watching
  let lastMsg = '';

  const apply = (job) => {
    const msg = job.progress && job.progress.message;
    if (msg && msg !== lastMsg) {
      lastMsg = msg;
      liveLines.push({time: job.progress.update_time || new Date().toISOString(), message: msg, live: true});
      if (liveLines.length > 200) liveLines.shift();
    }
    v.update(job, liveLines);
  };

  (async () => {
    for (let attempt = 0; !abort.signal.aborted; attempt++) {
      try {
        let last = null;
        for await (const job of api.watchJob(kind, id, abort.signal)) {
          last = job;
          apply(job);
          replace(note);
          attempt = 0;
        }
        if (last && terminal(last.state)) {
          // The stream's last message leaves out the report's linears only
          // while running; one GetJob has everything.
          apply(await api.getJob(kind, id, abort.signal));
          return;
        }
      } catch (e) {
        if (e.name === 'AbortError') return;
        if (e.code === 'NOT_FOUND') {
          replace(note, message('error', `${e.message}. The job may have been evicted.`));
          return;
        }
        if (e.unauthenticated || e.forbidden) {
          replace(note, failure(e));
          return;
        }
        replace(note, message('error', `${e.message} Retrying…`));
      }
      await new Promise((r) => setTimeout(r, Math.min(10000, 1000 * 2 ** attempt)));
    }
  })();

  v.onCancel = async (btn) => {
    if (!window.confirm(`Cancel job ${id}?`)) return;
    btn.disabled = true;
    try {
      apply(await api.cancelJob(kind, id));
    } catch (e) {
      replace(note, message('error', e.message));
      btn.disabled = false;
    }
  };
  return {stop: () => abort.abort()};
}

// common parts of both job views: state line, cancel, progress, log.
function frame(kind, id) {
  const state = h('span');
  const times = h('span', {class: 'meta'});
  const cancel = h('button', {type: 'button', class: 'btn btn-danger', id: 'job-cancel', hidden: true}, 'Cancel job');
  const prog = h('progress', {max: 1, value: 0, 'aria-label': 'Job progress', id: 'job-progress'});
  const progText = h('span', {class: 'progress-text'});
  const error = h('div');
  const log = h('ol', {class: 'log', 'aria-label': 'Job log'});
  const f = {
    state, times, cancel, prog, progText, error, log,
    top: h('div', {class: 'job-top'}, h('div', {class: 'job-state'}, state, times), cancel),
    progress: h('div', {class: 'job-progress'}, prog, progText),
    logBox: h('section', {class: 'log-box'}, h('h2', {}, 'Log'), log),
    view: null,
    update(job, live) {
      replace(state, statePill(job.state));
      const start = job.start_time ? Date.parse(job.start_time) : 0;
      const end = job.end_time ? Date.parse(job.end_time) : Date.now();
      replace(times, h('span', {}, `created ${time(job.create_time)}`), start ? h('span', {}, `ran ${seconds((end - start) / 1000)}`) : null,
        job.end_time ? h('span', {}, `ended ${ago(job.end_time)}`) : null);
      cancel.hidden = terminal(job.state) || job.state === 'JOB_STATE_CANCELLING';
      prog.value = fraction(kind, job);
      replace(error, job.error && job.error.message ? message(job.state === 'JOB_STATE_CANCELLED' ? 'info' : 'error', job.error.message) : null);
      const lines = [...(job.log || []), ...(job.log && job.log.length ? [] : live)];
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      replace(log, lines.length ? lines.map((l) => h('li', {}, h('time', {datetime: l.time || ''}, l.time ? new Date(l.time).toLocaleTimeString() : ''), ' ', l.message))
        : h('li', {class: 'hint'}, 'Nothing logged yet.'));
      if (atBottom) log.scrollTop = log.scrollHeight;
    },
  };
  cancel.addEventListener('click', () => f.view.onCancel && f.view.onCancel(cancel));
  return f;
}

function trainerView(kind, id) {
  const f = frame(kind, id);
  const metrics = h('dl', {class: 'kv kv-inline metrics'});
  const chart = lineChart({label: 'Training loss and validation loss by step', xLabel: 'step', yLabel: 'loss (nats/token)', height: 260, xMin: 0});
  chart.el.id = 'loss-chart';
  const req = h('dl', {class: 'kv'});
  const ckpts = h('div');
  const results = h('div');
  const points = new Map(); // step -> training loss
  const view = {
    el: h('div', {}, f.top, f.progress, f.error, metrics,
      h('section', {class: 'panel'}, h('h2', {}, 'Loss'), chart.el),
      h('div', {class: 'cols'}, h('section', {}, h('h2', {}, 'Request'), req), h('section', {}, h('h2', {}, 'Results'), results, h('h3', {}, 'Checkpoints'), ckpts)),
      f.logBox),
    update(job, live) {
      f.update(job, live);
      const m = job.metrics || {};
      for (const p of job.loss_curve || []) points.set(n(p.step), n(p.loss));
      if (n(m.step) > 0 && m.loss !== undefined) points.set(n(m.step), n(m.loss));
      const total = n(m.total_steps) || n(job.request && job.request.hyperparameters && job.request.hyperparameters.steps);
      replace(f.progText, `step ${num(m.step)} of ${num(total)}`, m.eta_seconds && !terminal(job.state) ? ` · ${seconds(m.eta_seconds)} left` : '');
      replace(metrics,
        h('dt', {}, 'Loss'), h('dd', {'data-metric': 'loss'}, m.loss !== undefined ? num(m.loss, 4) : '–'),
        h('dt', {}, 'Validation loss'), h('dd', {}, m.val_loss ? num(m.val_loss, 4) : '–'),
        h('dt', {}, 'Validation perplexity'), h('dd', {}, m.val_perplexity ? num(m.val_perplexity) : '–'),
        h('dt', {}, 'Learning rate'), h('dd', {}, m.learning_rate ? Number(m.learning_rate).toExponential(2) : '–'),
        h('dt', {}, 'Gradient norm'), h('dd', {}, m.grad_norm ? num(m.grad_norm) : '–'),
        h('dt', {}, 'Tokens/s'), h('dd', {}, num(m.tokens_per_second)),
        h('dt', {}, 'Tokens'), h('dd', {}, num(m.tokens)),
        h('dt', {}, 'Elapsed'), h('dd', {}, seconds(m.elapsed_seconds)));
      chart.update([
        {name: 'training loss', points: [...points].sort((a, b) => a[0] - b[0])},
        {name: 'validation loss', points: (job.validation || []).map((p) => [n(p.step), n(p.val_loss)]), dots: true},
      ]);
      if (total) chart.el.dataset.total = String(total);
      const r = job.request || {};
      const hp = r.hyperparameters || {};
      const model = r.model || {};
      const out = r.output || {};
      replace(req,
        h('dt', {}, 'Model'), h('dd', {}, model.parent ? `fine-tune of ${model.parent}` : `from scratch${configSummary(model.config_json)}`),
        h('dt', {}, 'Steps'), h('dd', {}, `${num(hp.steps)} × batch ${num(hp.batch_size)} × ${num(hp.seq_len)} tokens${n(hp.grad_accumulation) > 1 ? ` × ${hp.grad_accumulation}` : ''}`),
        h('dt', {}, 'Learning rate'), h('dd', {}, `${hp.learning_rate ? Number(hp.learning_rate).toExponential(1) : '–'}, ${enumName(hp.schedule)}`),
        h('dt', {}, 'Precision'), h('dd', {}, model.full_precision ? 'full precision' : 'ternary (QAT)'),
        h('dt', {}, 'Data'), h('dd', {class: 'mono'}, job.dataset_sha256 ? `${job.dataset_sha256.slice(0, 16)}…` : `${((r.dataset && r.dataset.sha256) || []).length} file(s)`),
        h('dt', {}, 'Output'), h('dd', {}, out.name || 'trained', out.export_gguf && out.export_gguf !== 'QUANT_TYPE_UNSPECIFIED' ? ` + GGUF ${enumName(out.export_gguf)}` : ''),
        h('dt', {}, 'Runner'), h('dd', {}, job.runner || '–'));
      replace(results, (job.results || []).length ? h('p', {}, output('trainer', job)) : h('p', {class: 'hint'}, terminal(job.state) ? 'No version written.' : 'Written when the job succeeds.'));
      replace(ckpts, (job.checkpoints || []).length
        ? h('div', {class: 'table-wrap'}, h('table', {class: 'data'}, h('thead', {}, h('tr', {}, ['Step', 'Val. loss', 'Size', 'Written'].map((c) => h('th', {scope: 'col'}, c)))),
          h('tbody', {}, job.checkpoints.map((c) => h('tr', {}, h('td', {class: 'num'}, num(c.step)), h('td', {class: 'num'}, c.val_loss ? num(c.val_loss, 4) : '–'), h('td', {class: 'num'}, bytes(c.size_bytes)), h('td', {}, time(c.create_time)))))))
        : h('p', {class: 'hint'}, 'None yet.'));
    },
  };
  f.view = view;
  return view;
}

function configSummary(cfg) {
  try {
    const c = JSON.parse(cfg || '{}');
    return c.hidden_size ? ` (hidden ${c.hidden_size}, ${c.num_hidden_layers} layer${c.num_hidden_layers === 1 ? '' : 's'}, vocab ${c.vocab_size})` : '';
  } catch {
    return '';
  }
}

function quantizerView(kind, id) {
  const f = frame(kind, id);
  const req = h('dl', {class: 'kv'});
  const result = h('div');
  const report = h('div');
  let reportKey = '';
  const view = {
    el: h('div', {}, f.top, f.progress, f.error,
      h('div', {class: 'cols'}, h('section', {}, h('h2', {}, 'Request'), req), h('section', {}, h('h2', {}, 'Result'), result)),
      h('section', {class: 'panel'}, h('h2', {}, 'Quality report'), report), f.logBox),
    update(job, live) {
      f.update(job, live);
      const p = job.progress || {};
      replace(f.progText, p.phase || '', p.total ? ` · ${num(p.done)} of ${num(p.total)} ${p.unit || ''}` : '', p.eta_seconds && !terminal(job.state) ? ` · ${seconds(p.eta_seconds)} left` : '');
      const r = job.request || {};
      const src = r.source || {};
      const cal = r.calibration || {};
      replace(req,
        h('dt', {}, 'Source'), h('dd', {}, src.model ? src.model : src.files ? `${(src.files.files || []).length} uploaded file(s)` : '–'),
        h('dt', {}, 'Target'), h('dd', {}, enumName(r.target)),
        h('dt', {}, 'Output'), h('dd', {}, ((r.output && r.output.name) || '–'), ((r.output && r.output.aliases) || []).map((a) => h('span', {class: 'chip'}, a))),
        h('dt', {}, 'Calibration'), h('dd', {}, cal.text ? `${cal.text.length} characters of text` : cal.text_sha256 ? 'uploaded text' : 'default text'));
      replace(result, job.result ? h('p', {}, output('quantizer', job)) : h('p', {class: 'hint'}, terminal(job.state) ? 'No version written.' : 'Written when the job succeeds.'));
      const rep = job.report;
      const k = rep ? `${(rep.linears || []).length}/${rep.perplexity_after}/${job.state}` : '';
      if (k !== reportKey) {
        reportKey = k;
        replace(report, rep ? reportView(rep) : h('p', {class: 'hint'}, 'Comes with the job’s evaluation.'));
      }
    },
  };
  f.view = view;
  return view;
}
