// The way from selfies to a job, shown under an avatar's selfies and on home's payment card:
// choose a set (tier, style, receipt e-mail) and pay; follow the payment; generate. The bank's
// page opens outside the Mini App; the payment is asked about every 2 s for at most a minute
// (and at once when the user comes back), then a button checks again. A paid, unused payment
// goes straight to the generate button.

import { h, fill, uid } from '../dom.js';
import { t, money, errorText, catalogueText } from '../i18n.js';
import { failure, inlineError } from './parts.js';
import { choices } from './choices.js';
import { webURL } from '../telegram.js';

const POLL_MS = 2000;
const POLL_FOR_MS = 60000;
export const WAITING = new Set(['new', 'pending', 'authorized']);
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export const usable = (p) => !!(p && p.paid && p.usable && !p.consumed);

/**
 * planFlow(app, {avatarId, avatars, payment, inline}) → {el, stop()}. `payment` is the latest
 * payment's status when the caller has it; `avatars` the ones to choose from (ready ones) when
 * no avatarId is given. `inline` draws the flow's action in place instead of as the screen's
 * main action (home keeps "New avatar" as its own).
 */
export function planFlow(app, { avatarId = null, avatars = [], payment = null, inline = false }) {
  let alive = true;
  let timer = 0;
  let pollUntil = 0;
  let catalogue = null;
  const sel = { tier: null, style: null, avatarId: avatarId || (avatars.length === 1 ? avatars[0].id : null) };
  const body = h('div', { class: 'stack' });
  const slot = h('div', { class: 'inline-action' });
  const el = h('section', { class: 'plan' }, body, inline ? slot : null);

  function action(a) {
    if (!alive) return;
    if (!inline) { app.setMain(a); return; }
    fill(slot, a ? h('button', { type: 'button', class: 'button primary wide', 'data-testid': a.testid,
      disabled: a.enabled === false || !!a.busy, 'aria-busy': a.busy ? 'true' : null, onclick: a.onClick }, a.text) : null);
  }

  async function start() {
    fill(body, h('p', { class: 'loading' }, t('loading')));
    try {
      catalogue = await app.catalogue();
      if (!payment) payment = await app.api.paymentStatus();
    } catch (err) {
      if (alive) fill(body, failure(app, err, start));
      return;
    }
    if (!alive) return;
    sel.style = sel.style || (catalogue.styles[0] && catalogue.styles[0].id);
    if (usable(payment)) paid();
    else if (inline && WAITING.has(payment.status)) watch();
    else choose();
  }

  function styleChoice() {
    return choices({ legend: t('plan.styles'), name: 'style', selected: sel.style, onChange: (v) => { sel.style = v; },
      items: catalogue.styles.map((s) => ({ value: s.id, testid: `style-${s.id}`, title: catalogueText(`style.${s.id}.name`, s.name),
        sub: catalogueText(`style.${s.id}.desc`, s.description) })) });
  }

  function avatarChoice() {
    if (avatarId || avatars.length < 2) return null;
    return choices({ legend: t('home.avatars'), name: 'avatar', selected: sel.avatarId, onChange: (v) => { sel.avatarId = Number(v); action(generateAction(false)); },
      items: avatars.map((a) => ({ value: String(a.id), title: a.name, sub: t('avatar.selfies', { n: a.referenceCount }) })) });
  }

  function statusLine() {
    return h('p', { class: 'payment-line' },
      h('span', { 'data-testid': 'payment-status', 'data-status': payment.status, class: `badge status-${payment.status}` }, t(`payment.${payment.status}`)),
      payment.amountRub !== undefined ? h('span', { class: 'amount' }, setText(payment.amountRub)) : null);
  }

  /** "Starter · 7 portraits · 499 ₽": the set a payment bought (by its amount), else the amount. */
  function setText(amountRub) {
    const tier = catalogue && catalogue.tiers.find((x) => Number(x.amountRub) === Number(amountRub));
    return tier ? `${tierTitle(tier)} · ${t('portraits', { n: tier.photos })} · ${money(amountRub)}` : money(amountRub);
  }

  function choose() {
    const tierOf = (id) => catalogue.tiers.find((x) => x.id === id);
    const emailId = uid('email');
    const hintId = uid('email-hint');
    const remembered = app.data.me && app.data.me.user && app.data.me.user.email;
    const email = h('input', { id: emailId, type: 'email', name: 'email', autocomplete: 'email', inputmode: 'email', required: true,
      'data-testid': 'receipt-email', 'aria-describedby': hintId, maxlength: '64', value: remembered || '' });
    const emailError = inlineError();
    const tierError = inlineError();
    const payError = inlineError();
    const emailField = h('div', { class: 'field' },
      h('label', { for: emailId }, t('plan.email')), email,
      h('p', { id: hintId, class: 'hint' }, t('plan.emailHint')), emailError.el);
    // An error in sight above the fixed main bar: the field and its message (scroll-margin in app.css).
    const inSight = (el) => { if (el.isConnected) el.scrollIntoView({ block: 'nearest' }); };
    const payAction = (busy) => ({ text: sel.tier ? t('pay', { amount: money(tierOf(sel.tier).amountRub) }) : t('plan.choose'),
      testid: 'pay', busy, onClick: pay });
    const waiting = payment && WAITING.has(payment.status) && payment.paymentId;
    fill(body,
      waiting ? h('div', { class: 'card notice' }, h('p', {}, t('home.payPending')),
        h('button', { type: 'button', class: 'button secondary', onclick: () => watch() }, t('pay.checkAgain'))) : null,
      choices({ legend: t('plan.title'), name: 'tier', selected: sel.tier, onChange: (v) => { sel.tier = v; tierError.set(''); action(payAction(false)); },
        items: catalogue.tiers.map((x) => ({ value: x.id, testid: `tier-${x.id}`, title: tierTitle(x), sub: t('portraits', { n: x.photos }), aside: money(x.amountRub) })) }),
      tierError.el,
      styleChoice(),
      emailField,
      payError.el);
    action(payAction(false));
    app.me().then((me) => { if (alive && !email.value && me.user && me.user.email) email.value = me.user.email; }).catch(() => {});

    async function pay() {
      const address = email.value.trim();
      if (!sel.tier) { tierError.set(t('plan.chooseFirst')); inSight(tierError.el); app.tg.haptic('error'); return; }
      if (!EMAIL.test(address)) {
        emailError.set(t('plan.emailInvalid'));
        email.setAttribute('aria-invalid', 'true');
        email.focus({ preventScroll: true });
        inSight(emailField);
        app.tg.haptic('error');
        return;
      }
      emailError.set('');
      email.removeAttribute('aria-invalid');
      action(payAction(true));
      // The portraits are also sent to the chat: asked before the money moves, never blocking.
      if (!(await app.tg.requestWriteAccess()) && app.tg.native) app.say(t('pay.writeAccess'));
      try {
        const created = await app.api.createPayment({ tierId: sel.tier, avatarId: sel.avatarId || undefined, email: address });
        if (app.data.me && app.data.me.user) app.data.me.user.email = address;
        payment = { ...created, status: 'new' };
        const page = webURL(created.confirmationUrl);
        const opened = page && app.tg.openLink(page);
        watch(!page ? t('pay.badLink') : opened ? t('pay.opened') : t('pay.blocked'));
      } catch (err) {
        if (!alive) return;
        payError.set(errorText(err));
        app.tg.haptic('error');
        if (err.code === 'VALIDATION_ERROR' && /mail/i.test(err.message)) { emailError.set(t('plan.emailInvalid')); inSight(emailField); } else inSight(payError.el);
        action(payAction(false));
      }
    }
  }

  /** Follows the payment: every 2 s for a minute, then a button to check again. */
  function watch(note) {
    clearTimeout(timer);
    pollUntil = Date.now() + POLL_FOR_MS;
    const url = webURL(payment.confirmationUrl);   // none at all rather than a link to anything else
    const link = url ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', class: 'button link',
      onclick: (e) => { if (app.tg.native) { e.preventDefault(); app.tg.openLink(url); } } }, t('pay.openAgain')) : null;
    const message = h('p', {}, t('pay.waiting'));
    const render = () => fill(body, h('h2', {}, t('home.payment')), statusLine(), note ? h('p', {}, note) : null, message,
      payment.testMode ? h('p', { class: 'hint' }, t('pay.testMode')) : null, link);
    render();
    reveal();
    action(null);
    const tick = async () => {
      timer = 0;
      try {
        const s = await app.api.paymentStatus(payment.paymentId);
        if (!alive) return;
        payment = { ...payment, ...s };
      } catch (err) {
        if (!alive) return;
        if (!err.network) app.fail(err);
        if (!alive) return;   // a 401 ended the session and stopped this flow: no next tick
      }
      if (usable(payment)) { app.tg.haptic('success'); app.say(t('pay.paid')); paid(); return; }
      if (!WAITING.has(payment.status)) { ended(); return; }
      render();
      if (Date.now() < pollUntil) { timer = setTimeout(tick, POLL_MS); return; }
      message.textContent = t('pay.stillWaiting');
      action({ text: t('pay.checkAgain'), testid: 'payment-check', onClick: () => watch() });
    };
    checkNow = () => { if (timer) { clearTimeout(timer); tick(); } };
    timer = setTimeout(tick, POLL_MS);
  }
  let checkNow = () => {};

  function ended() {
    fill(body, h('h2', {}, t('home.payment')), statusLine(), h('p', {}, payment.consumed ? t('pay.consumed') : t('pay.failed')));
    app.tg.haptic('error');
    action({ text: t('plan.title'), testid: 'payment-new', onClick: () => { payment = null; choose(); } });
  }

  function generateAction(busy) {
    return { text: t('generate'), testid: 'generate', busy, enabled: !!sel.avatarId, onClick: generate };
  }

  const generateError = inlineError();
  function paid() {
    generateError.set('');
    fill(body, h('h2', {}, t('plan.paidTitle')), statusLine(), h('p', {}, t('pay.next')),
      avatarChoice(), !sel.avatarId && avatars.length === 0 ? h('p', { class: 'hint' }, t('plan.needAvatar')) : null,
      styleChoice(), generateError.el);
    action(generateAction(false));
    reveal();
  }

  /** The payment's state in sight when it changes (it sits under the selfies on a phone). */
  function reveal() {
    if (el.isConnected && el.getBoundingClientRect().top > window.innerHeight * 0.6) el.scrollIntoView({ block: 'start' });
  }

  async function generate() {
    action(generateAction(true));
    try {
      const job = await app.api.generate({ avatarId: sel.avatarId, styleId: sel.style, paymentId: payment.paymentId || undefined });
      app.tg.haptic('success');
      app.go('job', { id: job.jobId });
    } catch (err) {
      if (!alive) return;
      generateError.set(errorText(err, 'generate'));
      app.tg.haptic('error');
      if (err.code === 'PAYMENT_CONSUMED' || err.code === 'PAYMENT_REQUIRED') {
        payment = null;
        action({ text: t('plan.title'), testid: 'payment-new', onClick: choose });
      } else action(generateAction(false));
    }
  }

  // Back from the bank's page: ask at once instead of waiting for the next tick.
  const onVisible = () => { if (document.visibilityState === 'visible') checkNow(); };
  document.addEventListener('visibilitychange', onVisible);
  start();
  return { el, stop() { alive = false; clearTimeout(timer); document.removeEventListener('visibilitychange', onVisible); } };
}

function tierTitle(tier) {
  return catalogueText(`tier.${tier.id}`, String(tier.title || tier.id).split(':')[0].trim() || tier.id);
}
