// Pieces several screens share: status badges, a load failure with its retry, an inline
// confirmation (no window.confirm: it blocks Telegram's webview and test browsers alike).

import { h, fill } from '../dom.js';
import { t, errorText } from '../i18n.js';

export function statusBadge(key, status, attrs = {}) {
  return h('span', { class: `badge status-${status}`, ...attrs }, t(key));
}

/** A failed load: what went wrong and a button to try again. */
export function failure(app, err, retry) {
  if (err && err.code === 'UNAUTHORIZED') app.fail(err);
  return h('div', { class: 'card error-card', role: 'alert' },
    h('p', {}, errorText(err)),
    h('button', { type: 'button', class: 'button secondary', onclick: retry }, t('retry')));
}

/** A danger button that asks once more in place before `action` runs. */
export function confirmButton({ label, question, yes, action }) {
  const box = h('div', { class: 'confirm' });
  const ask = () => {
    const no = h('button', { type: 'button', class: 'button secondary', onclick: reset }, t('cancel'));
    fill(box, h('p', { role: 'alert' }, question),
      h('div', { class: 'buttons' },
        h('button', { type: 'button', class: 'button danger', onclick: async (e) => {
          e.currentTarget.disabled = true;
          try { await action(); } finally { reset(); }
        } }, yes), no));
    no.focus();
  };
  function reset() {
    if (!box.isConnected) return;
    const b = h('button', { type: 'button', class: 'button danger-outline', onclick: ask }, label);
    fill(box, b);
  }
  fill(box, h('button', { type: 'button', class: 'button danger-outline', onclick: ask }, label));
  return box;
}

/** A paragraph for an error next to the control it is about (empty until set). */
export function inlineError() {
  const p = h('p', { class: 'field-error', role: 'alert', hidden: true });
  return {
    el: p,
    set(message) { p.textContent = message || ''; p.hidden = !message; },
  };
}
