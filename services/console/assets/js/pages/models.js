// Models: the registry's models with their versions, aliases (movable),
// formats and sizes, the lineage tree across models (which job made which
// version from which parent) and, for quantized versions, the quantizer's
// quality report.

import * as api from '../api.js';
import {failure, field, h, message, replace} from '../dom.js';
import {bytes, count, family, format, n, num, ref, time} from '../format.js';
import {reportView} from '../report.js';

const key = (name, version) => `${name}@${version}`;

export function mount(main, params, ctx) {
  const list = h('nav', {class: 'model-list', 'aria-label': 'Models'});
  const detail = h('section', {class: 'model-detail', 'aria-live': 'polite', 'aria-busy': 'true'});
  const note = h('div');
  const refresh = h('button', {type: 'button', class: 'btn', onclick: () => load()}, 'Refresh');
  replace(main,
    h('div', {class: 'page-head'}, h('h1', {}, 'Models'), h('p', {class: 'sub'}, 'Registry models, versions, aliases and lineage.'), refresh),
    note, h('div', {class: 'split'}, list, detail));

  const state = {models: [], versions: new Map(), byKey: new Map(), children: new Map(), loaded: new Map(), sel: params[0] || '', ver: Number(params[1]) || 0};
  const abort = new AbortController();

  async function load() {
    replace(note);
    detail.setAttribute('aria-busy', 'true');
    try {
      const [models, servable] = await Promise.all([
        api.listModels(abort.signal),
        api.listServable(abort.signal).catch(() => []), // only where loaded; optional
      ]);
      state.models = models;
      const versions = await mapLimit(models, 4, (m) => api.listVersions(m.name, abort.signal));
      state.versions = new Map(models.map((m, i) => [m.name, versions[i]]));
      state.loaded = new Map();
      for (const s of servable) {
        for (const l of s.loaded || []) {
          const k = key(l.model.name, l.model.version);
          state.loaded.set(k, [...(state.loaded.get(k) || []), l.node]);
        }
      }
      index(state);
    } catch (e) {
      if (e.name === 'AbortError') return;
      replace(note, failure(e));
    }
    detail.setAttribute('aria-busy', 'false');
    render();
  }

  function render() {
    if (!state.sel && state.models.length) state.sel = state.models[0].name;
    replace(list, state.models.length
      ? h('ul', {}, state.models.map((m) => h('li', {},
        h('a', {href: `#/models/${encodeURIComponent(m.name)}`, 'aria-current': m.name === state.sel ? 'page' : false, 'data-model': m.name},
          h('span', {class: 'model-name'}, m.name),
          h('span', {class: 'hint'}, ` @${m.latest_version || 0} · ${m.version_count || 0} version${m.version_count === 1 ? '' : 's'}`),
          Object.keys(m.aliases || {}).length ? h('span', {class: 'chips'}, Object.entries(m.aliases).map(([a, v]) => h('span', {class: 'chip'}, `${a}→${v}`))) : null))))
      : h('p', {class: 'hint'}, 'No models yet. Push one: bitnet push DIR --name NAME.'));
    const model = state.models.find((m) => m.name === state.sel);
    if (!model) {
      replace(detail, state.sel && state.models.length ? message('error', `No model named “${state.sel}”.`) : null);
      return;
    }
    replace(detail, modelView(model, state, ctx, {reload: load}));
  }

  load();
  return {
    stop: () => abort.abort(),
    navigate(p) {
      state.sel = p[0] || state.sel;
      state.ver = Number(p[1]) || 0;
      render();
      return true;
    },
  };
}

// index builds the lookups of every version by NAME@N and the children
// of each (lineage parent -> versions made from it).
function index(state) {
  state.byKey = new Map();
  state.children = new Map();
  for (const vs of state.versions.values()) {
    for (const v of vs) state.byKey.set(key(v.ref.name, v.ref.version), v);
  }
  for (const v of state.byKey.values()) {
    const p = v.lineage && v.lineage.parent;
    if (p && p.name && p.version) {
      const pk = key(p.name, p.version);
      state.children.set(pk, [...(state.children.get(pk) || []), key(v.ref.name, v.ref.version)]);
    }
  }
  for (const c of state.children.values()) c.sort(byRef);
}

function byRef(a, b) {
  const [an, av] = a.split('@');
  const [bn, bv] = b.split('@');
  return an === bn ? Number(av) - Number(bv) : an.localeCompare(bn);
}

async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({length: Math.min(limit, items.length)}, worker));
  return out;
}

