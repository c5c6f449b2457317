// Telegram's theme colours as CSS variables, each text colour nudged until it meets WCAG AA
// (4.5:1) against the backgrounds it is drawn on (docs/webapp.md#theme). Without theme
// parameters nothing is set and app.css follows prefers-color-scheme.

function rgb(hex) {
  const m = /^#?([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(String(hex || '').trim());
  if (!m) return null;
  let h = m[1];
  if (h.length === 3) h = h.split('').map((c) => c + c).join('');
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
}

function hex(c) { return '#' + c.map((v) => Math.round(v).toString(16).padStart(2, '0')).join(''); }

function luminance(c) {
  const [r, g, b] = c.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export function contrast(a, b) {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

function mix(a, b, t) { return a.map((v, i) => v + (b[i] - v) * t); }

/** `fg`, or the nearest colour towards black/white that reads on every one of `bgs`. */
export function readable(fg, bgs, min = 4.5) {
  const darkBg = luminance(bgs[0]) < 0.4;
  const target = darkBg ? [255, 255, 255] : [0, 0, 0];
  for (let t = 0; t <= 1.0001; t += 0.02) {
    const c = mix(fg, target, t).map(Math.round);   // checked as it will be written (hex)
    if (bgs.every((bg) => contrast(c, bg) >= min)) return c;
  }
  return target;
}

/** Sets the CSS variables from Telegram's themeParams (snake_case keys). */
export function applyTheme(params) {
  const root = document.documentElement;
  const bg = rgb(params.bg_color);
  if (!bg) return;
  const dark = luminance(bg) < 0.4;
  root.dataset.scheme = dark ? 'dark' : 'light';
  const surface = rgb(params.secondary_bg_color) || rgb(params.section_bg_color) || mix(bg, dark ? [255, 255, 255] : [0, 0, 0], 0.05);
  const text = readable(rgb(params.text_color) || (dark ? [255, 255, 255] : [0, 0, 0]), [bg, surface]);
  const hint = readable(rgb(params.hint_color) || text, [bg, surface]);
  const link = readable(rgb(params.link_color) || rgb(params.accent_text_color) || text, [bg, surface]);
  const buttonText = rgb(params.button_text_color) || [255, 255, 255];
  // The button's colour gives way, not its label: the label stays Telegram's.
  const button = readable(rgb(params.button_color) || link, [buttonText]);
  const danger = readable(rgb(params.destructive_text_color) || [204, 36, 36], [bg, surface]);
  const ok = readable(dark ? [123, 216, 143] : [29, 111, 49], [bg, surface]);
  const vars = { '--bg': bg, '--surface': surface, '--text': text, '--hint': hint, '--link': link,
    '--button': button, '--button-text': buttonText, '--danger': danger, '--ok': ok };
  for (const [name, c] of Object.entries(vars)) root.style.setProperty(name, hex(c));
}
