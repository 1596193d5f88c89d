// The console's shell: navigation by URL fragment (#/models/NAME), the
// API key dialog, the mesh status light and page mounting. Each page
// module exports mount(main, params, ctx) returning a cleanup function.

import {apiKey, onStatus, setApiKey} from './api.js';
import {h, replace} from './dom.js';
import * as overview from './pages/overview.js';
import * as models from './pages/models.js';
import * as playground from './pages/playground.js';
import * as jobs from './pages/jobs.js';
import * as keys from './pages/keys.js';

const PAGES = {overview, models, playground, jobs, keys};
const TITLES = {overview: 'Overview', models: 'Models', playground: 'Playground', jobs: 'Jobs', keys: 'API keys'};

const main = document.getElementById('main');
const banner = document.getElementById('banner');
const status = document.getElementById('mesh-status');
const keyButton = document.getElementById('key-button');
const dialog = document.getElementById('key-dialog');
const keyInput = document.getElementById('key-input');

let cleanup = null;
let current = '';

// parse turns '#/jobs/trainer/tj-1' into {page: 'jobs', params: ['trainer', 'tj-1']}.
function parse(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  const page = PAGES[parts[0]] ? parts[0] : 'overview';
  return {page, params: PAGES[parts[0]] ? parts.slice(1) : []};
}

function route() {
  if (location.hash && !location.hash.startsWith('#/')) return; // an in-page anchor
  const {page, params} = parse(location.hash);
  const key = `${page}/${params.join('/')}`;
  if (key === current) return;
  const samePage = current.split('/')[0] === page;
  current = key;
  for (const a of document.querySelectorAll('nav a[data-page]')) {
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${TITLES[page]} · bitnet mesh`;
  // A page can take a change of its own parameters without a remount.
  if (samePage && cleanup && cleanup.navigate && cleanup.navigate(params)) return;
  if (cleanup) (cleanup.stop || cleanup)();
  cleanup = null;
  replace(main);
  clearBanner();
  cleanup = PAGES[page].mount(main, params, ctx) || null;
  if (!samePage) {
    const h1 = main.querySelector('h1');
    (h1 || main).setAttribute('tabindex', '-1');
    (h1 || main).focus({preventScroll: true});
    window.scrollTo(0, 0);
  }
}

function clearBanner() {
  replace(banner);
  banner.hidden = true;
}

function showBanner(text, action) {
  replace(banner, h('span', {}, text), action || null,
    h('button', {type: 'button', class: 'btn btn-ghost', 'aria-label': 'Dismiss', onclick: clearBanner}, '×'));
  banner.hidden = false;
}

const ctx = {
  navigate(hash) {
    if (location.hash !== hash) location.hash = hash;
  },
  banner: showBanner,
  openKeyDialog,
};

function openKeyDialog() {
  keyInput.value = '';
  document.getElementById('key-state').textContent = apiKey() ? 'A key is set for this tab.' : 'No key is set.';
  if (typeof dialog.showModal === 'function') dialog.showModal();
  else dialog.setAttribute('open', '');
  keyInput.focus();
}

function showKeyState() {
  const set = Boolean(apiKey());
  keyButton.textContent = set ? 'API key ✓' : 'API key';
  keyButton.setAttribute('aria-label', set ? 'API key (set; change or forget it)' : 'API key (none set)');
}

let lastAuthBanner = 0;
onStatus((ev) => {
  if (ev.kind === 'ok') {
    status.dataset.state = 'live';
    status.textContent = 'connected';
  } else if (ev.kind === 'down') {
    status.dataset.state = 'down';
    status.textContent = 'unreachable';
  } else if (ev.kind === 'auth' && ev.error.unauthenticated && Date.now() - lastAuthBanner > 5000) {
    lastAuthBanner = Date.now();
    showBanner(ev.error.message, h('button', {type: 'button', class: 'btn', onclick: openKeyDialog}, 'Enter API key'));
  } else if (ev.kind === 'key') {
    lastAuthBanner = 0; // a new key's refusal is news: show it at once
    showKeyState();
  }
});

document.getElementById('key-form').addEventListener('submit', (e) => {
  const action = e.submitter ? e.submitter.value : 'save';
  if (action === 'save' && keyInput.value.trim()) setApiKey(keyInput.value.trim());
  else if (action === 'forget') setApiKey('');
  keyInput.value = '';
  if (action !== 'cancel') {
    clearBanner();
    // Re-mount the page so it loads again with the new key.
    current = '';
    route();
  }
});
keyButton.addEventListener('click', openKeyDialog);
document.querySelector('.skip').addEventListener('click', (e) => {
  e.preventDefault();
  (main.querySelector('h1') || main).focus();
});

window.addEventListener('hashchange', route);
showKeyState();
route();
document.documentElement.dataset.app = 'ready';
performance.mark('console-shell');
