// Full-screen photo viewer on a native <dialog> (focus stays inside, Escape closes): swipe or
// the arrow keys/buttons move between photos; download and share act on the signed link.

import { h, fill } from './dom.js';
import { t } from './i18n.js';

const SWIPE_PX = 40;

/** "pinglass-2.png" for the photo shown as "2 / 7": its place in the gallery, not its id. */
function fileName(photo, index) {
  const ext = (/\.(jpe?g|png|webp)(?:$|\?)/i.exec(photo.url) || [, 'jpg'])[1];
  return `pinglass-${index + 1}.${ext}`;
}

export function openViewer(app, photos, start) {
  let index = start;
  const img = h('img', { class: 'viewer-img', alt: '', decoding: 'async' });
  const counter = h('p', { class: 'viewer-count', 'aria-live': 'polite' });
  const download = h('a', { class: 'button secondary', rel: 'noopener', target: '_blank' }, t('viewer.download'));
  const prev = h('button', { type: 'button', class: 'icon-button viewer-prev', 'aria-label': t('viewer.prev'), onclick: () => move(-1) }, h('span', { 'aria-hidden': 'true' }, '‹'));
  const next = h('button', { type: 'button', class: 'icon-button viewer-next', 'aria-label': t('viewer.next'), onclick: () => move(1) }, h('span', { 'aria-hidden': 'true' }, '›'));
  const close = h('button', { type: 'button', class: 'icon-button viewer-close', 'aria-label': t('close'), onclick: () => dialog.close() }, h('span', { 'aria-hidden': 'true' }, '×'));
  const share = h('button', { type: 'button', class: 'button secondary', onclick: doShare }, t('viewer.share'));
  const stage = h('div', { class: 'viewer-stage' }, img, prev, next);
  const dialog = h('dialog', { class: 'viewer', 'aria-label': t('viewer.title') },
    close, stage, counter, fill(h('div', { class: 'buttons' }), download, share));

  function show() {
    const photo = photos[index];
    img.src = photo.url;
    img.alt = t('job.photo', { n: index + 1, total: photos.length });
    counter.textContent = `${index + 1} / ${photos.length}`;
    download.href = photo.url;
    download.setAttribute('download', fileName(photo, index));
    prev.disabled = index === 0;
    next.disabled = index === photos.length - 1;
  }
  function move(step) {
    const to = Math.min(photos.length - 1, Math.max(0, index + step));
    if (to !== index) { index = to; show(); app.tg.haptic('light'); }
  }

  download.addEventListener('click', (e) => {
    const photo = photos[index];
    if (app.tg.download(photo.url, fileName(photo, index))) e.preventDefault();
    else if (app.tg.native) { e.preventDefault(); app.tg.openLink(photo.url); }
  });

  async function doShare() {
    const url = photos[index].url;
    try {
      if (navigator.share) { await navigator.share({ url, title: 'PinGlass' }); return; }
      await navigator.clipboard.writeText(url);
      app.say(t('viewer.copied'), 'success');
    } catch { /* the user closed the share sheet */ }
  }

  let x0 = null;
  stage.addEventListener('pointerdown', (e) => { x0 = e.clientX; });
  stage.addEventListener('pointerup', (e) => {
    if (x0 === null) return;
    const dx = e.clientX - x0;
    x0 = null;
    if (Math.abs(dx) >= SWIPE_PX) move(dx < 0 ? 1 : -1);
  });
  stage.addEventListener('pointercancel', () => { x0 = null; });
  dialog.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowLeft') { e.preventDefault(); move(-1); }
    if (e.key === 'ArrowRight') { e.preventDefault(); move(1); }
  });
  const previousBack = app.tg.backHandler;
  dialog.addEventListener('close', () => { dialog.remove(); app.tg.setBack(previousBack); });

  document.body.append(dialog);
  show();
  dialog.showModal();
  close.focus();
  // Telegram's back button closes the viewer first.
  app.tg.setBack(() => dialog.close());
}
