// One generation: live progress (made, failed, of N) every 2 s while the page is visible for
// the first 10 minutes on the screen, then every 15 s (and every 15 s while hidden), stopping
// after an hour with a button to check again; a refund still on its way every 30 s for 10
// minutes, then the same button. The gallery of its released photos (signed links; full-screen
// viewer), and for a partial or failed job what was refunded and when, and until when the
// photos are kept.

import { h, fill } from '../dom.js';
import { t, money, date } from '../i18n.js';
import { failure } from './parts.js';
import { jobTitle, jobCounts, jobNote, photosRemoved } from './jobtext.js';
import { openViewer } from '../viewer.js';

const VISIBLE_MS = 2000;
const FAST_FOR_MS = 10 * 60000;    // 2 s polls for the first 10 minutes of watching
const SLOW_MS = 15000;             // then, and whenever the page is hidden
const STOP_AFTER_MS = 60 * 60000;  // then the page waits for "check again"
const REFUND_MS = 30000;   // a finished job whose refund is still on its way: it moves slowly
const REFUND_FOR_MS = 10 * 60000;
const FINAL = new Set(['completed', 'partial', 'failed', 'canceled']);

export function show(view, params, app) {
  let alive = true;
  let timer = 0;
  const status = h('span', { 'data-testid': 'job-status', 'data-job-id': params.id, class: 'badge' });
  const progress = h('progress', { max: '1', value: '0', 'aria-label': t('job.progressLabel') });
  const counts = h('p', { class: 'counts', 'aria-live': 'polite' });
  const note = h('p', {});
  const refund = h('div', {});
  const kept = h('p', { class: 'hint' });
  // Shown when the screen stopped asking by itself: the job (an hour) or its refund (10 minutes).
  const again = h('div', { class: 'card notice', hidden: true }, h('p', {}, t('job.checkPaused')),
    h('button', { type: 'button', class: 'button secondary', 'data-testid': 'job-check', onclick: () => checkAgain() }, t('pay.checkAgain')));
  const gallery = h('ul', { class: 'gallery', 'data-testid': 'gallery', 'aria-label': t('job.gallery') });
  const photos = [];   // {id, url}: the first signed link of each photo is kept (no flicker)
  const body = h('div', { class: 'stack' }, h('p', { class: 'payment-line' }, status), progress, counts, note, refund, again, kept, gallery);
  const heading = h('h1', {}, t('job.titleBare'));
  view.append(h('section', { class: 'screen' }, heading, body));
  let loaded = false;
  let watching = null;   // 'job' (not final yet) or 'refund' (final, its refund on its way)
  let since = Date.now();   // when the current kind of watching began (or "check again")

  async function poll() {
    timer = 0;
    let job;
    try {
      job = await app.api.job(params.id);
    } catch (err) {
      if (!alive) return;
      if (!loaded) { fill(body, failure(app, err, () => { fill(body, h('p', { class: 'loading' }, t('loading'))); poll(); })); return; }
      if (!err.network) app.fail(err);
      if (!alive) return;   // a 401 ended the session and ran this screen's clean-up: no next poll
      schedule(watching || 'job');
      return;
    }
    if (!alive) return;
    const first = !loaded;
    loaded = true;
    render(job, first);
    if (!FINAL.has(job.status)) schedule('job');
    else if (job.refund && !job.refund.refundedAt && job.refund.status !== 'failed') schedule('refund');
  }

  /** The next poll for `kind`, backing off with the time spent watching; none past the limit. */
  function schedule(kind) {
    clearTimeout(timer);
    timer = 0;
    if (kind !== watching) { watching = kind; since = Date.now(); }
    const age = Date.now() - since;
    const visible = document.visibilityState === 'visible';
    if (age >= (kind === 'refund' ? REFUND_FOR_MS : STOP_AFTER_MS)) { again.hidden = false; return; }
    const wait = kind === 'refund' ? REFUND_MS : visible && age < FAST_FOR_MS ? VISIBLE_MS : SLOW_MS;
    timer = setTimeout(poll, wait);
  }

  function checkAgain() {
    again.hidden = true;
    since = Date.now();
    clearTimeout(timer);
    poll();
  }

  function render(job, first) {
    const p = job.progress || {};
    const was = status.dataset.status;
    status.dataset.status = job.status;
    status.className = `badge status-${job.status}`;
    status.textContent = t(`job.${job.status}`);
    progress.max = Math.max(1, p.total || 0);
    progress.value = (p.completed || 0) + (p.failed || 0);
    if (first) app.api.jobs().then((r) => { if (alive) heading.textContent = jobTitle(job, r.jobs); }, () => { if (alive) heading.textContent = jobTitle(job); });
    // Released photos that are gone (deleted by the customer, or past the retention).
    const removed = photosRemoved(job);
    if (removed) { status.textContent = t('job.photosRemoved'); status.className = 'badge status-removed'; }
    counts.textContent = jobCounts(job);
    counts.hidden = !counts.textContent;
    note.textContent = jobNote(job);
    note.hidden = !note.textContent;
    fill(refund, job.refund ? refundNotice(job.refund) : null);
    // "Kept until" only over photos there are to keep.
    const shown = (job.photos || []).length > 0;
    kept.textContent = removed ? t('job.removed') : job.keptUntil && shown ? t('job.keptUntil', { date: date(job.keptUntil) }) : '';
    kept.hidden = !kept.textContent;
    for (const photo of job.photos || []) {
      if (photos.some((x) => x.id === photo.id)) continue;
      photos.push({ id: photo.id, url: photo.url });
      gallery.append(tile(photos.length - 1));
    }
    gallery.querySelectorAll('img').forEach((img, i) => { img.alt = t('job.photo', { n: i + 1, total: p.total || photos.length }); });
    if (!first && was !== job.status && FINAL.has(job.status)) app.tg.haptic(job.status === 'completed' ? 'success' : 'warning');
    if (FINAL.has(job.status)) app.setMain({ text: t('job.home'), testid: 'job-home', onClick: () => app.home() });
  }

  function tile(index) {
    const photo = photos[index];
    return h('li', {}, h('button', { type: 'button', class: 'tile', onclick: () => openViewer(app, photos, index) },
      h('img', { src: photo.url, alt: '', loading: 'eager', decoding: 'async', width: '300', height: '400' })));
  }

  const onVisible = () => { if (document.visibilityState === 'visible' && timer) { clearTimeout(timer); poll(); } };
  document.addEventListener('visibilitychange', onVisible);
  poll();
  return () => { alive = false; clearTimeout(timer); document.removeEventListener('visibilitychange', onVisible); };
}

/** What was refunded and when, in words: done (with its date), on its way, or stuck with us. */
function refundNotice(r) {
  const amount = money(r.amountRub ?? (r.amount || 0) / 100);
  const kind = r.refundedAt || r.status === 'succeeded' ? 'done' : r.status === 'failed' ? 'failed' : 'pending';
  const day = date(kind === 'done' ? r.refundedAt || r.requestedAt : r.requestedAt);
  const when = day ? t(`refund.when.${kind}`, { date: day }) : '';
  return h('p', { class: 'card notice', 'data-testid': 'refund-notice', 'data-status': r.status }, t(`refund.${kind}`, { amount, when }));
}
