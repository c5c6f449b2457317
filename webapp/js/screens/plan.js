// Choose a set and pay, follow the payment, then generate. The bank's page opens outside the
// Mini App; this screen asks GET /api/payment/status every 2 s for at most a minute (and at
// once when the user comes back), then offers to check again. A paid, unused payment skips
// straight to the style and the generate button.

import { h, fill, uid } from '../dom.js';
import { t, money, errorText } from '../i18n.js';
import { failure, inlineError } from './parts.js';
import { choices } from './choices.js';

const POLL_MS = 2000;
const POLL_FOR_MS = 60000;
const WAITING = new Set(['new', 'pending', 'authorized']);
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function show(view, params, app) {
  let alive = true;
  let timer = 0;
  let pollUntil = 0;
  const sel = { tier: null, style: null, avatarId: params.avatarId || null };
  const title = h('h1', {}, t('plan.title'));
  const body = h('div', { class: 'stack' }, h('p', { class: 'loading' }, t('loading')));
  view.append(h('section', { class: 'screen' }, title, body));
  let catalogue;
  let avatars = [];
  let payment = null;   // {paymentId, confirmationUrl?, status…}

  async function load() {
    fill(body, h('p', { class: 'loading' }, t('loading')));
    try {
      const [cat, latest, list] = await Promise.all([app.catalogue(), app.api.paymentStatus(params.paymentId),
        sel.avatarId ? null : app.api.avatars()]);
      catalogue = cat;
      avatars = list ? (list.avatars || []).filter((a) => a.referenceCount >= 3) : [];
      if (!sel.avatarId && avatars.length === 1) sel.avatarId = avatars[0].id;
      sel.tier = sel.tier || (cat.tiers[0] && cat.tiers[0].id);
      sel.style = sel.style || (cat.styles[0] && cat.styles[0].id);
      if (!alive) return;
      if (latest.paid && latest.usable && !latest.consumed) { payment = latest; paid(); return; }
      if (params.watch && WAITING.has(latest.status)) { payment = latest; watch(); return; }
      choose();
    } catch (err) {
      if (alive) fill(body, failure(app, err, load));
    }
  }

  function styleChoice() {
    return choices({ legend: t('plan.styles'), name: 'style', selected: sel.style, onChange: (v) => { sel.style = v; },
      items: catalogue.styles.map((s) => ({ value: s.id, testid: `style-${s.id}`, title: s.name, sub: s.description })) });
  }

  function avatarChoice() {
    if (params.avatarId || avatars.length < 2) return null;
    return choices({ legend: t('home.avatars'), name: 'avatar', selected: sel.avatarId, onChange: (v) => { sel.avatarId = Number(v); },
      items: avatars.map((a) => ({ value: String(a.id), testid: `avatar-${a.id}`, title: a.name, sub: t('avatar.selfies', { n: a.referenceCount }) })) });
  }

  function choose() {
    title.textContent = t('plan.title');
    const tierOf = (id) => catalogue.tiers.find((x) => x.id === id);
    const emailId = uid('email');
    const hintId = uid('email-hint');
    const remembered = app.data.me && app.data.me.user && app.data.me.user.email;
    const email = h('input', { id: emailId, type: 'email', name: 'email', autocomplete: 'email', inputmode: 'email', required: true,
      'data-testid': 'receipt-email', 'aria-describedby': hintId, value: remembered || '' });
    const emailError = inlineError();
    const payError = inlineError();
    const mainFor = (busy) => ({ text: t('pay', { amount: money(tierOf(sel.tier).amountRub) }), testid: 'pay', busy, onClick: pay });
    fill(body,
      choices({ legend: t('plan.tiers'), name: 'tier', selected: sel.tier, onChange: (v) => { sel.tier = v; app.setMain(mainFor(false)); },
        items: catalogue.tiers.map((x) => ({ value: x.id, testid: `tier-${x.id}`, title: tierTitle(x), sub: t('portraits', { n: x.photos }), aside: money(x.amountRub) })) }),
      styleChoice(),
      avatarChoice(),
      h('div', { class: 'field' },
        h('label', { for: emailId }, t('plan.email')), email,
        h('p', { id: hintId, class: 'hint' }, t('plan.emailHint')), emailError.el),
      payError.el);
    app.setMain(mainFor(false));
    app.me().then((me) => { if (alive && !email.value && me.user && me.user.email) email.value = me.user.email; }).catch(() => {});

    async function pay() {
      const address = email.value.trim();
      if (!EMAIL.test(address)) { emailError.set(t('plan.emailInvalid')); email.setAttribute('aria-invalid', 'true'); email.focus(); app.tg.haptic('error'); return; }
      emailError.set('');
      email.removeAttribute('aria-invalid');
      app.setMain(mainFor(true));
      // The portraits are also sent to the chat: ask before the money moves, never block on it.
      if (!(await app.tg.requestWriteAccess()) && app.tg.native) app.say(t('pay.writeAccess'));
      try {
        const created = await app.api.createPayment({ tierId: sel.tier, avatarId: sel.avatarId || undefined, email: address });
        if (app.data.me && app.data.me.user) app.data.me.user.email = address;
        payment = { ...created, status: 'new' };
        const opened = app.tg.openLink(created.confirmationUrl);
        watch(opened ? t('pay.opened') : t('pay.blocked'));
      } catch (err) {
        if (!alive) return;
        payError.set(errorText(err));
        app.tg.haptic('error');
        if (err.code === 'VALIDATION_ERROR' && /mail/i.test(err.message)) emailError.set(t('plan.emailInvalid'));
        app.setMain(mainFor(false));
      }
    }
  }

  function statusLine() {
    return h('p', { class: 'payment-line' },
      h('span', { 'data-testid': 'payment-status', 'data-status': payment.status, class: `badge status-${payment.status}` }, t(`payment.${payment.status}`)),
      payment.amountRub !== undefined ? h('span', { class: 'amount' }, money(payment.amountRub)) : null);
  }

  /** Follows the payment: every 2 s for a minute, then a button to check again. */
  function watch(note) {
    title.textContent = t('plan.title');
    pollUntil = Date.now() + POLL_FOR_MS;
    const link = payment.confirmationUrl ? h('a', { href: payment.confirmationUrl, target: '_blank', rel: 'noopener noreferrer', class: 'button link',
      onclick: (e) => { if (app.tg.native) { e.preventDefault(); app.tg.openLink(payment.confirmationUrl); } } }, t('pay.openAgain')) : null;
    const message = h('p', { 'aria-live': 'polite' }, t('pay.waiting'));
    const render = () => fill(body, statusLine(), note ? h('p', {}, note) : null, message,
      payment.testMode ? h('p', { class: 'hint' }, t('pay.testMode')) : null, link);
    render();
    app.setMain(null);
    const tick = async () => {
      timer = 0;
      try {
        const s = await app.api.paymentStatus(payment.paymentId);
        if (!alive) return;
        payment = { ...payment, ...s };
      } catch (err) {
        if (!alive) return;
        if (!err.network) { app.fail(err); }
      }
      if (payment.paid && payment.usable && !payment.consumed) { app.say(t('pay.paid'), 'success'); paid(); return; }
      if (!WAITING.has(payment.status)) { ended(); return; }
      render();
      if (Date.now() < pollUntil) { timer = setTimeout(tick, POLL_MS); return; }
      message.textContent = t('pay.stillWaiting');
      app.setMain({ text: t('pay.checkAgain'), testid: 'payment-check', onClick: () => { note = ''; watch(); } });
    };
    watch.now = () => { if (timer) { clearTimeout(timer); tick(); } };
    timer = setTimeout(tick, POLL_MS);
  }

  function ended() {
    fill(body, statusLine(), h('p', {}, payment.consumed ? t('pay.consumed') : t('pay.failed')));
    app.tg.haptic('error');
    app.setMain({ text: t('plan.title'), testid: 'payment-new', onClick: () => { payment = null; choose(); } });
  }

  function paid() {
    title.textContent = t('plan.paidTitle');
    const error = inlineError();
    fill(body, statusLine(), h('p', {}, t('pay.paid')), styleChoice(), avatarChoice(), error.el);
    const main = (busy) => ({ text: t('generate'), testid: 'generate', busy, enabled: !!sel.avatarId, onClick: start });
    app.setMain(main(false));
    body.addEventListener('change', () => app.setMain(main(false)));
    async function start() {
      app.setMain(main(true));
      try {
        const job = await app.api.generate({ avatarId: sel.avatarId, styleId: sel.style, paymentId: payment.paymentId || undefined });
        app.tg.haptic('success');
        app.replace('job', { id: job.jobId });
      } catch (err) {
        if (!alive) return;
        error.set(errorText(err, 'generate'));
        app.tg.haptic('error');
        if (err.code === 'PAYMENT_CONSUMED' || err.code === 'PAYMENT_REQUIRED') {
          app.setMain({ text: t('plan.title'), testid: 'payment-new', onClick: () => { payment = null; choose(); } });
        } else app.setMain(main(false));
      }
    }
  }

  // Back from the bank's page: ask at once instead of waiting for the next tick.
  const onVisible = () => { if (document.visibilityState === 'visible' && watch.now) watch.now(); };
  document.addEventListener('visibilitychange', onVisible);
  load();
  return () => { alive = false; clearTimeout(timer); document.removeEventListener('visibilitychange', onVisible); };
}

function tierTitle(tier) {
  const name = String(tier.title || tier.id).split(':')[0].trim();
  return name || tier.id;
}
