// Start-up and the screen router (docs/webapp.md#structure). Screens live on an in-memory
// stack (no hash: Telegram owns it); `?job=<id>` opens that job over home. Each screen is
// `show(view, params, app)` returning its clean-up (timers, listeners).

import { tg } from './telegram.js';
import { applyTheme } from './theme.js';
import { setLanguage, t, errorText } from './i18n.js';
import { api, setInitData, hasInitData } from './api.js';
import { h, fill } from './dom.js';
import * as home from './screens/home.js';
import * as privacy from './screens/privacy.js';
import * as avatar from './screens/avatar.js';
import * as job from './screens/job.js';

const screens = { home, privacy, avatar, job };
const stack = [];
let cleanup = null;
let closed = false;   // the session is over (no or expired init data): nothing more is drawn
let toastTimer = 0;

const $ = (id) => document.getElementById(id);

/** What every screen is given: navigation, the main action, messages, the shared data. */
export const app = {
  api,
  tg,
  /** Loaded once and refreshed by the screens that change it. */
  data: { me: null, pricing: null, styles: null },

  go(name, params = {}) { stack.push({ name, params }); render(); },
  replace(name, params = {}) { stack.pop(); stack.push({ name, params }); render(); },
  back() { if (stack.length > 1) { stack.pop(); render(); } },
  home() { stack.length = 0; stack.push({ name: 'home', params: {} }); render(); },

  /** The screen's one main action ({text, testid, onClick, enabled, busy}) or null. */
  setMain(action) {
    if (closed) action = null;
    tg.setMain(action);
    const bar = $('mainbar');
    if (!action || tg.native) { bar.hidden = true; bar.replaceChildren(); return; }
    const busy = !!action.busy;
    fill(bar, h('button', {
      type: 'button', class: 'button primary wide', 'data-testid': action.testid,
      disabled: action.enabled === false || busy, 'aria-busy': busy ? 'true' : null,
      onclick: () => { if (tg.mainHandler) tg.mainHandler(); },
    }, action.text));
    bar.hidden = false;
  },

  /** A short message read out by screen readers (and shown when it is an error). */
  say(message, kind = 'info') {
    $('live').textContent = message;
    if (kind === 'error' || kind === 'success') tg.haptic(kind);
    if (kind === 'info') return;
    const toast = $('toast');
    toast.textContent = message;
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.hidden = true; }, 6000);
  },

  fail(err, context) {
    if (err && err.code === 'UNAUTHORIZED') { outside(t('err.UNAUTHORIZED')); return; }
    app.say(errorText(err, context), 'error');
  },

  async me() {
    if (!app.data.me) app.data.me = await api.me();
    return app.data.me;
  },
  async catalogue() {
    if (!app.data.pricing) [app.data.pricing, app.data.styles] = await Promise.all([api.pricing(), api.styles()]);
    return { tiers: app.data.pricing.tiers || [], styles: app.data.styles.styles || [] };
  },
};

function render() {
  if (closed) return;
  if (cleanup) { try { cleanup(); } catch { /* a screen's clean-up never blocks the next */ } }
  cleanup = null;
  const top = stack[stack.length - 1];
  const view = $('main');
  view.replaceChildren();
  app.setMain(null);
  const canGoBack = stack.length > 1;
  tg.setBack(canGoBack ? () => app.back() : null);
  $('back').hidden = !canGoBack || tg.native;
  $('toast').hidden = true;
  cleanup = screens[top.name].show(view, top.params, app) || null;
  window.scrollTo(0, 0);
  const heading = view.querySelector('h1');
  if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
}

function outside(message) {
  if (cleanup) cleanup();
  cleanup = null;
  closed = true;
  app.setMain(null);
  tg.setBack(null);
  $('back').hidden = true;
  fill($('main'), h('section', { class: 'screen' },
    h('h1', {}, t('outside.title')), h('p', {}, message || t('outside.text'))));
}

async function start() {
  await tg.start();
  document.documentElement.dataset.mode = tg.native ? 'telegram' : tg.mode;
  setLanguage(tg.languageCode());
  applyTheme(tg.theme || {});
  tg.onThemeChanged(applyTheme);
  setInitData(tg.initData);
  $('back').setAttribute('aria-label', t('back'));
  $('back').addEventListener('click', () => app.back());
  document.querySelector('.skip').textContent = t('skip');
  if (!hasInitData()) { outside(); return; }
  stack.push({ name: 'home', params: {} });
  const jobId = new URLSearchParams(location.search).get('job');
  if (jobId && /^\d+$/.test(jobId)) stack.push({ name: 'job', params: { id: jobId } });
  render();
}

start();
