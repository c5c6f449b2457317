// A small element builder: h('button', {class: 'x', onclick: f, 'data-testid': 'pay'}, 'Pay').
// Never sets a style attribute (the CSP allows none); classes and CSS variables only.

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'multiple', 'selected', 'htmlFor']);

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let ids = 0;
/** A unique id for label/aria wiring. */
export function uid(prefix) { ids += 1; return `${prefix}-${ids}`; }

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
