// The console's only door to the mesh: the public REST API, called with
// the API key kept in this tab's session storage. Every route the console
// uses is in this file, so an API change is adapted here.

const KEY_STORAGE = 'bitnet.console.apiKey';
const MAX_PAGES = 20;

export function apiKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || '';
  } catch {
    return '';
  }
}

export function setApiKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage disabled: the key lasts until the page closes
  }
  emit({kind: 'key'});
}

// Status events: {kind: 'ok'} after a call that reached the mesh,
// {kind: 'down', error} when the mesh is unreachable, {kind: 'auth', error}
// on 401/403, {kind: 'key'} when the key changes.
const listeners = new Set();
export function onStatus(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
function emit(ev) {
  for (const fn of listeners) fn(ev);
}

const CODES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED',
  'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

// ApiError is a failed call, its message written for people: status is
// the HTTP status (0: no response), code the gRPC code name.
export class ApiError extends Error {
  constructor(message, {status = 0, code = 'UNKNOWN', detail = '', retryAfter = 0} = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
  get unauthenticated() {
    return this.status === 401 || this.code === 'UNAUTHENTICATED';
  }
  get forbidden() {
    return this.status === 403 || this.code === 'PERMISSION_DENIED';
  }
}

function describe(status, code, detail, retryAfter) {
  const d = detail ? `: ${detail}` : '';
  if (status === 401 || code === 'UNAUTHENTICATED') {
    return apiKey() ? `The API key was not accepted${d}. Enter another key.` : `This mesh needs an API key${d}. Enter one with “API key”.`;
  }
  if (status === 403 || code === 'PERMISSION_DENIED') return `Your API key may not do this${d}`;
  if (status === 429 || code === 'RESOURCE_EXHAUSTED') {
    return `Too busy or over the rate limit${retryAfter ? ` (retry in ${retryAfter} s)` : ''}${d}`;
  }
  switch (code) {
    case 'NOT_FOUND': return `Not found${d}`;
    case 'INVALID_ARGUMENT': return `Invalid request${d}`;
    case 'FAILED_PRECONDITION': return `Cannot do that now${d}`;
    case 'ALREADY_EXISTS': return `Already exists${d}`;
    case 'UNAVAILABLE': return `The mesh is unavailable${d}`;
    case 'DEADLINE_EXCEEDED': return `Timed out${d}`;
    case 'UNIMPLEMENTED': return `Not supported by this server${d}`;
  }
  if (status >= 500) return `Server error ${status}${d}`;
  return detail || `Request failed (HTTP ${status})`;
}

function makeError(status, body, retryAfter) {
  let code = status === 404 ? 'NOT_FOUND' : status >= 500 ? 'INTERNAL' : 'UNKNOWN';
  let detail = '';
  try {
    const j = JSON.parse(body);
    const e = j.error && typeof j.error === 'object' ? j.error : j;
    if (typeof e.code === 'number') code = CODES[e.code] || code;
    else if (typeof e.code === 'string') code = e.code;
    detail = String(e.message || (typeof j.error === 'string' ? j.error : '') || '');
  } catch {
    // not JSON (a proxy's page): keep a short plain-text excerpt
    detail = body.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200);
  }
  const err = new ApiError(describe(status, code, detail, retryAfter), {status, code, detail, retryAfter});
  if (err.unauthenticated || err.forbidden) emit({kind: 'auth', error: err});
  return err;
}

async function errorFrom(resp, path) {
  let body = '';
  try {
    body = await resp.text();
  } catch {
    // the body broke off: describe by status alone
  }
  const ra = Number.parseInt(resp.headers.get('Retry-After') || '', 10);
  const err = makeError(resp.status, body, Number.isFinite(ra) ? ra : 0);
  if (resp.status === 404 && (err.detail === 'Not Found' || err.detail.startsWith('no route '))) {
    // The gateway has no such route: this server lacks that service.
    return new ApiError(`This server does not serve ${path.split('?')[0]}: the console needs the REST port of \`bitnet up\`, or of a router that also carries the registry, quantizer and trainer APIs.`, {status: 404, code: 'UNIMPLEMENTED', detail: err.detail});
  }
  return err;
}

async function send(method, path, {body, query, signal, accept = 'application/json'} = {}) {
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    if ([...q].length) url += `?${q}`;
  }
  const headers = {Accept: accept};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  let resp;
  try {
    resp = await fetch(url, {method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal, cache: 'no-store', credentials: 'same-origin'});
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    const err = new ApiError('Cannot reach the mesh (network error). Is the router running?', {code: 'UNAVAILABLE'});
    emit({kind: 'down', error: err});
    throw err;
  }
  if (!resp.ok) {
    const err = await errorFrom(resp, url);
    if (resp.status === 502 || resp.status === 504) emit({kind: 'down', error: err});
    else emit({kind: 'ok'});
    throw err;
  }
  emit({kind: 'ok'});
  return resp;
}

