"""What the app refuses, and says so: (1) a file that is not an image (a text file named
like a photo: the API refuses it, 415 or a rejected item) adds no selfie and the page says
why; (2) a second generate for one payment: the customer pays, opens the app in a second tab,
generates in the first and then presses Generate in the second: the API answers 402 (the
payment is used), the second tab says so and starts nothing. The Swift test checks that the
database holds exactly one job. The only console errors allowed are the browser's own lines
for those refused requests (Failed to load resource … 415 / 402 / 409)."""
import re

from harness import USER, Session, expect, tid
from journey import accept_consent_if_asked, add_selfies, choose_tier, new_avatar, pay, require

REFUSED = r"console: Failed to load resource: the server responded with a status of (415|402|409)"


def says_something(page, before):
    """Waits for a visible alert or status message whose text is new; returns it."""
    messages = page.locator("[role=alert], [role=status], [aria-live]").filter(has_text=re.compile(r"\S"))
    for _ in range(100):
        texts = [t.strip() for t in messages.all_inner_texts() if t.strip()]
        new = [t for t in texts if t not in before]
        if new:
            return new[0]
        page.wait_for_timeout(100)
    raise AssertionError(f"no message on the page (alerts before: {before})")


def messages_now(page):
    return [t.strip() for t in page.locator("[role=alert], [role=status], [aria-live]").all_inner_texts() if t.strip()]


with Session("refusals", allow=[REFUSED]) as s:
    page = s.open_app()
    new_avatar(s, page)

    before = messages_now(page)
    tid(page, "reference-input").set_input_files(
        {"name": "selfie.jpg", "mimeType": "image/jpeg", "buffer": b"this is a text file, not a photo\n" * 20})
    said = says_something(page, before)
    s.log("the app said:", said)
    expect(tid(page, "reference-item")).to_have_count(0)
    s.shot(page, "not-an-image")

    add_selfies(s, page, 3)
    choose_tier(s, page, "starter", f"customer{USER}@example.com")
    pay(s, page)

    second = s.open_app()
    accept_consent_if_asked(s, second)
    expect(tid(second, "generate")).to_be_visible(timeout=30_000)
    s.shot(second, "second-tab")

    page.bring_to_front()
    tid(page, "generate").click()
    expect(tid(page, "job-status")).to_be_visible(timeout=30_000)
    s.shot(page, "generating")

    second.bring_to_front()
    before = messages_now(second)
    with second.expect_response(lambda r: r.url.endswith("/api/generate") and r.request.method == "POST") as answer:
        tid(second, "generate").click()
    require(answer.value.status in (402, 409), f"the second generate was answered {answer.value.status}")
    said = says_something(second, before)
    s.log("the second tab said:", said)
    s.shot(second, "second-generate-refused")
    s.check_clean("the refusals")
    s.result(refusal=said)
