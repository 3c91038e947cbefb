// Building DOM from untrusted data, safely.
//
// Everything the API returns that a person or a feed wrote (summaries, quotes, names,
// reasons, documents) goes into the page as text nodes, never parsed as HTML. `h` is the
// only way this app makes elements: children that are not Nodes become text nodes.

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * h('p', {class: 'x', dataset: {id: 1}, onclick: fn}, 'text', child, [more])
 * Attribute names always come from this code; values may be data (attributes are not parsed
 * as HTML). Links are made with `link`, which checks the URL scheme.
 */
export function h(tag, props = {}, ...children) {
  return build(document.createElement(tag), props, children);
}

/** The same for SVG elements (sparklines). */
export function svg(tag, props = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

function build(el, props, children) {
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.setAttribute('class', value);
    else if (key === 'dataset') {
      for (const [name, v] of Object.entries(value)) if (v !== null && v !== undefined) el.dataset[name] = v;
    } else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'href') throw new Error('use link() for links');
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  appendAll(el, children);
  return el;
}

function appendAll(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children (same child rules as `h`). */
export function fill(el, ...children) {
  el.replaceChildren();
  appendAll(el, children);
  return el;
}

/**
 * A link only for http(s) URLs; anything else (a file path, `javascript:`...) stays text.
 * Opens in a new tab without telling the other site where it came from.
 */
export function link(url, text = url) {
  let parsed = null;
  try {
    parsed = new URL(url);
  } catch {
    // not an absolute URL: a document path, say
  }
  if (!parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
    return h('span', { class: 'document' }, text);
  }
  const a = h('a', { class: 'document', target: '_blank', rel: 'noopener noreferrer' }, text);
  a.href = parsed.href;
  return a;
}

// Times: event times are UTC and shown as UTC, so every reader sees the same clock.

export function formatTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().slice(0, 16).replace('T', ' ');
}

export function timeElement(iso, cls = 'time') {
  return h('time', { class: cls, datetime: iso }, formatTime(iso));
}

export function formatNumber(value, digits = 1) {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '–';
}

/** Restart a CSS animation (the "just changed" flash) on an element already in the page. */
export function flash(el) {
  el.classList.remove('flash');
  void el.offsetWidth; // reflow, so removing and adding the class restarts the animation
  el.classList.add('flash');
}