async function call(method, path, opts) {
  const resp = await send(method, path, opts);
  const text = await resp.text();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(`The server sent a response that is not JSON (${path})`, {status: resp.status});
  }
}

// paged follows next_page_token and returns every item of field.
async function paged(path, field, query = {}, signal) {
  const out = [];
  let token = '';
  for (let i = 0; i < MAX_PAGES; i++) {
    const r = await call('GET', path, {query: {...query, page_size: 1000, page_token: token}, signal});
    out.push(...(r[field] || []));
    token = r.next_page_token || '';
    if (!token) break;
  }
  return out;
}

// ndjson POSTs or GETs a server-streaming route and yields each message
// as it arrives; an {"error": ...} line ends it with an ApiError.
export async function* ndjson(method, path, body, signal) {
  const resp = await send(method, path, {body, signal, accept: 'application/x-ndjson'});
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  const parse = (line) => {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      throw new ApiError('The stream sent a line that is not JSON', {status: resp.status});
    }
    if (msg && msg.error) {
      const e = msg.error;
      throw makeError(0, JSON.stringify({error: e}), 0);
    }
    return msg;
  };
  try {
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += value;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) yield parse(line);
      }
    }
    if (buf.trim()) yield parse(buf.trim());
  } catch (e) {
    if (e.name === 'AbortError' || e instanceof ApiError) throw e;
    throw new ApiError(`The stream broke off: ${e.message}`, {code: 'UNAVAILABLE'});
  } finally {
    reader.cancel().catch(() => {});
  }
}

const enc = encodeURIComponent;

// Inference (the router): nodes, servable models, generation.
export const listNodes = (signal) => call('GET', 'v1/nodes', {signal}).then((r) => r.nodes || []);
// The servable models with the nodes that have each loaded: GET
// /v1/mesh/models since GET /v1/models became the OpenAI-compatible list;
// servers from before that answer the native list at /v1/models.
export async function listServable(signal) {
  try {
    return await paged('v1/mesh/models', 'models', {}, signal);
  } catch (e) {
    if (e.status !== 404) throw e;
    return paged('v1/models', 'models', {}, signal);
  }
}
// generate yields GenerateResponse messages: text deltas, then the final one.
export const generate = (req, signal) => ndjson('POST', 'v1/generate', req, signal);

// Registry: models, versions, aliases.
export const listModels = (signal) => paged('v1/registry/models', 'models', {}, signal);
export const getModel = (name, signal) => call('GET', `v1/registry/models/${enc(name)}`, {signal});
export const listVersions = (name, signal) => paged(`v1/registry/models/${enc(name)}/versions`, 'versions', {}, signal);
export const setAlias = (name, alias, version) => call('PUT', `v1/registry/models/${enc(name)}/aliases/${enc(alias)}`, {body: {version}});
export const deleteAlias = (name, alias) => call('DELETE', `v1/registry/models/${enc(name)}/aliases/${enc(alias)}`);

// Jobs of the quantizer and the trainer: kind is 'quantizer' or 'trainer'.
export const listJobs = (kind, signal) => paged(`v1/${kind}/jobs`, 'jobs', {}, signal);
export const getJob = (kind, id, signal) => call('GET', `v1/${kind}/jobs/${enc(id)}`, {signal}).then((r) => r.job);
export const cancelJob = (kind, id) => call('POST', `v1/${kind}/jobs/${enc(id)}:cancel`, {body: {}}).then((r) => r.job);
// watchJob yields the job at once and after every change until it ends.
export async function* watchJob(kind, id, signal) {
  for await (const m of ndjson('GET', `v1/${kind}/jobs/${enc(id)}:watch`, undefined, signal)) yield m.job;
}
export const createQuantizeJob = (req) => call('POST', 'v1/quantizer/jobs', {body: req}).then((r) => r.job);

// API keys (served by the registry; admin scope). A new key's secret is
// in the create response only.
export const listKeys = (signal) => call('GET', 'v1/keys', {signal}).then((r) => r.keys || []);
export const createKey = (req) => call('POST', 'v1/keys', {body: req});
export const revokeKey = (name) => call('DELETE', `v1/keys/${enc(name)}`).then((r) => r.key);
