// A generation in words, shared by home's list and the job screen: its title (numbered per
// customer, oldest = 1, never by the global id), its counts and its note, said once each.

import { t, date } from '../i18n.js';

/** Released photos that are gone (deleted by the customer, or past the retention). */
export function photosRemoved(job) {
  const p = job.progress || {};
  const shown = job.photos ? job.photos.length : job.photoCount;
  return (job.status === 'completed' || job.status === 'partial') && (p.completed || 0) > 0 && !shown;
}

/** "Generation 2": its place among the customer's jobs (GET /api/jobs, newest first); by date when not listed. */
export function jobTitle(job, jobs) {
  const list = jobs || [];
  const i = list.findIndex((j) => String(j.jobId) === String(job.jobId));
  if (i >= 0) return t('job.title', { n: list.length - i });
  const day = date(job.createdAt);
  return day ? t('job.titleDate', { date: day }) : t('job.titleBare');
}

/** The counts line: how far a running job is, or what a finished one came to. */
export function jobCounts(job) {
  const p = job.progress || {};
  const made = p.completed || 0;
  const failed = p.failed || 0;
  const total = p.total || 0;
  if (photosRemoved(job)) return '';   // the badge and the note say it
  switch (job.status) {
    case 'completed': return made >= total && !failed ? t('job.allReady', { n: total }) : t('job.someReady', { made, total });
    case 'partial': return t('job.someReady', { made, total });
    case 'failed': return '';
    case 'canceled': return made ? t('job.someReady', { made, total }) : '';
    default: return failed ? t('job.runningFailed', { made, total, failed }) : t('job.running', { made, total });
  }
}

/** The sentence under the counts: what to expect, or why fewer came out (not the counts again). */
export function jobNote(job) {
  const p = job.progress || {};
  const made = p.completed || 0;
  const total = p.total || 0;
  switch (job.status) {
    case 'queued': case 'processing': return t('job.wait');
    case 'partial': return t('job.partialText', { n: Math.max(0, total - made) });
    case 'failed': return made ? t('job.withheldText', { made, total }) : t('job.failedText');
    case 'canceled': return t('job.canceledText');
    default: return '';
  }
}
