"""When the session ends the page stops, and it follows only web addresses.

The session "expires" at the network: a route rewrites the page's Authorization header to
init data the server cannot accept, so the server itself answers 401 (its envelope, its
code). The page's clock is Playwright's (installed before the page loads), so a minute of
polling takes a moment; after each step of page time the story waits (real time) for the
requests that step started. Four checks, each its own browser context:

  home      /api/jobs refused while the latest payment is still with the bank: the app shows
            the expired-session screen and asks nothing more (no catalogue, no payment poll);
  payment   home following that payment, then every request refused: one refused status
            request, the expired screen, and no further tick;
  job       a queued job's progress, then refused: the expired screen and no further poll;
  upload    a selfie upload refused with 401: the expired screen, not "refused" on the file;
  bad link  the bank page handed to the page is javascript: (an answer altered on its way):
            nothing opens, no link to it is drawn, and the page says so.

The Swift test (MiniAppStoryTests.testAnExpiredSessionStopsThePage) made, for PINGLASS_USER,
an avatar `me` without selfies, a queued job (PINGLASS_JOB) and a payment still `new` at the
bank; PINGLASS_USER + 1 is a new customer.
"""
import os
import re

from harness import APP, USER, Session, StoryFailed, expect, selfies, tid
from journey import add_selfies, choose_tier, new_avatar, require

JOB = os.environ.get("PINGLASS_JOB", "")
REFUSED = r"console: Failed to load resource: the server responded with a status of 401"
EXPIRED = "Open PinGlass in Telegram"
BAD = "javascript:document.title='followed'"


class Gate:
    """Counts the page's API requests and refuses the session (a real 401) for those that
    match `refuse` (a predicate on the URL), once `closed` or always."""

    def __init__(self, page, refuse=lambda url: True, closed=False):
        self.refuse = refuse
        self.closed = closed
        self.requests = []
        page.route(re.compile(re.escape(APP) + r"/api/"), self.route)

    def route(self, route):
        url = route.request.url
        self.requests.append(url)
        if self.closed and self.refuse(url):
            headers = dict(route.request.headers)
            headers["authorization"] = "tma user=expired&hash=00"
            route.continue_(headers=headers)
        else:
            route.continue_()


def app_with_clock(s, context, refuse=lambda url: True, closed=False, **kw):
    """The app opened for the test user with the gate in place and the page's clock installed."""
    page = context.new_page()
    gate = Gate(page, refuse=refuse, closed=closed)
    page.clock.install()
    page.goto(s.open_url(**kw))
    require(page.url.startswith(APP), f"the open page led to {page.url}")
    return page, gate


def expired_screen(page):
    expect(page.get_by_role("heading", name=EXPIRED)).to_be_visible(timeout=15_000)
    expect(page.locator("main")).to_contain_text("The session has expired")


def run_page_time(page, seconds, step=2):
    """`seconds` of page time in `step` s steps, each followed by a moment of real time."""
    for _ in range(int(seconds // step)):
        page.clock.fast_forward(step * 1000)
        page.wait_for_timeout(150)


def nothing_more(s, page, gate, where, seconds=70):
    page.wait_for_timeout(500)
    before = len(gate.requests)
    run_page_time(page, seconds)
    later = gate.requests[before:]
    require(not later, f"{where}: the page went on asking after the session ended: {later}")
    s.log(f"{where}: nothing asked in {seconds} s after the expired screen")


with Session("expired", allow=[REFUSED]) as s:
    failures = []

    def check(name, steps):
        """Runs one check; a failure is noted and the next check still runs (the story fails at the end)."""
        try:
            steps()
        except (StoryFailed, AssertionError) as e:
            failures.append(f"{name}: {e}")
            s.log("FAILED", name, e)

    # home: /api/jobs refused among home's four requests.
    def home():
        ctx = s.new_context()
        page, gate = app_with_clock(s, ctx, refuse=lambda url: "/api/jobs" in url, closed=True)
        expired_screen(page)
        s.shot(page, "home-expired")
        require(not any("/api/pricing" in u for u in gate.requests), f"home went on to the payment flow: {gate.requests}")
        nothing_more(s, page, gate, "home")
        ctx.close()
    check("home", home)

    # payment: home follows the payment still with the bank; then the session ends.
    def payment():
        ctx = s.new_context()
        page, gate = app_with_clock(s, ctx)
        expect(tid(page, "payment-status")).to_have_attribute("data-status", re.compile("^(new|pending|authorized)$"))
        run_page_time(page, 4)
        require(sum("/api/payment/status?" in u for u in gate.requests) >= 1, f"home does not follow the payment: {gate.requests}")
        gate.closed = True
        run_page_time(page, 2)
        expired_screen(page)
        s.shot(page, "payment-expired")
        nothing_more(s, page, gate, "payment poll")
        ctx.close()
    check("payment", payment)

    # job: a queued job's progress; then the session ends.
    def job():
        ctx = s.new_context()
        page, gate = app_with_clock(s, ctx, path=f"/?job={JOB}")
        expect(tid(page, "job-status")).to_have_attribute("data-status", "queued")
        gate.closed = True
        run_page_time(page, 2)
        expired_screen(page)
        nothing_more(s, page, gate, "job progress")
        ctx.close()
    check("job", job)

    # upload: the avatar `me`, a selfie sent with an expired session.
    def upload():
        ctx = s.new_context()
        page = ctx.new_page()
        gate = Gate(page)
        page.goto(s.open_url())
        page.get_by_role("button", name=re.compile(r"^me\b")).click()
        field = tid(page, "reference-input")
        expect(field).to_be_attached()
        gate.closed = True
        field.set_input_files(selfies(page, 1))
        expired_screen(page)
        expect(page.locator("[data-state=refused]")).to_have_count(0)
        s.shot(page, "upload-expired")
        ctx.close()
    check("upload", upload)

    # bad link: a new customer pays; the answer names a javascript: page.
    def bad_link():
        page = s.open_app(user=USER + 1)
        new_avatar(s, page)
        add_selfies(s, page, 3)
        choose_tier(s, page, "starter", f"customer{USER + 1}@example.com")

        def altered(route):
            answer = route.fetch()
            body = answer.json()
            require("confirmationUrl" in body, f"no confirmationUrl in {body}")
            body["confirmationUrl"] = BAD
            route.fulfill(response=answer, json=body)
        page.route(re.compile(re.escape(APP) + r"/api/payment/create$"), altered)
        pages = len(s.context.pages)
        tid(page, "pay").click()
        expect(tid(page, "payment-status")).to_be_visible()   # the payment is being followed
        page.wait_for_timeout(1000)
        require(len(s.context.pages) == pages, f"a window opened: {[p.url for p in s.context.pages]}")
        require(page.title() != "followed", "the javascript: address ran")
        expect(page.locator("a[href^='javascript:' i]")).to_have_count(0)
        expect(page.locator("main")).to_contain_text("not a web page")
        s.shot(page, "bad-link")
    check("bad link", bad_link)

    require(not failures, "; ".join(failures))
    s.check_clean("the expired session and the bad link")
    s.result(ok=True)
