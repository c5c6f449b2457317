"""Accessibility checks run on a page: names of controls (Chromium's accessibility tree),
text contrast of computed colours (WCAG AA), motion under prefers-reduced-motion, keyboard
focus. Each returns a list of problems (empty: fine)."""

CONTROL_ROLES = {"button", "link", "textbox", "checkbox", "radio", "combobox", "listbox", "slider",
                 "spinbutton", "searchbox", "switch", "menuitem", "menuitemcheckbox", "menuitemradio", "tab", "option"}


def unnamed_controls(page):
    """Every control in the accessibility tree without an accessible name."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
        bad = []
        for n in nodes:
            role = (n.get("role") or {}).get("value")
            if n.get("ignored") or role not in CONTROL_ROLES:
                continue
            name = str((n.get("name") or {}).get("value", "")).strip()
            if name:
                continue
            what = role
            if "backendDOMNodeId" in n:
                node = cdp.send("DOM.describeNode", {"backendNodeId": n["backendDOMNodeId"]})["node"]
                a = node.get("attributes", [])
                what += f" <{node.get('localName')} " + " ".join(f'{k}="{v}"' for k, v in zip(a[::2], a[1::2])) + ">"
            bad.append(f"no accessible name: {what}")
        return bad
    finally:
        cdp.detach()


def controls_count(page):
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
        return sum(1 for n in nodes if not n.get("ignored") and (n.get("role") or {}).get("value") in CONTROL_ROLES)
    finally:
        cdp.detach()


# Colours through a canvas, so any CSS colour syntax (rgb, oklch, color-mix…) becomes sRGB.
CONTRAST_JS = """
() => {
  const g = document.createElement('canvas').getContext('2d', {willReadFrequently: true});
  const rgba = (c) => { g.clearRect(0, 0, 1, 1); g.fillStyle = '#000'; g.fillStyle = c; g.fillRect(0, 0, 1, 1);
                        const d = g.getImageData(0, 0, 1, 1).data; return [d[0], d[1], d[2], d[3] / 255]; };
  const lum = ([r, gr, b]) => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
                                return 0.2126 * f(r) + 0.7152 * f(gr) + 0.0722 * f(b); };
  const over = (top, under) => { const a = top[3]; return [0, 1, 2].map(i => top[i] * a + under[i] * (1 - a)).concat(1); };
  const canvasColour = () => {
    const scheme = getComputedStyle(document.documentElement).colorScheme || '';
    return scheme.includes('dark') && matchMedia('(prefers-color-scheme: dark)').matches ? [18, 18, 18, 1] : [255, 255, 255, 1];
  };
  // The colour behind el: its and its ancestors' backgrounds composited, or null when an image is in the way.
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const cs = getComputedStyle(e);
      if (cs.backgroundImage !== 'none') return null;
      const c = rgba(cs.backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let colour = layers.length && layers[layers.length - 1][3] >= 1 ? layers.pop() : canvasColour();
    while (layers.length) colour = over(layers.pop(), colour);
    return colour;
  };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].filter(n => n.nodeType === 3 && n.textContent.trim()).map(n => n.textContent.trim()).join(' ');
    if (!own) continue;
    const cs = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || cs.visibility !== 'visible' || el.closest('[aria-hidden=true], [hidden]')) continue;
    if (el.matches(':disabled, [aria-disabled=true]') || el.closest('button:disabled')) continue;  // inactive controls are exempt
    let opacity = 1;
    for (let e = el; e; e = e.parentElement) opacity *= parseFloat(getComputedStyle(e).opacity);
    if (opacity === 0) continue;
    const bg = background(el);
    if (!bg) { out.push({text: own.slice(0, 40), skipped: 'background image'}); continue; }
    const fg = rgba(cs.color);
    const shown = over([fg[0], fg[1], fg[2], fg[3] * opacity], bg);
    const [a, b] = [lum(shown), lum(bg)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(cs.fontSize), bold = parseInt(cs.fontWeight, 10) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    out.push({text: own.slice(0, 40), tag: el.tagName.toLowerCase(), testid: el.dataset.testid || null,
              ratio: Math.round(ratio * 100) / 100, need: large ? 3 : 4.5, colour: cs.color, background: bg.slice(0, 3)});
  }
  return out;
}
"""


def contrast(page):
    """(problems, texts checked): every visible text below WCAG AA (4.5:1, 3:1 when large)."""
    found = page.evaluate(CONTRAST_JS)
    checked = [t for t in found if "ratio" in t]
    bad = [f"contrast {t['ratio']} < {t['need']}: {t['text']!r} ({t['tag']}, colour {t['colour']} on rgb{tuple(t['background'])})"
           for t in checked if t["ratio"] < t["need"]]
    return bad, len(checked)


MOTION_JS = """
() => {
  const secs = (list) => list.split(',').map(s => s.trim()).map(s => s.endsWith('ms') ? parseFloat(s) / 1000 : parseFloat(s));
  const bad = [];
  let moving = 0;
  for (const el of document.querySelectorAll('*')) {
    for (const pseudo of [null, '::before', '::after']) {
      const cs = getComputedStyle(el, pseudo);
      const what = el.tagName.toLowerCase() + (el.dataset.testid ? `[${el.dataset.testid}]` : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '') + (pseudo || '');
      if (cs.animationName !== 'none' && Math.max(...secs(cs.animationDuration)) > 0.01) bad.push(`animation ${cs.animationName} ${cs.animationDuration} on ${what}`);
      if (cs.transitionProperty !== 'none' && Math.max(...secs(cs.transitionDuration)) > 0.01) bad.push(`transition ${cs.transitionProperty} ${cs.transitionDuration} on ${what}`);
      if (cs.animationName !== 'none' || Math.max(...secs(cs.transitionDuration)) > 0) moving++;
    }
  }
  for (const a of document.getAnimations()) {
    const t = a.effect && a.effect.getComputedTiming ? a.effect.getComputedTiming() : {};
    if (a.playState === 'running' && (t.duration > 10 || t.iterations === Infinity && t.duration > 0)) bad.push(`running animation ${a.animationName || a.id || ''} (${t.duration} ms)`);
  }
  if (document.documentElement && getComputedStyle(document.documentElement).scrollBehavior === 'smooth') bad.push('smooth scrolling');
  return {bad, moving};
}
"""


def motion(page, busy=False):
    """(problems, elements with motion declared): under reduced motion nothing may move for
    longer than 10 ms. With `busy`, every button is marked aria-busy while measuring (the
    state in which the app shows its spinner), then restored."""
    if busy:
        page.evaluate("() => document.querySelectorAll('button:not([aria-busy])').forEach(b => { b.setAttribute('aria-busy', 'true'); b.dataset.a11yBusy = '1'; })")
    try:
        r = page.evaluate(MOTION_JS)
    finally:
        if busy:
            page.evaluate("() => document.querySelectorAll('[data-a11y-busy]').forEach(b => { b.removeAttribute('aria-busy'); delete b.dataset.a11yBusy; })")
    return r["bad"], r["moving"]


FOCUS_JS = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const label = el.labels && el.labels.length ? el.labels[0] : null;
  // A visually hidden control (a file input behind its label) shows its focus on the label.
  const r = el.getBoundingClientRect();
  const shown = r.width > 2 && r.height > 2 ? [el] : [];
  if (label) shown.push(label);
  const ring = (e) => { const cs = getComputedStyle(e);
    return (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0) || (cs.boxShadow && cs.boxShadow !== 'none'); };
  return {testid: el.dataset.testid || (label && label.dataset.testid) || null, tag: el.tagName.toLowerCase(),
          visible: shown.some(ring), focusVisible: el.matches(':focus-visible')};
}
"""


def focused(page):
    return page.evaluate(FOCUS_JS)


def tab_to(page, testid, limit=60):
    """Presses Tab until the element with `testid` (or a label for it) has the focus; returns
    how it looks focused. Fails after `limit` presses."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        f = focused(page)
        if f and f["testid"] == testid:
            return f
    raise AssertionError(f"{testid} is not reachable with Tab ({limit} presses)")
