// The one adapter between the page and Telegram (docs/webapp.md#adapter).
//
// Three modes, from the launch parameters Telegram puts in location.hash:
//   telegram  a real Telegram client: loads telegram-web-app.js and drives Telegram.WebApp
//             (MainButton, BackButton, theme, haptics, openLink, requestWriteAccess);
//   sandbox   tgWebAppPlatform=sandbox (the simulator plays Telegram): nothing external is
//             loaded, the page shows its own buttons, theme from tgWebAppThemeParams;
//   browser   no launch parameters: nothing external, own buttons, the browser's scheme.
// Init data lives in this module's memory only (never storage, never the URL after start).

const SCRIPT = 'https://telegram.org/js/telegram-web-app.js';

function launchParams() {
  const hash = location.hash.startsWith('#') ? location.hash.slice(1) : '';
  const p = new URLSearchParams(hash);
  let theme = {};
  try { theme = JSON.parse(p.get('tgWebAppThemeParams') || '{}') || {}; } catch { theme = {}; }
  return { initData: p.get('tgWebAppData') || '', platform: p.get('tgWebAppPlatform') || '', version: p.get('tgWebAppVersion') || '', theme };
}

function userFrom(initData) {
  try {
    const raw = new URLSearchParams(initData).get('user');
    return raw ? JSON.parse(raw) : null;
  } catch { return null; }
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error('telegram-web-app.js did not load'));
    document.head.append(s);
  });
}

/**
 * `url` when it is an absolute http(s) address, else null: the page follows nothing else from
 * an answer (javascript:, data:, relative). The server refuses such a bank page too; this is
 * the second layer (docs/webapp.md#adapter).
 */
export function webURL(url) {
  try {
    const u = new URL(String(url));
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch { return null; }
}

/** The adapter: `await tg.start()` once, then the same calls in every mode. */
export const tg = {
  mode: 'browser',
  initData: '',
  user: null,
  theme: {},
  webApp: null,
  mainHandler: null,
  backHandler: null,
  themeListeners: [],

  async start() {
    const lp = launchParams();
    this.initData = lp.initData;
    this.theme = lp.theme;
    if (lp.platform && lp.platform !== 'sandbox') this.mode = 'telegram';
    else if (lp.platform === 'sandbox' || lp.initData) this.mode = 'sandbox';
    if (this.mode === 'telegram') {
      try {
        await loadScript(SCRIPT);
        this.webApp = window.Telegram && window.Telegram.WebApp;
      } catch { this.webApp = null; }
      if (this.webApp) {
        const w = this.webApp;
        this.initData = w.initData || this.initData;
        this.theme = w.themeParams || this.theme;
        w.onEvent('mainButtonClicked', () => this.mainHandler && this.mainHandler());
        w.onEvent('backButtonClicked', () => this.backHandler && this.backHandler());
        w.onEvent('themeChanged', () => { this.theme = w.themeParams || {}; this.themeListeners.forEach((f) => f(this.theme)); });
        w.ready();
        w.expand();
      } else {
        this.mode = 'sandbox';   // the script is unreachable: the page's own buttons still work
      }
    }
    this.user = userFrom(this.initData);
    // Out of the address bar (copied links, screenshots); Telegram's script has read it already.
    if (location.hash.includes('tgWebAppData')) history.replaceState(null, '', location.pathname + location.search);
  },

  /** True when Telegram draws the main and back buttons (the page hides its own). */
  get native() { return this.mode === 'telegram' && !!this.webApp; },

  languageCode() {
    return (this.user && this.user.language_code) || navigator.language || 'en';
  },

  onThemeChanged(f) { this.themeListeners.push(f); },

  /** The screen's one main action, or null for none: {text, onClick, enabled, busy}. */
  setMain(action) {
    this.mainHandler = action && action.enabled !== false && !action.busy ? action.onClick : null;
    if (!this.native) return;
    const b = this.webApp.MainButton;
    if (!action) { b.hideProgress(); b.hide(); return; }
    b.setText(action.text);
    if (action.enabled === false) b.disable(); else b.enable();
    if (action.busy) b.showProgress(false); else b.hideProgress();
    b.show();
  },

  setBack(handler) {
    this.backHandler = handler;
    if (!this.native) return;
    if (handler) this.webApp.BackButton.show(); else this.webApp.BackButton.hide();
  },

  haptic(kind) {
    const h = this.native && this.webApp.HapticFeedback;
    if (!h) return;
    if (kind === 'success' || kind === 'error' || kind === 'warning') h.notificationOccurred(kind);
    else h.impactOccurred('light');
  },

  /** Opens the bank's page outside the Mini App; false when the browser blocked the window
   * or the address is not a web page (`webURL`). */
  openLink(address) {
    const url = webURL(address);
    if (!url) return false;
    if (this.native) { this.webApp.openLink(url); return true; }
    const w = window.open(url, '_blank');
    if (w) { try { w.opener = null; } catch { /* cross-origin already */ } }
    return !!w;
  },

  /** Resolves true when the bot may write to the user (asked only inside Telegram). */
  requestWriteAccess() {
    if (this.user && this.user.allows_write_to_pm === true) return Promise.resolve(true);
    if (!this.native || typeof this.webApp.requestWriteAccess !== 'function') return Promise.resolve(false);
    return new Promise((resolve) => {
      try { this.webApp.requestWriteAccess((granted) => resolve(!!granted)); } catch { resolve(false); }
    });
  },

  /** Telegram 8.0 downloads a file itself; elsewhere the caller falls back to a link. */
  download(url, fileName) {
    const w = this.webApp;
    if (!this.native || typeof w.downloadFile !== 'function' || !w.isVersionAtLeast('8.0')) return false;
    try { w.downloadFile({ url, file_name: fileName }); return true; } catch { return false; }
  },
};
