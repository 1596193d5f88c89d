// Small DOM helpers: elements are built with h(), never from HTML strings,
// so text from the API is always text.

// h('a', {href: '#/x', class: 'btn', onclick: fn}, 'text', child, [more])
// makes an element. Props: class, text, dataset (object), on* listeners,
// aria-*/data-*/role and other attributes; value, checked, disabled,
// selected, hidden and htmlFor are set as properties. null, undefined and
// false children are skipped; arrays are flattened.
export function h(tag, props, ...children) {
  const el = tag.includes(':') ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4)) : document.createElement(tag);
  if (props) setProps(el, props);
  append(el, children);
  return el;
}

const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'hidden', 'htmlFor', 'open', 'indeterminate', 'multiple', 'required', 'readOnly']);

export function setProps(el, props) {
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else if (v === false) el.removeAttribute(k);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// replace empties el and appends children.
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// uid returns a fresh element ID for label/control pairs.
let seq = 0;
export function uid(prefix = 'id') {
  seq += 1;
  return `${prefix}-${seq}`;
}

// field is a labelled control: <div class="field"><label for=ID>text</label>control hint</div>.
export function field(label, control, hint) {
  if (!control.id) control.id = uid('f');
  let hintEl = null;
  if (hint) {
    hintEl = h('small', {class: 'hint', id: uid('hint')}, hint);
    control.setAttribute('aria-describedby', hintEl.id);
  }
  return h('div', {class: 'field'}, h('label', {htmlFor: control.id}, label), control, hintEl);
}

// message is an inline notice; kind is 'error', 'info' or 'ok'.
export function message(kind, text, ...extra) {
  return h('p', {class: `msg msg-${kind}`, role: kind === 'error' ? 'alert' : 'status'}, text, ...extra);
}

// failure shows an API error where a page's data would be: a short note
// when the mesh wants a key (the banner at the top says the rest).
export function failure(e) {
  // A key that was sent and refused is an error of its own (the message
  // says so); without a key the page only needs one.
  if (e && e.unauthenticated && !e.message.startsWith('The API key was not accepted')) {
    return message('info', 'This page needs an API key: enter one with “API key” at the top right.');
  }
  return message('error', e && e.message ? e.message : String(e));
}

// debounce calls fn once calls stop for ms.
export function debounce(fn, ms) {
  let t = 0;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

// poller calls fn now and then every ms after it settles, until stopped;
// it skips rounds while the page is hidden.
export function poller(fn, ms) {
  let timer = 0;
  let stopped = false;
  const round = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try {
        await fn();
      } catch (e) {
        // fn reports its own errors; keep polling
      }
    }
    if (!stopped) timer = setTimeout(round, ms);
  };
  round();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
