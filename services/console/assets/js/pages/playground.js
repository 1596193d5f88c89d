// Playground: chat or raw completion against any model, the text
// streamed into the page as the NDJSON lines arrive, with sampling
// controls, hardware constraints (`require`) and, per response, the node
// and kernel that served it, time to first token and tokens/s. Stop
// aborts the request (AbortController), which cancels the generation.

import * as api from '../api.js';
import {field, h, message, replace} from '../dom.js';
import {ms, n, num, ref} from '../format.js';

const KNOWN = ['generic', 'avx2', 'avx512', 'neon', 'avx512vnni', 'dotprod', 'metal'];

// Settings and the chat survive page switches within the tab.
const saved = {mode: 'chat', model: '', system: '', prompt: 'Light is', chat: [], sampling: {max_tokens: 128, temperature: 0.8, top_k: 0, top_p: 1, min_p: 0, repetition_penalty: 1, seed: ''}, stop: '', require: [], prefer: ''};

export function mount(main, params) {
  if (params[0]) saved.model = params[0];
  const abort = new AbortController();
  let running = null; // the AbortController of the generation in flight

  // --- settings form (folded on a phone, where the conversation comes first) ---
  const wide = !window.matchMedia('(max-width: 860px)').matches;
  const model = h('input', {id: 'pg-model', type: 'text', list: 'pg-models', value: saved.model, required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'NAME, NAME@N or NAME:ALIAS'});
  const models = h('datalist', {id: 'pg-models'});
  const modeChat = h('input', {type: 'radio', name: 'pg-mode', value: 'chat', checked: saved.mode === 'chat', id: 'pg-mode-chat'});
  const modeRaw = h('input', {type: 'radio', name: 'pg-mode', value: 'completion', checked: saved.mode === 'completion', id: 'pg-mode-raw'});
  const num_ = (name, attrs) => h('input', {id: `pg-${name.replace('_', '-')}`, type: 'number', name, value: saved.sampling[name], inputmode: 'decimal', ...attrs});
  const sampling = {
    max_tokens: num_('max_tokens', {min: 1, max: 8192, step: 1}),
    temperature: num_('temperature', {min: 0, max: 2, step: 0.05}),
    top_k: num_('top_k', {min: 0, step: 1}),
    top_p: num_('top_p', {min: 0, max: 1, step: 0.01}),
    min_p: num_('min_p', {min: 0, max: 1, step: 0.01}),
    repetition_penalty: num_('repetition_penalty', {min: 0, max: 3, step: 0.05}),
    seed: num_('seed', {min: 0, step: 1, placeholder: 'random'}),
  };
  const stop = h('textarea', {id: 'pg-stop-strings', rows: 2, spellcheck: 'false', placeholder: 'one per line'}, saved.stop);
  const requireBox = h('fieldset', {class: 'checks'}, h('legend', {}, 'Require (hardware constraints)'));
  const prefer = h('select', {}, h('option', {value: ''}, 'no preference'));
  const form = h('form', {class: 'pg-settings', 'aria-label': 'Generation settings'},
    field('Model', model, 'Latest version by name, or NAME@N, or NAME:ALIAS.'), models,
    h('fieldset', {class: 'radios'}, h('legend', {}, 'Mode'),
      h('label', {htmlFor: 'pg-mode-chat'}, modeChat, ' Chat'), h('label', {htmlFor: 'pg-mode-raw'}, modeRaw, ' Raw completion')),
    h('details', {open: wide}, h('summary', {}, 'Sampling'),
      h('div', {class: 'grid2'},
        field('Max tokens', sampling.max_tokens), field('Temperature', sampling.temperature, '0 is greedy'),
        field('Top-k', sampling.top_k, '0 disables'), field('Top-p', sampling.top_p),
        field('Min-p', sampling.min_p), field('Repetition penalty', sampling.repetition_penalty),
        field('Seed', sampling.seed)),
      field('Stop strings', stop)),
    h('details', {open: wide}, h('summary', {}, 'Hardware'), requireBox, field('Prefer kernel', prefer)));
  for (const input of Object.values(sampling)) {
    input.addEventListener('change', () => {
      saved.sampling[input.name] = input.value;
    });
  }
  model.addEventListener('change', () => {
    saved.model = model.value.trim();
  });
  stop.addEventListener('change', () => {
    saved.stop = stop.value;
  });
  for (const r of [modeChat, modeRaw]) {
    r.addEventListener('change', () => {
      saved.mode = r.value;
      renderConversation();
    });
  }

  // --- conversation / output ---
  const system = h('textarea', {rows: 2, placeholder: 'You are a helpful assistant.'}, saved.system);
  system.addEventListener('change', () => {
    saved.system = system.value;
  });
  const input = h('textarea', {id: 'pg-input', rows: 4, required: true});
  const log = h('div', {id: 'pg-output', class: 'transcript', role: 'log', 'aria-label': 'Responses'});
  const send = h('button', {type: 'submit', class: 'btn btn-primary', id: 'pg-send'}, 'Generate');
  const stopBtn = h('button', {type: 'button', class: 'btn btn-danger', id: 'pg-stop', disabled: true}, 'Stop');
  const clear = h('button', {type: 'button', class: 'btn btn-ghost'}, 'Clear');
  const note = h('div', {'aria-live': 'polite'});
  const systemField = field('System prompt', system);
  const inputField = field('Message', input, 'Ctrl+Enter sends.');
  const composer = h('form', {class: 'composer', 'aria-label': 'Prompt'}, systemField, inputField, h('div', {class: 'actions'}, send, stopBtn, clear));

  replace(main,
    h('div', {class: 'page-head'}, h('h1', {}, 'Playground'), h('p', {class: 'sub'}, 'Generate through the router; every response says where it ran.')),
    h('div', {class: 'pg'}, form, h('section', {class: 'pg-main', 'aria-label': 'Conversation'}, note, log, composer)));

  function renderConversation() {
    const chat = saved.mode === 'chat';
    systemField.hidden = !chat;
    inputField.querySelector('label').textContent = chat ? 'Message' : 'Prompt';
    send.textContent = chat ? 'Send' : 'Generate';
    if (!chat && !input.value) input.value = saved.prompt;
    replace(log, chat ? saved.chat.map((m) => bubble(m.role, m.content, m.stats)) : null);
  }
  renderConversation();

  // --- suggestions: models and the constraints nodes offer ---
  api.listModels(abort.signal).then((ms_) => {
    replace(models, ms_.flatMap((m) => [h('option', {value: m.name}), ...Object.keys(m.aliases || {}).map((a) => h('option', {value: `${m.name}:${a}`}))]));
    if (!model.value && ms_.length) {
      model.value = ms_[0].name;
      saved.model = model.value;
    }
  }).catch((e) => {
    if (e.name !== 'AbortError') replace(note, message('error', e.message));
  });
  api.listNodes(abort.signal).then((nodes) => {
    const offered = new Set();
    const kernels = new Set();
    for (const nd of nodes) {
      for (const k of (nd.hardware && nd.hardware.kernels) || []) {
        offered.add(k);
        kernels.add(k);
      }
      for (const f of (nd.hardware && nd.hardware.features) || []) offered.add(f);
    }
    const names = [...new Set([...KNOWN, ...offered])];
    requireBox.append(...names.map((name) => {
      const cb = h('input', {type: 'checkbox', value: name, checked: saved.require.includes(name), id: `pg-req-${name}`});
      cb.addEventListener('change', () => {
        saved.require = [...requireBox.querySelectorAll('input:checked')].map((c) => c.value);
      });
      return h('label', {htmlFor: cb.id, class: offered.has(name) ? '' : 'unoffered', title: offered.has(name) ? 'offered by a node' : 'no node offers this now'}, cb, ` ${name}`);
    }));
    prefer.append(...[...kernels].map((k) => h('option', {value: k, selected: saved.prefer === k}, k)));
    prefer.addEventListener('change', () => {
      saved.prefer = prefer.value;
    });
  }).catch(() => {});

  // --- generation ---
  function request() {
    const r = {model: model.value.trim(), require: saved.require, prefer_kernel: prefer.value || undefined};
    for (const [k, el] of Object.entries(sampling)) {
      if (el.value === '') continue;
      const v = Number(el.value);
      if (Number.isFinite(v)) r[k] = v;
    }
    if (r.seed !== undefined) r.seed = String(Math.trunc(r.seed)); // uint64: a JSON string
    const stops = stop.value.split('\n').filter((x) => x !== '');
    if (stops.length) r.stop = stops;
    return r;
  }

  async function generate(e) {
    e.preventDefault();
    if (running) return;
    const chat = saved.mode === 'chat';
    const text = input.value;
    if (!model.value.trim()) {
      replace(note, message('error', 'Choose a model first.'));
      model.focus();
      return;
    }
    if (!text.trim()) {
      input.focus();
      return;
    }
    replace(note);
    const req = request();
    let out;
    if (chat) {
      saved.chat.push({role: 'user', content: text});
      log.append(bubble('user', text));
      const msgs = [];
      if (system.value.trim()) msgs.push({role: 'ROLE_SYSTEM', content: system.value});
      for (const m of saved.chat) msgs.push({role: m.role === 'user' ? 'ROLE_USER' : 'ROLE_ASSISTANT', content: m.content});
      req.messages = msgs;
      input.value = '';
      out = bubble('assistant', '');
    } else {
      saved.prompt = text;
      req.prompt = text;
      out = bubble('completion', '', null, text);
      replace(log);
    }
    log.append(out);
    const textEl = out.querySelector('.gen');
    const statsEl = out.querySelector('.stats');
    running = new AbortController();
    send.disabled = true;
    stopBtn.disabled = false;
    out.setAttribute('aria-busy', 'true');
    out.dataset.state = 'streaming';
    const t0 = performance.now();
    let first = 0;
    let head = null;
    let final = null;
    let tokens = 0;
    let reply = '';
    let stopped = false;
    replace(statsEl, h('span', {class: 'hint'}, 'waiting for a node…'));
    try {
      for await (const m of api.generate(req, running.signal)) {
        if (!head && m.node) {
          head = m;
          replace(statsEl, statsView({head, tokens, t0, first}));
        }
        if (m.text) {
          if (!first) first = performance.now();
          reply += m.text;
          textEl.append(m.text);
        }
        tokens += (m.token_ids || []).length;
        if (m.finish_reason) final = m;
        log.scrollTop = log.scrollHeight;
      }
    } catch (err) {
      if (err.name === 'AbortError') stopped = true;
      else out.append(message('error', err.message));
    } finally {
      const end = performance.now();
      running = null;
      send.disabled = false;
      stopBtn.disabled = true;
      out.removeAttribute('aria-busy');
      out.dataset.state = stopped ? 'stopped' : final ? 'done' : 'failed';
      const stats = {head: final || head, final, tokens, t0, first, end, stopped};
      replace(statsEl, statsView(stats));
      if (chat && (reply || final)) saved.chat.push({role: 'assistant', content: reply, stats});
      if (chat && !reply && !final) saved.chat.pop(); // nothing came back: let the user retry the message
      input.focus({preventScroll: true});
    }
  }

  composer.addEventListener('submit', generate);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) composer.requestSubmit();
  });
  stopBtn.addEventListener('click', () => {
    if (running) running.abort();
  });
  clear.addEventListener('click', () => {
    saved.chat = [];
    replace(log);
    input.focus();
  });

  return () => {
    abort.abort();
    if (running) running.abort();
  };
}

