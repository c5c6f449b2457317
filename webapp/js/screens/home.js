// Home: the user's latest payment (its state is always recoverable here), avatars and jobs,
// and for a new user the three steps with one clear first action.

import { h, fill } from '../dom.js';
import { t, money, date } from '../i18n.js';
import { createAvatar } from './avatar.js';
import { statusBadge, failure } from './parts.js';
import { planFlow, usable, WAITING } from './plan.js';
import { jobTitle, jobCounts, photosRemoved } from './jobtext.js';

export function show(view, params, app) {
  let alive = true;
  let flow = null;
  const body = h('div', { class: 'stack' }, h('p', { class: 'loading' }, t('loading')));
  const name = app.tg.user && app.tg.user.first_name;
  view.append(h('section', { class: 'screen' }, h('h1', {}, name ? t('home.hello', { name }) : t('home.title')), body));

  async function load() {
    fill(body, h('p', { class: 'loading' }, t('loading')));
    const [me, avatars, jobs, payment] = await Promise.allSettled([
      app.me(), app.api.avatars(), app.api.jobs(), app.api.paymentStatus()]);
    if (!alive) return;
    const failed = [me, avatars, jobs, payment].find((r) => r.status === 'rejected');
    if (avatars.status === 'rejected') {
      fill(body, failure(app, avatars.reason, load));
      return;
    }
    if (failed) app.fail(failed.reason);
    if (!alive) return;   // a 401 there ended the session and ran this screen's clean-up: nothing more starts
    const list = avatars.value.avatars || [];
    const jobList = jobs.status === 'fulfilled' ? jobs.value.jobs || [] : [];
    const latest = payment.status === 'fulfilled' ? payment.value : null;
    fill(body,
      latest && latest.status !== 'no_payment' ? paymentCard(latest, list) : null,
      list.length === 0 && jobList.length === 0 ? intro() : null,
      list.length ? section(t('home.avatars'), list.map((a) => avatarRow(app, a))) : null,
      jobList.length ? section(t('home.jobs'), jobList.map((j) => jobRow(app, j, jobList))) : null,
      h('p', {}, h('button', { type: 'button', class: 'button link', onclick: () => app.go('privacy') }, t('home.privacy'))));
    app.setMain({
      text: list.length || jobList.length ? t('avatar.new') : t('home.firstStep'), testid: 'avatar-new',
      onClick: () => newAvatar(app, list.length),
    });
  }

  /** The latest payment: paid and unused, or still with the bank, it carries the flow on. */
  function paymentCard(p, avatars) {
    if (flow) flow.stop();
    flow = null;
    if (usable(p) || WAITING.has(p.status)) {
      flow = planFlow(app, { avatars: avatars.filter((a) => a.referenceCount >= 3), payment: p, inline: true });
      return h('div', { class: 'card payment' }, flow.el);
    }
    return h('section', { class: 'card payment', 'aria-labelledby': 'home-payment' },
      h('h2', { id: 'home-payment' }, t('home.payment')),
      h('p', { class: 'payment-line' },
        h('span', { 'data-testid': 'payment-status', 'data-status': p.status, class: `badge status-${p.status}` }, t(`payment.${p.status}`)),
        p.amountRub !== undefined ? h('span', { class: 'amount' }, money(p.amountRub)) : null,
        p.consumed ? h('span', { class: 'hint' }, t('payment.used')) : null));
  }

  load();
  return () => { alive = false; if (flow) flow.stop(); };
}

async function newAvatar(app, count) {
  const me = await app.me().catch(() => null);
  if (!me || !me.user || !me.user.consentAt) { app.go('privacy', { then: 'newAvatar', count }); return; }
  await createAvatar(app, count);
}

function intro() {
  return h('div', { class: 'card intro' },
    h('p', {}, t('home.intro')),
    h('ol', { class: 'steps' }, h('li', {}, t('home.step1')), h('li', {}, t('home.step2')), h('li', {}, t('home.step3'))));
}

function section(title, rows) {
  return h('section', { class: 'group' }, h('h2', {}, title), h('ul', { class: 'rows' }, rows.map((r) => h('li', {}, r))));
}

function avatarRow(app, a) {
  return h('button', { type: 'button', class: 'row', onclick: () => app.go('avatar', { id: a.id }) },
    h('span', { class: 'row-main' }, h('span', { class: 'row-title' }, a.name),
      h('span', { class: 'row-sub' }, t('avatar.selfies', { n: a.referenceCount }))),
    statusBadge(`avatar.status.${a.status}`, a.status));
}

function jobRow(app, j, all) {
  const removed = photosRemoved(j);
  const done = j.status === 'completed' || j.status === 'partial';
  const sub = [date(j.createdAt), done ? (removed ? '' : t('portraits', { n: j.photoCount ?? 0 })) : jobCounts(j)].filter(Boolean).join(' · ');
  return h('button', { type: 'button', class: 'row', onclick: () => app.go('job', { id: j.jobId }) },
    h('span', { class: 'row-main' }, h('span', { class: 'row-title' }, jobTitle(j, all)),
      sub ? h('span', { class: 'row-sub' }, sub) : null),
    removed ? statusBadge('job.photosRemoved', 'removed') : statusBadge(`job.${j.status}`, j.status));
}
