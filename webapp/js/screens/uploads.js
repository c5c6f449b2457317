// The selfie upload queue: each file is downscaled, sent on its own request with its own
// progress bar, and ends uploaded (it joins the avatar's selfies), a duplicate, refused by the
// server (the reason in words next to the file) or stopped by the network (retry button).

import { h, fill, uid } from '../dom.js';
import { t, errorText } from '../i18n.js';
import { uploadReference } from '../api.js';
import { downscale } from '../image.js';

const AT_ONCE = 2;

/**
 * uploadQueue({avatarId, room, onUploaded, onSettled, onUnauthorized}) → {el, add(files)}:
 * `room()` says how many more selfies the avatar may take; `onUploaded({id, url})` is told of
 * each stored one and answers whether it was new there; `onSettled()` when the queue is empty;
 * `onUnauthorized(err)` when the server refused the session (401): the queue drops the rest.
 */
export function uploadQueue({ avatarId, room, onUploaded, onSettled, onUnauthorized }) {
  const el = h('ul', { class: 'uploads', 'aria-label': t('upload.list') });
  const waiting = [];
  let running = 0;
  let reserved = 0;
  let ended = false;   // the session was refused: nothing more is sent

  function add(files) {
    for (const file of files) {
      const item = itemFor(file);
      el.append(item.li);
      if (room() - reserved <= 0) { item.refused(t('err.LIMIT_REACHED')); continue; }
      reserved += 1;
      waiting.push(item);
    }
    pump();
  }

  function pump() {
    while (!ended && running < AT_ONCE && waiting.length) {
      const item = waiting.shift();
      running += 1;
      item.run().finally(() => { running -= 1; pump(); if (!ended && !running && !waiting.length && onSettled) onSettled(); });
    }
  }

  function itemFor(file) {
    const name = file.name || 'photo';
    const progressId = uid('progress');
    const progress = h('progress', { id: progressId, max: '100', value: '0', 'aria-label': t('upload.progress', { name }) });
    // A live region from the start (one made live later is not read out): what happens to the
    // file is said; a refusal or a cut connection at once.
    const status = h('span', { class: 'upload-status', 'aria-live': 'polite' }, t('upload.preparing'));
    const actions = h('span', { class: 'upload-actions' });
    const li = h('li', { class: 'upload', 'data-state': 'preparing' },
      h('span', { class: 'upload-name' }, name), progress, status, actions);
    let blob = null;

    function state(s, text) {
      li.dataset.state = s;
      status.setAttribute('aria-live', s === 'refused' || s === 'network' || s === 'duplicate' ? 'assertive' : 'polite');
      status.textContent = text;
    }
    function dismissButton() {
      return h('button', { type: 'button', class: 'icon-button', 'aria-label': t('upload.dismiss', { name }), onclick: () => li.remove() },
        h('span', { 'aria-hidden': 'true' }, '×'));
    }
    function refused(text) {
      state('refused', text);
      progress.hidden = true;
      fill(actions, dismissButton());
    }

    async function run() {
      try {
        if (!blob) blob = (await downscale(file)) || file;
        state('sending', t('upload.sending'));
        const answer = await uploadReference(avatarId, blob, (p) => { progress.value = Math.round(p * 100); });
        const stored = (answer.uploaded || [])[0];
        if (stored) {
          progress.value = 100;
          // The server keeps an image once and answers with the id it has (`duplicate`).
          const added = onUploaded(stored);
          if (stored.duplicate || !added) { state('duplicate', t('upload.duplicate')); progress.hidden = true; fill(actions, dismissButton()); } else li.remove();
          return;
        }
        const no = (answer.rejected || [])[0] || {};
        refused(no.code ? errorText({ code: no.code }, 'upload') : no.reason || errorText({ code: 'UNSUPPORTED_MEDIA_TYPE' }));
      } catch (err) {
        if (err.network) {
          state('network', t('upload.network'));
          fill(actions, h('button', { type: 'button', class: 'button secondary small', 'aria-label': t('upload.retry', { name }),
            onclick: () => { fill(actions); state('sending', t('upload.sending')); waiting.push(item); pump(); } }, t('retry')));
          return;
        }
        if (err.code === 'UNAUTHORIZED') {
          // Not this file's fault: the session expired. The app says so (its own screen).
          ended = true;
          waiting.length = 0;
          if (onUnauthorized) onUnauthorized(err);
          return;
        }
        refused(errorText(err, 'upload'));
      } finally {
        if (li.dataset.state !== 'network') reserved = Math.max(0, reserved - 1);
      }
    }
    const item = { li, run, refused };
    return item;
  }

  return { el, add };
}