function bubble(role, text, stats, prompt) {
  return h('article', {class: `bubble bubble-${role}`, 'aria-label': role === 'user' ? 'You' : role === 'assistant' ? 'Model' : 'Completion'},
    h('div', {class: 'who', 'aria-hidden': 'true'}, role === 'user' ? 'You' : role === 'assistant' ? 'Model' : 'Completion'),
    h('div', {class: 'text'}, prompt ? h('span', {class: 'prompt'}, prompt) : null, h('span', {class: 'gen'}, text)),
    role === 'user' ? null : h('div', {class: 'stats'}, stats ? statsView(stats) : null));
}

// statsView: node, kernel and model of the response, time to first token
// (as seen here, and on the node), tokens/s and the finish reason.
function statsView({head, final, tokens, t0, first, end, stopped}) {
  const t = (final && final.timings) || {};
  const u = (final && final.usage) || {};
  const items = [];
  const add = (label, value, attrs) => items.push(h('span', {class: 'stat-item', ...attrs}, h('span', {class: 'stat-k'}, label), ' ', h('strong', {}, value)));
  if (head) {
    add('node', head.node || '?', {'data-node': head.node || ''});
    add('kernel', head.kernel || '?', {'data-kernel': head.kernel || ''});
    if (head.model) add('model', ref(head.model));
  }
  if (first) add('TTFT', `${ms(first - t0)}${t.first_token_ms ? ` (node ${ms(t.first_token_ms)})` : ''}`, {'data-ttft': String(first - t0)});
  if (final) {
    add('tokens/s', num(t.tokens_per_second), {'data-tps': String(n(t.tokens_per_second))});
    add('tokens', `${num(u.completion_tokens)} (+${num(u.prompt_tokens)} prompt)`);
    if (t.queue_ms) add('queued', ms(t.queue_ms));
    if (t.router_ms) add('router', ms(t.router_ms));
    add('finish', final.finish_reason ? final.finish_reason.replace('FINISH_REASON_', '').toLowerCase().replace('_', ' ') : '–');
  } else if (end && first) {
    add('tokens', String(tokens));
    add('tokens/s', num(tokens / Math.max(1e-3, (end - first) / 1000)));
  }
  if (stopped) add('', 'stopped', {class: 'stat-item stopped'});
  return items;
}
