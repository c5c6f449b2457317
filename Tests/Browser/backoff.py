"""The job screen asks less as time goes by, and stops: a queued job (no duty runs, it stays
queued) is asked every 2 s for the first 10 minutes, then every 15 s, and after an hour not
at all until "check again"; a refund on its way is asked every 30 s for 10 minutes, then the
same button. The page's clock is Playwright's (installed before the page loads): page time
jumps, and after each step the story waits a moment of real time for the request it started.

The Swift test (MiniAppStoryTests.testTheJobScreenBacksOffAndStops) made, for PINGLASS_USER,
a queued job (PINGLASS_JOB) and a failed one whose refund is still pending (PINGLASS_REFUND_JOB).
"""
import os
import re

from harness import APP, Session, expect, tid
from journey import require

JOB = os.environ["PINGLASS_JOB"]
REFUND_JOB = os.environ["PINGLASS_REFUND_JOB"]


def open_job(s, job):
    page = s.context.new_page()
    asked = []
    page.on("request", lambda r: asked.append(r.url) if re.search(rf"/api/jobs/{job}$", r.url) else None)
    page.clock.install()
    page.goto(s.open_url(path=f"/?job={job}"))
    require(page.url.startswith(APP), f"the open page led to {page.url}")
    return page, asked


def step(page, seconds):
    page.clock.fast_forward(int(seconds * 1000))
    page.wait_for_timeout(200)


def polls_during(page, asked, seconds, every):
    """How many times the job was asked during `seconds` of page time, stepping `every` s."""
    before = len(asked)
    for _ in range(int(seconds // every)):
        step(page, every)
    return len(asked) - before


with Session("backoff") as s:
    page, asked = open_job(s, JOB)
    expect(tid(page, "job-status")).to_have_attribute("data-status", "queued")
    check = tid(page, "job-check")
    expect(check).to_be_hidden()

    n = polls_during(page, asked, 20, 2)
    s.log("first 20 s:", n, "polls")
    require(n >= 8, f"a queued job on a visible page is asked every 2 s at first: {n} polls in 20 s")

    step(page, 10 * 60)   # past the first 10 minutes (the waiting poll fires once)
    n = polls_during(page, asked, 60, 2)
    s.log("after 10 minutes, 60 s:", n, "polls")
    require(2 <= n <= 5, f"after 10 minutes every 15 s: {n} polls in 60 s")

    step(page, 50 * 60)   # past the hour
    expect(check).to_be_visible()
    n = polls_during(page, asked, 5 * 60, 15)
    s.log("after an hour, 5 minutes:", n, "polls")
    require(n == 0, f"after an hour the page waits for the button: {n} polls in 5 minutes")
    s.shot(page, "job-paused")

    before = len(asked)
    check.click()
    expect(check).to_be_hidden()
    page.wait_for_timeout(300)
    require(len(asked) - before == 1, f"check again asks once at once: {asked[before:]}")
    n = polls_during(page, asked, 10, 2)
    require(n >= 4, f"after check again every 2 s again: {n} polls in 10 s")
    page.close()

    page, asked = open_job(s, REFUND_JOB)
    notice = tid(page, "refund-notice")
    expect(notice).to_have_attribute("data-status", "pending")
    n = polls_during(page, asked, 120, 10)
    s.log("refund pending, 2 minutes:", n, "polls")
    require(3 <= n <= 5, f"a refund on its way is asked every 30 s: {n} polls in 2 minutes")
    step(page, 10 * 60)
    expect(tid(page, "job-check")).to_be_visible()
    n = polls_during(page, asked, 5 * 60, 30)
    require(n == 0, f"after 10 minutes the refund waits for the button: {n} polls in 5 minutes")
    s.shot(page, "refund-paused")
    s.check_clean("the backoff")
    s.result(ok=True)
