// Consent and privacy: what is kept, for how long, how to delete it; the consent asked
// before the first upload; "delete my photos and data" (DELETE /api/me/data).

import { h, fill } from '../dom.js';
import { t, date } from '../i18n.js';
import { createAvatar } from './avatar.js';
import { failure, confirmButton } from './parts.js';

export function show(view, params, app) {
  let alive = true;
  const body = h('div', { class: 'stack' }, h('p', { class: 'loading' }, t('loading')));
  view.append(h('section', { class: 'screen' }, h('h1', {}, t('privacy.title')), body));

  async function load() {
    let me, avatars, jobs;
    try {
      // What there is to delete decides whether "delete" is offered at all.
      [me, avatars, jobs] = await Promise.all([app.me(), app.api.avatars().catch(() => null), app.api.jobs().catch(() => null)]);
    } catch (err) {
      if (alive) fill(body, failure(app, err, load));
      return;
    }
    if (!alive) return;
    const consentAt = me.user && me.user.consentAt;
    const holds = !!consentAt || !!(me.user && me.user.email) || !avatars || !jobs
      || (avatars.avatars || []).length > 0 || (jobs.jobs || []).some((j) => j.photoCount > 0);
    const days = t('days', { n: me.retentionDays ?? 90 });
    fill(body,
      h('div', { class: 'card' },
        h('p', {}, t('privacy.what')),
        h('p', {}, t('privacy.use')),
        h('p', {}, t('privacy.howLong', { days })),
        h('p', {}, t('privacy.howDelete'))),
      // Delete sits apart, above the consent line, never next to "I agree" (the main bar).
      holds ? h('section', { class: 'group danger-zone', 'aria-labelledby': 'privacy-delete' },
        h('h2', { id: 'privacy-delete' }, t('privacy.deleteTitle')),
        confirmButton({ label: t('privacy.delete'), question: t('privacy.confirm'), yes: t('privacy.confirmYes'), action: erase })) : null,
      h('p', { class: consentAt ? 'ok consent-line' : 'consent-line' }, consentAt ? t('privacy.consentGiven', { date: date(consentAt) }) : t('privacy.consentAsk')));
    if (!consentAt || params.then) app.setMain({ text: t('consent.accept'), testid: 'consent-accept', onClick: accept });
  }

  async function accept() {
    app.setMain({ text: t('consent.accept'), testid: 'consent-accept', busy: true });
    try {
      app.data.me = await app.api.updateMe({ consent: true });
    } catch (err) {
      app.fail(err);
      app.setMain({ text: t('consent.accept'), testid: 'consent-accept', onClick: accept });
      return;
    }
    app.tg.haptic('success');
    if (params.then === 'newAvatar') await createAvatar(app, params.count || 0, { replace: true });
    else app.back();
  }

  async function erase() {
    try {
      const { deleted } = await app.api.deleteMyData();
      app.data.me = null;
      app.home();
      app.say(t('privacy.deleted', { avatars: deleted.avatars ?? 0, references: deleted.references ?? 0, photos: deleted.photos ?? 0 }), 'success');
    } catch (err) {
      app.fail(err);
    }
  }

  load();
  return () => { alive = false; };
}
