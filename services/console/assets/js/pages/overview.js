// Overview: every inference node with its hardware, health, load and
// loaded models, polled every second. The router lists only healthy
// nodes, so a node that stops answering drops out of its list: the page
// remembers every node it has seen this session and greys out the ones
// that are gone (or unhealthy) instead of letting them vanish.

import {listNodes} from '../api.js';
import {sparkline} from '../chart.js';
import {failure, h, message, poller, replace} from '../dom.js';
import {ago, bytes, count, ms, n, num, pct, ref, seconds} from '../format.js';

const POLL_MS = 1000;
const HISTORY = 60;

// Session memory of nodes, kept across page switches: name -> {node,
// lastSeen, history of tokens/s, down since}.
const seen = new Map();

// The flags the issue names, in display order: [label, feature or kernel].
const FLAGS = [['AVX2', 'avx2'], ['AVX-512', 'avx512f'], ['VNNI', 'avx512vnni'], ['NEON', 'neon'], ['dotprod', 'dotprod'], ['SVE', 'sve'], ['Metal', 'metal']];

export function mount(main) {
  const summary = h('div', {class: 'stats', 'aria-label': 'Mesh totals'});
  const grid = h('div', {class: 'cards', id: 'nodes'});
  const note = h('div', {'aria-live': 'polite'});
  replace(main,
    h('div', {class: 'page-head'},
      h('h1', {}, 'Overview'),
      h('p', {class: 'sub'}, 'Inference nodes, their hardware and load, live.')),
    note, summary, grid);

  let failed = false;
  let marked = false;
  const tick = async () => {
    let nodes;
    try {
      nodes = await listNodes();
    } catch (e) {
      if (e.unauthenticated || e.forbidden) {
        // Polling cannot succeed until the key changes (which remounts).
        p.stop();
        replace(note, failure(e));
        return;
      }
      failed = true;
      replace(note, message('error', `${e.message} Showing the last known state.`));
      render(grid, summary, Date.now(), true);
      return;
    }
    if (failed) replace(note);
    failed = false;
    const now = Date.now();
    const names = new Set();
    for (const node of nodes) {
      names.add(node.name);
      const e = seen.get(node.name) || {history: []};
      e.node = node;
      e.lastSeen = now;
      e.downSince = node.healthy === false ? e.downSince || now : 0;
      e.history.push(n(node.load && node.load.tokens_per_second));
      if (e.history.length > HISTORY) e.history.shift();
      seen.set(node.name, e);
    }
    for (const [name, e] of seen) {
      if (!names.has(name) && !e.downSince) e.downSince = now;
    }
    render(grid, summary, now, false);
    if (!marked) {
      marked = true;
      performance.mark('console-data'); // first data on screen (for the page-weight test)
    }
  };
  const p = poller(tick, POLL_MS);
  return () => p.stop();
}

function render(grid, summary, now, unreachable) {
  const entries = [...seen.values()].sort((a, b) => a.node.name.localeCompare(b.node.name));
  const up = entries.filter((e) => !e.downSince && !unreachable);
  const load = (k) => up.reduce((a, e) => a + n(e.node.load && e.node.load[k]), 0);
  const used = up.reduce((a, e) => a + n(e.node.memory_used_bytes), 0);
  const budget = up.reduce((a, e) => a + n(e.node.memory_budget_bytes), 0);
  const loaded = up.reduce((a, e) => a + (e.node.loaded || []).length, 0);
  replace(summary,
    stat('Nodes up', `${up.length}`, entries.length - up.length ? `${entries.length - up.length} down` : 'none down'),
    stat('Active requests', num(load('active_requests'))),
    stat('Queued', num(load('queue_depth'))),
    stat('Tokens/s', num(load('tokens_per_second'))),
    stat('Loaded models', String(loaded)),
    stat('Model memory', bytes(used), budget ? `of ${bytes(budget)}` : ''));
  if (!entries.length) {
    replace(grid, message('info', unreachable ? 'No nodes known yet.' : 'No inference node is registered yet. Start one with `bitnet serve inference` or `bitnet up`.'));
    return;
  }
  // Keep the focused element (a Forget button) across re-renders.
  const focusedName = document.activeElement && document.activeElement.closest && document.activeElement.closest('[data-node]');
  replace(grid, entries.map((e) => card(e, now, unreachable)));
  if (focusedName) {
    const again = grid.querySelector(`[data-node="${CSS.escape(focusedName.dataset.node)}"] button`);
    if (again) again.focus();
  }
}

function stat(label, value, sub) {
  return h('div', {class: 'stat'}, h('div', {class: 'stat-label'}, label), h('div', {class: 'stat-value'}, value), sub ? h('div', {class: 'stat-sub'}, sub) : null);
}

