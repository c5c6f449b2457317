"""What every browser story shares: Debian's chromium driven headless by Playwright (never a
browser Playwright downloads), a phone's viewport, a watch on the console and on Content
Security Policy violations, numbered screenshots, and the story's verdict as its exit status.

A story is run by Tests/BrowserTests (a Swift test that starts the stack and the duties) with:
  PINGLASS_APP_URL  the Mini App behind nginx (the stack's PUBLIC_BASE_URL)
  PINGLASS_SIM_URL  the simulator (Telegram's open page, the bank's payment page)
  PINGLASS_USER     the Telegram user id the story plays
  PINGLASS_OUT      the folder for its screenshots (NN-screen.png)
  PINGLASS_CHROMIUM the browser (default /usr/bin/chromium)
  PINGLASS_STORY_SECONDS  how long the story may take (default 200)

    with Session("success") as s:
        page = s.open_app()
        s.shot(page, "home")
        ...
        s.result(jobId=5)          # one `RESULT {json}` line the Swift test reads

Any exception, any console error and any CSP violation (beyond what the story allows with
`allow`, e.g. the 415 a refused upload answers) fails the story: exit status 1.
"""
import json
import os
import re
import signal
import sys
import time
import traceback
import urllib.parse

from playwright.sync_api import expect, sync_playwright

PHONE = {"width": 390, "height": 844}
APP = os.environ.get("PINGLASS_APP_URL", "")
SIM = os.environ.get("PINGLASS_SIM_URL", "")
USER = int(os.environ.get("PINGLASS_USER", "0") or 0)
OUT = os.environ.get("PINGLASS_OUT", ".")
CHROMIUM = os.environ.get("PINGLASS_CHROMIUM", "/usr/bin/chromium")
STORY_SECONDS = int(os.environ.get("PINGLASS_STORY_SECONDS", "200"))

# Reported to Python from every page and frame of the context, whatever the page's CSP (init
# scripts and bindings are not subject to it).
WATCH = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.__pinglassViolation({directive: e.violatedDirective, blocked: e.blockedURI,
                              source: e.sourceFile, line: e.lineNumber, page: location.href});
});
"""


class StoryFailed(Exception):
    pass


class Session:
    """One browser, one context (a phone, `theme`'s colour scheme, `reduced_motion` when asked)
    and what went wrong in it. Use as a context manager: on leaving it checks the console and
    the violations, writes a last screenshot of every open page when something failed, and
    exits the process with the story's status."""

    def __init__(self, name, allow=(), theme="light", reduced_motion="no-preference"):
        self.name = name
        self.allow = [re.compile(a) for a in allow]
        self.theme = theme
        self.reduced_motion = reduced_motion
        self.errors = []        # console errors and uncaught exceptions: "page: text"
        self.violations = []    # CSP violations (securitypolicyviolation events)
        self.shots = 0
        self.started = time.monotonic()
        os.makedirs(OUT, exist_ok=True)

    # -- lifecycle

    def __enter__(self):
        # A story that hangs fails on its own (browser closed, screenshots taken) before the
        # Swift test's deadline kills it.
        def timed_out(signum, frame):
            raise StoryFailed(f"the story took longer than {STORY_SECONDS} s")
        signal.signal(signal.SIGALRM, timed_out)
        signal.alarm(STORY_SECONDS)
        self.pw = sync_playwright().start()
        self.browser = self.pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        self.context = self.new_context(self.theme, self.reduced_motion)
        return self

    def new_context(self, theme="light", reduced_motion="no-preference"):
        context = self.browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                           color_scheme=theme, reduced_motion=reduced_motion, locale="en-US",
                                           accept_downloads=True)
        context.set_default_timeout(15_000)
        context.expose_binding("__pinglassViolation", lambda source, v: self.violations.append(v))
        context.add_init_script(WATCH)
        context.on("page", self.watch)
        return context

    def watch(self, page):
        def console(msg):
            source = (msg.location or {}).get("url", "")
            # Every error counts, a missing /favicon.ico too (both sites answer it with 204).
            if msg.type == "error":
                self.errors.append(f"{page.url}: console: {msg.text}" + (f" ({source})" if source else ""))
        page.on("console", console)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: uncaught: {exc}"))
        page.on("crash", lambda p: self.errors.append(f"{page.url}: the page crashed"))

    def __exit__(self, kind, exc, tb):
        signal.alarm(0)
        failed = exc is not None
        if failed:
            traceback.print_exception(kind, exc, tb)
        problems = self.problems()
        for p in problems:
            print("FAIL", p)
        if failed or problems:
            try:
                for i, page in enumerate(self.context.pages):
                    page.screenshot(path=os.path.join(OUT, f"failed-{i}.png"), full_page=True)
            except Exception as e:  # noqa: BLE001  (the story's own failure is what counts)
                print("no failure screenshot:", e)
        try:
            self.browser.close()
            self.pw.stop()
        except Exception as e:  # noqa: BLE001
            print("closing the browser:", e)
        status = 1 if failed or problems else 0
        print(f"story {self.name}: {'FAILED' if status else 'passed'} in {time.monotonic() - self.started:.1f} s,"
              f" {self.shots} screenshots in {OUT}")
        sys.stdout.flush()
        os._exit(status)

    def problems(self):
        """Console errors and violations the story does not allow."""
        bad = [e for e in self.errors if not any(a.search(e) for a in self.allow)]
        return bad + [f"CSP violation: {json.dumps(v)}" for v in self.violations]

    def check_clean(self, where):
        """Fails now (not only at the end) when something went wrong so far."""
        problems = self.problems()
        if problems:
            raise StoryFailed(f"{where}: " + "; ".join(problems))

    # -- the app

    def open_url(self, user=None, lang="en", theme=None, path=None):
        q = {"user": str(user or USER), "lang": lang, "theme": theme or self.theme}
        if path:
            q["path"] = path
        return f"{SIM}/sim/telegram/open?{urllib.parse.urlencode(q)}"

    def open_app(self, context=None, **kw):
        """Opens the Mini App as Telegram would: the simulator signs the launch parameters for
        the test user and redirects to the app (PINGLASS_APP_URL + path + #tgWebAppData=…)."""
        page = (context or self.context).new_page()
        page.goto(self.open_url(**kw))
        if not page.url.startswith(APP):
            raise StoryFailed(f"the simulator's open page led to {page.url}, not the app at {APP}")
        page.wait_for_load_state("load")
        return page

    def shot(self, page, screen, full_page=True):
        """Writes OUT/NN-screen.png of the whole page (or of the phone's screen: a dialog)."""
        self.shots += 1
        path = os.path.join(OUT, f"{self.shots:02d}-{screen}.png")
        page.screenshot(path=path, full_page=full_page)
        return path

    def result(self, **values):
        print("RESULT " + json.dumps(values))

    def log(self, *args):
        print(f"[{time.monotonic() - self.started:6.1f} s]", *args)
        sys.stdout.flush()


