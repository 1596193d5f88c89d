// Keys: the mesh's API keys (admin scope): create one (its secret is shown
// once, here), list them, revoke one.

import * as api from '../api.js';
import {failure, field, h, message, replace, uid} from '../dom.js';
import {num, time} from '../format.js';

const SCOPES = [
  ['read', 'list and read models, nodes and jobs'],
  ['generate', 'generate and tokenize'],
  ['write', 'push models, move aliases'],
  ['jobs', 'start and cancel quantizer and trainer jobs'],
  ['admin', 'everything, and manage keys'],
];

export function mount(main) {
  const note = h('div', {'aria-live': 'polite'});
  const body = h('tbody');
  const secretBox = h('div', {'aria-live': 'polite'});
  const abort = new AbortController();
  const content = h('div', {}, createForm(), h('h2', {}, 'Keys'),
    h('div', {class: 'table-wrap'}, h('table', {class: 'data keys'},
      h('thead', {}, h('tr', {}, ['Name', 'ID', 'Scopes', 'Created', 'Expires', 'Limits', ''].map((c) => h('th', {scope: 'col'}, c)))),
      body)));
  replace(main,
    h('div', {class: 'page-head'}, h('h1', {}, 'API keys'), h('p', {class: 'sub'}, 'Keys and their scopes (managing them needs the admin scope).')),
    note, secretBox, content);

  async function load() {
    try {
      const keys = await api.listKeys(abort.signal);
      if (!api.apiKey()) {
        replace(note, message('info', 'This mesh answered without a key: API keys are not enforced (start it with --auth to require them).'));
      }
      replace(body, keys.length ? keys.map(row) : h('tr', {}, h('td', {colspan: 7, class: 'hint'}, 'No keys.')));
    } catch (e) {
      if (e.name === 'AbortError') return;
      replace(note, e.code === 'UNIMPLEMENTED' ? message('error', 'This mesh has no API-key routes (a version without --auth support).') : failure(e));
      replace(body);
      content.hidden = e.code === 'UNIMPLEMENTED';
    }
  }

  function row(k) {
    const revoke = h('button', {type: 'button', class: 'btn btn-small btn-danger', 'aria-label': `Revoke key ${k.name}`}, 'Revoke');
    revoke.addEventListener('click', async () => {
      if (!window.confirm(`Revoke key “${k.name}”? Calls with it fail within seconds, everywhere.`)) return;
      revoke.disabled = true;
      try {
        await api.revokeKey(k.name);
        replace(note, message('ok', `Key ${k.name} revoked.`));
        load();
      } catch (e) {
        replace(note, message('error', e.message));
        revoke.disabled = false;
      }
    });
    const l = k.limits || {};
    const limits = [l.requests_per_second ? `${num(l.requests_per_second)} req/s` : '', l.burst ? `burst ${l.burst}` : '',
      Number(l.tokens_per_minute) ? `${num(l.tokens_per_minute)} tok/min` : '', l.max_streams ? `${l.max_streams} streams` : ''].filter(Boolean);
    return h('tr', {'data-key': k.name},
      h('th', {scope: 'row'}, k.name), h('td', {class: 'mono'}, k.id || ''),
      h('td', {}, (k.scopes || []).map((s) => h('span', {class: 'chip'}, s))),
      h('td', {}, time(k.create_time)), h('td', {}, k.expire_time ? time(k.expire_time) : 'never'),
      h('td', {class: 'hint'}, limits.join(' · ') || 'defaults'),
      h('td', {}, revoke));
  }

  function createForm() {
    const name = h('input', {type: 'text', id: 'key-name', required: true, pattern: '[A-Za-z0-9._\\-]{1,64}', autocomplete: 'off', placeholder: 'ci-deploy'});
    const boxes = SCOPES.map(([s, what]) => {
      const cb = h('input', {type: 'checkbox', value: s, id: uid('scope'), checked: s === 'read'});
      return h('label', {htmlFor: cb.id, title: what}, cb, ` ${s}`);
    });
    const ttl = h('input', {type: 'number', id: 'key-ttl', min: 0, step: 1, placeholder: 'never', inputmode: 'numeric'});
    const rps = h('input', {type: 'number', min: 0, step: 'any', placeholder: 'default'});
    const tpm = h('input', {type: 'number', min: 0, step: 1, placeholder: 'default'});
    const streams = h('input', {type: 'number', min: 0, step: 1, placeholder: 'default'});
    const form = h('form', {class: 'panel key-form', 'aria-label': 'Create a key'},
      h('h2', {}, 'Create a key'),
      h('div', {class: 'inline-form'}, field('Name', name), field('Expires after (hours)', ttl)),
      h('fieldset', {class: 'checks'}, h('legend', {}, 'Scopes'), boxes),
      h('details', {}, h('summary', {}, 'Limits'), h('div', {class: 'inline-form'},
        field('Requests per second', rps), field('Tokens per minute', tpm), field('Concurrent streams', streams))),
      h('div', {class: 'actions'}, h('button', {class: 'btn btn-primary', id: 'key-create'}, 'Create key')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const scopes = [...form.querySelectorAll('.checks input:checked')].map((c) => c.value);
      if (!scopes.length) {
        replace(secretBox, message('error', 'Choose at least one scope.'));
        return;
      }
      const req = {name: name.value.trim(), scopes};
      if (Number(ttl.value) > 0) req.ttl = `${Math.round(Number(ttl.value) * 3600)}s`;
      const limits = {};
      if (Number(rps.value) > 0) limits.requests_per_second = Number(rps.value);
      if (Number(tpm.value) > 0) limits.tokens_per_minute = String(Math.round(Number(tpm.value)));
      if (Number(streams.value) > 0) limits.max_streams = Math.round(Number(streams.value));
      if (Object.keys(limits).length) req.limits = limits;
      const btn = form.querySelector('#key-create');
      btn.disabled = true;
      try {
        const res = await api.createKey(req);
        showSecret(res.key ? res.key.name : req.name, res.secret);
        form.reset();
        load();
      } catch (err) {
        replace(secretBox, message('error', err.message));
      }
      btn.disabled = false;
    });
    return form;
  }

  function showSecret(name, secret) {
    const out = h('output', {class: 'secret mono', id: 'key-secret', tabindex: '-1'}, secret);
    const copy = h('button', {type: 'button', class: 'btn btn-small'}, 'Copy');
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(secret);
        copy.textContent = 'Copied';
      } catch {
        window.getSelection().selectAllChildren(out);
        copy.textContent = 'Selected: press Ctrl+C';
      }
    });
    const use = h('button', {type: 'button', class: 'btn btn-small'}, 'Use in this tab');
    use.addEventListener('click', () => {
      api.setApiKey(secret);
      use.textContent = 'In use';
      use.disabled = true;
    });
    replace(secretBox, h('div', {class: 'msg msg-ok secret-box', role: 'status'},
      h('p', {}, h('strong', {}, `Key “${name}” created.`), ' Copy it now: it is shown only once and cannot be recovered.'),
      h('p', {class: 'secret-line'}, out, copy, use)));
    out.focus();
  }

  load();
  return () => abort.abort();
}
