"""The harness itself, before any story leans on it: (1) it sees what must fail a story: a
CSP violation, a console error, an uncaught exception, on a page served here with a strict
policy; (2) it drives a real page of the stack: the simulated bank's payment page
(PINGLASS_PAY_URL, made by the Swift test), where it presses Pay like a customer; the Swift
test then checks that the payment succeeded in our database."""
import os

from a11y import contrast, motion, unnamed_controls
from harness import Session, StoryFailed, pay_on_bank_page

BAD_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>bad</title>
<h1>A page that breaks its own policy</h1>
<script>document.title = 'inline ran';</script>
<script src="/bad.js"></script>"""
# What the accessibility checks must find: an unnamed button, an unlabelled input, grey on
# white (2.3:1), a spinner that keeps turning under reduced motion.
POOR_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>poor</title>
<style>.faint { color: #aaa; } .spin { animation: spin 1s linear infinite; width: 20px; height: 20px; background: #000; }
@keyframes spin { to { transform: rotate(1turn); } }</style>
<h1>Fine heading</h1><p class="faint">faint text</p><button></button><input type="text"><div class="spin"></div>"""
BAD_JS = "console.error('an error on purpose'); setTimeout(() => { throw new Error('uncaught on purpose'); });"

with Session("harness_check") as s:
    page = s.context.new_page()
    page.route("http://harness.invalid/", lambda r: r.fulfill(
        status=200, body=BAD_PAGE,
        headers={"Content-Type": "text/html", "Content-Security-Policy": "default-src 'self'"}))
    page.route("http://harness.invalid/bad.js", lambda r: r.fulfill(
        status=200, body=BAD_JS, headers={"Content-Type": "text/javascript"}))
    page.goto("http://harness.invalid/")
    # The events arrive asynchronously: wait for each kind (bounded), then check them all.
    for _ in range(100):
        if s.violations and any("uncaught on purpose" in e for e in s.errors):
            break
        page.wait_for_timeout(50)
    s.shot(page, "policy-violation")
    if page.title() == "inline ran":
        raise StoryFailed("the inline script ran: the policy was not applied")
    if not any(v["directive"].startswith("script-src") for v in s.violations):
        raise StoryFailed(f"no script-src violation seen: {s.violations}")
    for expected in ("an error on purpose", "uncaught on purpose", "Content Security Policy"):
        if not any(expected in e for e in s.errors):
            raise StoryFailed(f"not seen: {expected!r} in {s.errors}")
    try:
        s.check_clean("the bad page")
        raise StoryFailed("check_clean passed a page with errors and violations")
    except StoryFailed as e:
        if "passed a page" in str(e):
            raise
    s.log(f"seen: {len(s.violations)} violations, {len(s.errors)} errors")
    s.errors.clear()
    s.violations.clear()
    page.close()

    calm = s.new_context(reduced_motion="reduce")
    poor = calm.new_page()
    poor.route("http://harness.invalid/poor", lambda r: r.fulfill(status=200, body=POOR_PAGE, headers={"Content-Type": "text/html"}))
    poor.goto("http://harness.invalid/poor")
    s.shot(poor, "poor-accessibility")
    names, (low, texts), (moving, _) = unnamed_controls(poor), contrast(poor), motion(poor)
    s.log("unnamed:", names, "low contrast:", low, "moving:", moving)
    if len(names) != 2 or not any("button" in n for n in names) or not any("textbox" in n for n in names):
        raise StoryFailed(f"the unnamed button and input were not both found: {names}")
    if len(low) != 1 or "faint text" not in low[0] or texts != 2:
        raise StoryFailed(f"the faint text alone should fail contrast (of 2 texts): {low}, {texts}")
    if not any("spin" in m for m in moving):
        raise StoryFailed(f"the spinner under reduced motion was not found: {moving}")
    calm.close()

    if "PINGLASS_PAY_URL" in os.environ:   # (not when run by hand, without a stack)
        bank = s.context.new_page()
        bank.goto(os.environ["PINGLASS_PAY_URL"])
        pay_on_bank_page(s, bank)
    s.check_clean("the harness")