function card(e, now, unreachable) {
  const node = e.node;
  const hw = node.hardware || {};
  const load = node.load || {};
  const down = Boolean(e.downSince) || unreachable;
  const have = new Set([...(hw.features || []), ...(hw.kernels || [])]);
  const state = down ? 'down' : 'up';
  const why = unreachable ? 'mesh unreachable' : node.healthy === false ? 'failing health checks' : 'gone from the router';
  const cores = Number(hw.logical_cores) || 0;
  const used = n(node.memory_used_bytes);
  const budget = n(node.memory_budget_bytes);
  return h('article', {class: ['card', 'node', down && 'down'], 'data-node': node.name, 'data-state': state, 'aria-label': `Node ${node.name}, ${down ? 'down' : 'up'}`},
    h('header', {class: 'card-head'},
      h('h2', {}, h('span', {class: `dot dot-${state}`, 'aria-hidden': 'true'}), node.name),
      h('span', {class: `pill pill-${state}`}, down ? 'down' : 'healthy')),
    down
      ? h('p', {class: 'down-note'}, `Down since ${new Date(e.downSince).toLocaleTimeString()} (${why}); last seen ${ago(e.lastSeen, now)}.`,
        ' ', h('button', {type: 'button', class: 'btn btn-small', onclick: () => { seen.delete(node.name); render(document.getElementById('nodes'), document.querySelector('.stats'), Date.now(), false); }}, 'Forget'))
      : null,
    h('p', {class: 'meta'}, h('span', {}, node.address || ''), node.version ? h('span', {}, `v ${node.version}`) : null,
      node.start_time ? h('span', {}, `up ${seconds((now - Date.parse(node.start_time)) / 1000)}`) : null),
    h('dl', {class: 'kv'},
      h('dt', {}, 'Kernel'), h('dd', {}, h('span', {class: 'badge badge-kernel', 'data-kernel': hw.kernel || ''}, hw.kernel || '–'),
        hw.kernel_cap ? h('span', {class: 'hint'}, ` capped at ${hw.kernel_cap}`) : null,
        (hw.kernels || []).length ? h('span', {class: 'hint'}, ` (runs ${(hw.kernels || []).join(', ')})`) : null),
      h('dt', {}, 'Flags'), h('dd', {class: 'flags'}, FLAGS.map(([label, key]) => h('span', {class: ['flag', have.has(key) ? 'on' : 'off'], title: have.has(key) ? `${label}: offered` : `${label}: not offered`},
        h('span', {class: 'sr'}, have.has(key) ? 'has ' : 'no '), label))),
      h('dt', {}, 'CPU'), h('dd', {}, [hw.brand || hw.vendor || '–', ` · ${hw.arch || '?'}/${hw.os || '?'}`]),
      h('dt', {}, 'Cores'), h('dd', {}, `${cores || '?'} threads${hw.physical_cores ? `, ${hw.physical_cores} cores` : ''}`),
      h('dt', {}, 'Memory'), h('dd', {}, bytes(hw.memory_bytes), hw.cache_l3_bytes ? h('span', {class: 'hint'}, ` · L2 ${bytes(hw.cache_l2_bytes)} · L3 ${bytes(hw.cache_l3_bytes)}`) : null),
      hw.metal_device ? [h('dt', {}, 'GPU'), h('dd', {}, hw.metal_device)] : null),
    h('div', {class: 'load'},
      meter('Queue', n(load.queue_depth), n(load.queue_capacity) || 1, n(load.queue_capacity) ? `${num(load.queue_depth)} of ${num(load.queue_capacity)}` : num(load.queue_depth)),
      meter('CPU', n(load.cpu_utilization), cores || 1, cores ? pct(n(load.cpu_utilization) / cores, 0) : num(load.cpu_utilization)),
      meter('Model memory', used, budget || 1, `${bytes(used)} of ${bytes(budget)}`)),
    h('div', {class: 'mini'},
      mini('Active', num(load.active_requests)),
      mini('Batch', num(load.batch_size)),
      mini('TTFT p50', load.p50_first_token_ms ? ms(load.p50_first_token_ms) : '–'),
      mini('Tokens/s', num(load.tokens_per_second), sparkline(e.history, {width: 84, height: 22, label: `Tokens per second over the last ${e.history.length} s`}))),
    h('div', {class: 'loaded'},
      h('h3', {}, 'Loaded models'),
      (node.loaded || []).length
        ? h('ul', {}, node.loaded.map((l) => h('li', {},
          h('a', {href: `#/models/${encodeURIComponent(l.model ? l.model.name : '')}`}, ref(l.model)),
          h('span', {class: 'hint'}, [n(l.memory_bytes) ? bytes(l.memory_bytes) : '', n(l.context_length) ? `ctx ${count(l.context_length)}` : '', n(l.active_requests) ? `${l.active_requests} active` : ''].filter(Boolean).map((x) => ` · ${x}`).join('')))))
        : h('p', {class: 'hint'}, 'none')));
}

function mini(label, value, extra) {
  return h('div', {class: 'mini-item'}, h('div', {class: 'mini-label'}, label), h('div', {class: 'mini-value'}, value, extra || null));
}

function meter(label, value, max, text) {
  const id = `m-${Math.random().toString(36).slice(2)}`;
  return h('div', {class: 'meter-row'},
    h('label', {htmlFor: id}, label),
    h('meter', {id, min: 0, max, value: Math.min(value, max), low: max * 0.7, high: max * 0.9, optimum: 0}),
    h('span', {class: 'meter-text'}, text));
}