function modelView(model, state, ctx, actions) {
  const versions = state.versions.get(model.name) || [];
  const selected = versions.find((v) => v.ref.version === state.ver) || versions[0];
  return [
    h('div', {class: 'detail-head'},
      h('h2', {}, model.name),
      model.description ? h('p', {}, model.description) : null,
      h('p', {class: 'meta'}, h('span', {}, `latest @${model.latest_version || 0}`), h('span', {}, `${model.version_count || 0} version${model.version_count === 1 ? '' : 's'}`),
        h('span', {}, `updated ${time(model.update_time)}`),
        Object.entries(model.labels || {}).map(([k, v]) => h('span', {class: 'chip'}, `${k}=${v}`)))),
    aliasesView(model, versions, actions),
    h('h3', {}, 'Versions'),
    versionsTable(model, versions, selected, state, actions),
    h('h3', {}, 'Lineage'),
    lineageView(model, state),
    selected ? versionView(selected, state, ctx) : null,
  ];
}

function aliasesView(model, versions, actions) {
  const out = h('div', {class: 'alias-out', 'aria-live': 'polite'});
  const options = (cur) => versions.map((v) => h('option', {value: v.ref.version, selected: v.ref.version === cur}, `@${v.ref.version}`));
  const run = async (btn, fn, done) => {
    btn.disabled = true;
    try {
      await fn();
      await actions.reload();
      const again = document.querySelector('.alias-out');
      if (again) replace(again, message('ok', done));
    } catch (e) {
      replace(out, message('error', e.message));
      btn.disabled = false;
    }
  };
  const rows = Object.entries(model.aliases || {}).sort().map(([alias, v]) => {
    const sel = h('select', {'aria-label': `Version for alias ${alias}`}, options(v));
    const move = h('button', {type: 'button', class: 'btn btn-small'}, 'Move');
    move.addEventListener('click', () => run(move, () => api.setAlias(model.name, alias, Number(sel.value)), `${alias} now points at @${sel.value} (was @${v}).`));
    const del = h('button', {type: 'button', class: 'btn btn-small btn-danger', 'aria-label': `Delete alias ${alias}`}, 'Delete');
    del.addEventListener('click', () => {
      if (window.confirm(`Delete alias ${model.name}:${alias}?`)) run(del, () => api.deleteAlias(model.name, alias), `${alias} deleted.`);
    });
    return h('tr', {'data-alias': alias}, h('th', {scope: 'row'}, h('code', {}, `${model.name}:${alias}`)), h('td', {}, `@${v}`), h('td', {class: 'row-actions'}, sel, move, del));
  });
  const name = h('input', {type: 'text', required: true, pattern: '[a-z0-9][a-z0-9._\\-]{0,63}', placeholder: 'prod', autocomplete: 'off'});
  const ver = h('select', {}, options(model.latest_version));
  const add = h('form', {class: 'inline-form', 'aria-label': 'Set an alias'},
    field('New alias', name), field('Version', ver), h('button', {class: 'btn'}, 'Set alias'));
  add.addEventListener('submit', (e) => {
    e.preventDefault();
    const btn = add.querySelector('button');
    const alias = name.value.trim();
    run(btn, () => api.setAlias(model.name, alias, Number(ver.value)), `${alias} now points at @${ver.value}.`);
  });
  return h('section', {class: 'aliases'}, h('h3', {}, 'Aliases'),
    rows.length ? h('div', {class: 'table-wrap'}, h('table', {class: 'data'}, h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Alias'), h('th', {scope: 'col'}, 'Points at'), h('th', {scope: 'col'}, 'Move or delete (needs the write scope)'))), h('tbody', {}, rows)))
      : h('p', {class: 'hint'}, 'No aliases.'),
    versions.length ? add : null, out);
}

const short = (id) => (id.length > 14 ? `${id.slice(0, 11)}…` : id);

// source says what made a version: uploaded, or which job (linked).
function source(v, full) {
  const l = v.lineage || {};
  const job = (kind) => (l.job_id ? h('a', {href: `#/jobs/${kind}/${encodeURIComponent(l.job_id)}`, title: l.job_id, class: 'mono'}, full ? l.job_id : short(l.job_id)) : '');
  switch (l.source) {
    case 'LINEAGE_SOURCE_QUANTIZER': return ['quantized', l.job_id ? [' by ', job('quantizer')] : null];
    case 'LINEAGE_SOURCE_TRAINER': return ['trained', l.job_id ? [' by ', job('trainer')] : null];
    case 'LINEAGE_SOURCE_UPLOAD': return 'uploaded';
  }
  return '–';
}

function versionsTable(model, versions, selected, state, actions) {
  const cols = ['Version', 'Aliases', 'Format', 'Quant', 'Parameters', 'Size', 'Context', 'From', 'Created'];
  return h('div', {class: 'table-wrap'}, h('table', {class: 'data versions'},
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, versions.map((v) => {
      const k = key(v.ref.name, v.ref.version);
      const p = v.lineage && v.lineage.parent;
      const loaded = state.loaded.get(k);
      return h('tr', {'data-version': v.ref.version, class: v === selected ? 'selected' : ''},
        h('th', {scope: 'row'}, h('a', {href: `#/models/${encodeURIComponent(model.name)}/${v.ref.version}`, 'aria-current': v === selected ? 'true' : false}, `@${v.ref.version}`),
          loaded ? h('span', {class: 'badge badge-live', title: `loaded on ${loaded.join(', ')}`}, 'loaded') : null,
          h('a', {class: 'try', href: `#/playground/${encodeURIComponent(k)}`, 'aria-label': `Try ${k} in the playground`}, 'try ›')),
        h('td', {}, (v.aliases || []).map((a) => h('span', {class: 'chip'}, a))),
        h('td', {}, format(v.format)),
        h('td', {}, h('span', {class: 'badge'}, quant(v.quant_type))),
        h('td', {class: 'num'}, count(v.parameter_count)),
        h('td', {class: 'num'}, bytes(v.size_bytes)),
        h('td', {class: 'num'}, v.context_length ? count(v.context_length) : '–'),
        h('td', {}, source(v), p && p.name ? [' from ', h('a', {href: `#/models/${encodeURIComponent(p.name)}/${p.version}`}, ref(p))] : null),
        h('td', {}, time(v.create_time)));
    }))));
}

const quant = (q) => (q ? q.replace('QUANT_TYPE_', '').replace('UNSPECIFIED', '–') : '–');

// lineageView draws the tree of every version connected to this model's
// versions: from each root ancestor down to all its descendants.
function lineageView(model, state) {
  const mine = (state.versions.get(model.name) || []).map((v) => key(v.ref.name, v.ref.version));
  const roots = new Set();
  for (const k of mine) {
    let cur = k;
    for (let i = 0; i < 64; i++) {
      const v = state.byKey.get(cur);
      const p = v && v.lineage && v.lineage.parent;
      if (!p || !p.name || !p.version) break;
      cur = key(p.name, p.version);
    }
    roots.add(cur);
  }
  const seen = new Set();
  const item = (k, depth) => {
    if (seen.has(k) || depth > 64) return null;
    seen.add(k);
    const v = state.byKey.get(k);
    const [name, ver] = k.split('@');
    const kids = (state.children.get(k) || []).map((c) => item(c, depth + 1)).filter(Boolean);
    const metrics = v ? lineageMetrics(v.lineage) : [];
    return h('li', {'data-ref': k, class: name === model.name ? 'mine' : ''},
      h('div', {class: 'tree-node'},
        h('a', {href: `#/models/${encodeURIComponent(name)}/${ver}`, class: 'tree-ref'}, k),
        v ? [h('span', {class: 'badge'}, `${format(v.format)} ${quant(v.quant_type)}`), h('span', {class: 'tree-src'}, source(v)),
          metrics.map((text) => h('span', {class: 'chip'}, text))]
          : h('span', {class: 'hint'}, 'deleted')),
      kids.length ? h('ul', {}, kids) : null);
  };
  const items = [...roots].sort(byRef).map((r) => item(r, 0)).filter(Boolean);
  return h('ul', {class: 'tree', 'aria-label': `Lineage of ${model.name}`}, items);
}

// lineageMetrics picks the telling metrics of a producing job.
function lineageMetrics(l) {
  const m = (l && l.metrics) || {};
  const out = [];
  if (m.perplexity_before && m.perplexity_after) out.push(`ppl ${num(m.perplexity_before)} → ${num(m.perplexity_after)}`);
  if (m.mean_kl !== undefined) out.push(`KL ${num(m.mean_kl)}`);
  if (m.top1_agreement !== undefined) out.push(`top-1 ${Math.round(m.top1_agreement * 100)}%`);
  if (m.val_loss !== undefined) out.push(`val loss ${num(m.val_loss)}`);
  else if (m.train_loss !== undefined) out.push(`loss ${num(m.train_loss)}`);
  if (m.val_perplexity !== undefined) out.push(`val ppl ${num(m.val_perplexity)}`);
  return out;
}

function versionView(v, state, ctx) {
  const k = key(v.ref.name, v.ref.version);
  const l = v.lineage || {};
  const hints = v.hardware_hints || {};
  const reportBox = h('div', {class: 'report-box', 'aria-live': 'polite'});
  if (l.source === 'LINEAGE_SOURCE_QUANTIZER' && l.job_id) {
    replace(reportBox, h('p', {class: 'hint'}, 'Loading the quality report…'));
    api.getJob('quantizer', l.job_id).then((job) => {
      replace(reportBox, reportView(job.report));
    }).catch((e) => {
      const metrics = Object.entries(l.metrics || {});
      replace(reportBox, message('info', e.code === 'NOT_FOUND'
        ? `The quantizer no longer has job ${l.job_id}; the lineage keeps its final metrics.`
        : `Could not load the report of job ${l.job_id}: ${e.message}`),
      metrics.length ? h('dl', {class: 'kv kv-inline'}, metrics.map(([mk, mv]) => [h('dt', {}, mk), h('dd', {}, num(mv))])) : null);
    });
  }
  const canQuantize = v.format === 'MODEL_FORMAT_HF_SAFETENSORS' || v.format === 'MODEL_FORMAT_HF_PACKED';
  return h('section', {class: 'version-detail', 'data-ref': k},
    h('h3', {}, `Version ${k}`),
    v.description ? h('p', {}, v.description) : null,
    h('dl', {class: 'kv kv-inline'},
      h('dt', {}, 'Family'), h('dd', {'data-family': family(v.architecture)}, family(v.architecture) || '–'),
      h('dt', {}, 'Architecture'), h('dd', {}, v.architecture || '–'),
      h('dt', {}, 'Format'), h('dd', {}, `${format(v.format)} · ${quant(v.quant_type)}`),
      h('dt', {}, 'Parameters'), h('dd', {}, count(v.parameter_count)),
      h('dt', {}, 'Size'), h('dd', {}, bytes(v.size_bytes)),
      h('dt', {}, 'Context'), h('dd', {}, v.context_length ? `${v.context_length} tokens` : '–'),
      h('dt', {}, 'Vocabulary'), h('dd', {}, v.vocab_size ? String(v.vocab_size) : '–'),
      h('dt', {}, 'Loaded on'), h('dd', {}, (state.loaded.get(k) || []).join(', ') || 'no node'),
      hints.min_memory_bytes ? [h('dt', {}, 'Needs'), h('dd', {}, bytes(hints.min_memory_bytes))] : null,
      (hints.preferred_kernels || []).length ? [h('dt', {}, 'Runs best on'), h('dd', {}, hints.preferred_kernels.join(', '))] : null,
      (hints.required_features || []).length ? [h('dt', {}, 'Requires'), h('dd', {}, hints.required_features.join(', '))] : null,
      h('dt', {}, 'Source'), h('dd', {}, source(v, true), l.parent && l.parent.name ? [' from ', ref(l.parent)] : null),
      l.dataset_sha256 ? [h('dt', {}, 'Data sha256'), h('dd', {class: 'mono'}, l.dataset_sha256.slice(0, 16) + '…')] : null),
    l.config_json ? h('details', {}, h('summary', {}, 'Producing job’s configuration'), h('pre', {class: 'code'}, pretty(l.config_json))) : null,
    h('details', {}, h('summary', {}, `Files (${(v.files || []).length})`),
      h('div', {class: 'table-wrap'}, h('table', {class: 'data'}, h('thead', {}, h('tr', {}, ['Path', 'Size', 'sha256'].map((c) => h('th', {scope: 'col'}, c)))),
        h('tbody', {}, (v.files || []).map((f) => h('tr', {}, h('td', {class: 'mono'}, f.path), h('td', {class: 'num'}, bytes(f.size_bytes)), h('td', {class: 'mono', title: f.sha256}, `${f.sha256.slice(0, 12)}…`))))))),
    l.source === 'LINEAGE_SOURCE_QUANTIZER' ? [h('h4', {}, 'Quality report'), reportBox] : null,
    canQuantize ? quantizeForm(v, ctx) : null);
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function quantizeForm(v, ctx) {
  const target = h('select', {}, h('option', {value: 'QUANT_TYPE_TQ2_0'}, 'TQ2_0 (2 bits)'), h('option', {value: 'QUANT_TYPE_TQ1_0'}, 'TQ1_0 (1.69 bits)'));
  const out = h('input', {type: 'text', value: v.ref.name, autocomplete: 'off', required: true});
  const status = h('div', {'aria-live': 'polite'});
  const form = h('form', {class: 'inline-form', 'aria-label': 'Quantize this version'},
    field('Target', target), field('Output model', out), h('button', {class: 'btn'}, 'Quantize'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const btn = form.querySelector('button');
    btn.disabled = true;
    try {
      const job = await api.createQuantizeJob({source: {model: key(v.ref.name, v.ref.version)}, target: target.value, output: {name: out.value.trim()}});
      ctx.navigate(`#/jobs/quantizer/${encodeURIComponent(job.job_id)}`);
    } catch (err) {
      replace(status, message('error', err.message));
      btn.disabled = false;
    }
  });
  return h('section', {class: 'quantize'}, h('h4', {}, 'Quantize to GGUF (needs the jobs scope)'), form, status);
}