def tid(page, testid):
    return page.get_by_test_id(testid)


def wait_status(locator, statuses, timeout=90_000):
    """Waits until the element's data-status is one of `statuses`; returns it."""
    pattern = re.compile("^(" + "|".join(map(re.escape, statuses)) + ")$")
    expect(locator).to_have_attribute("data-status", pattern, timeout=timeout)
    return locator.get_attribute("data-status")


def selfies(page, n, kind="image/jpeg"):
    """n distinct photos made by the browser's canvas (a face-ish drawing on a different
    background each), as Playwright file payloads."""
    data = page.evaluate(
        """async ([n, kind]) => {
          const out = [];
          for (let i = 0; i < n; i++) {
            const c = document.createElement('canvas');
            c.width = 640; c.height = 800;
            const g = c.getContext('2d');
            g.fillStyle = `hsl(${(i * 97) % 360} 60% 70%)`; g.fillRect(0, 0, 640, 800);
            g.fillStyle = '#e0b89a'; g.beginPath(); g.ellipse(320, 380, 170, 220, 0, 0, 2 * Math.PI); g.fill();
            g.fillStyle = '#333'; g.fillRect(240, 330, 40, 20); g.fillRect(360, 330, 40, 20);
            g.fillRect(280, 480, 80, 12 + i);
            const blob = await new Promise(r => c.toBlob(r, kind, 0.9));
            const bytes = new Uint8Array(await blob.arrayBuffer());
            let s = ''; for (const b of bytes) s += String.fromCharCode(b);
            out.push(btoa(s));
          }
          return out;
        }""", [n, kind])
    import base64
    ext = "jpg" if kind == "image/jpeg" else "png"
    return [{"name": f"selfie-{i + 1}.{ext}", "mimeType": kind, "buffer": base64.b64decode(d)} for i, d in enumerate(data)]


def images_loaded(page, selector):
    """[naturalWidth] of every img under `selector`, after each finished loading."""
    return page.eval_on_selector_all(
        selector + " img",
        """async (imgs) => Promise.all(imgs.map(async (img) => {
             if (!img.complete) await new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); });
             try { await img.decode(); } catch (e) {}
             return img.naturalWidth;
           }))""")


def pay_on_bank_page(session, bank):
    """On the simulated bank's payment page: screenshot, press Pay, land on our return page."""
    bank.wait_for_load_state("load")
    if not bank.url.startswith(SIM + "/pay/"):
        raise StoryFailed(f"the payment page is {bank.url}, not the simulated bank's")
    session.shot(bank, "bank")
    with bank.expect_navigation():
        bank.get_by_role("button", name=re.compile(r"^Pay \d")).click()
    bank.wait_for_load_state("load")
    if "/payment/success" not in bank.url:
        raise StoryFailed(f"after paying the bank led to {bank.url}")
    session.shot(bank, "bank-paid")
