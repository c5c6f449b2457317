"""What the app refuses, and says so: (1) a file that is not an image (a text file named
like a photo: the API refuses it, 415 or a rejected item) adds no selfie and the page says
why; (2) a second generate for one payment: the customer pays, opens the app in a second tab,
generates in the first and then presses Generate in the second: the API answers 402 (the
payment is used), the second tab says so and starts nothing. The Swift test checks that the
database holds exactly one job. The only console errors allowed are the browser's own lines
for those refused requests (Failed to load resource … 415 / 402 / 409)."""
import re

from harness import USER, Session, expect, tid
from journey import add_selfies, choose_tier, new_avatar, pay, require

REFUSED = r"console: Failed to load resource: the server responded with a status of (415|402|409)"


# Only live regions: a refusal a screen reader would not read out does not count as said.
MESSAGES = "[role=alert], [role=status], [aria-live]"


def messages_now(page, pattern):
    texts = page.locator(MESSAGES).filter(has_text=pattern).all_inner_texts()
    return [t.strip() for t in texts if t.strip()]


def says(page, pattern, before):
    """Waits (15 s at most) for a visible message matching `pattern` that was not there
    before (an alert, a status line, or the refused file's own live status line); returns it."""
    for _ in range(150):
        new = [t for t in messages_now(page, pattern) if t not in before]
        if new:
            return new[0]
        page.wait_for_timeout(100)
    raise AssertionError(f"no new message matching {pattern.pattern!r} (before: {before})")


NOT_A_PHOTO = re.compile(r"JPEG|PNG|WebP|not a photo|image", re.I)
USED = re.compile(r"already|used|pay|paid", re.I)


with Session("refusals", allow=[REFUSED]) as s:
    page = s.open_app()
    new_avatar(s, page)

    before = messages_now(page, NOT_A_PHOTO)
    tid(page, "reference-input").set_input_files(
        {"name": "selfie.jpg", "mimeType": "image/jpeg", "buffer": b"this is a text file, not a photo\n" * 20})
    said = says(page, NOT_A_PHOTO, before)
    s.log("the app said:", said)
    expect(tid(page, "reference-item")).to_have_count(0)
    s.shot(page, "not-an-image")

    add_selfies(s, page, 3)
    choose_tier(s, page, "starter", f"customer{USER}@example.com")
    pay(s, page)

    # The second tab starts at home, which shows the paid set and the way on to generate.
    second = s.open_app()
    second.locator("[data-testid=generate], [data-testid=payment-status]").first.wait_for(state="visible")
    if not tid(second, "generate").is_visible():
        expect(tid(second, "payment-status")).to_have_attribute("data-status", "succeeded")
        second.locator("section:has([data-testid=payment-status]) button").first.click()
    expect(tid(second, "generate")).to_be_visible(timeout=30_000)
    s.shot(second, "second-tab")

    page.bring_to_front()
    tid(page, "generate").click()
    expect(tid(page, "job-status")).to_be_visible(timeout=30_000)
    s.shot(page, "generating")

    second.bring_to_front()
    before = messages_now(second, USED)
    with second.expect_response(lambda r: r.url.endswith("/api/generate") and r.request.method == "POST") as answer:
        tid(second, "generate").click()
    require(answer.value.status in (402, 409), f"the second generate was answered {answer.value.status}")
    said = says(second, USED, before)
    s.log("the second tab said:", said)
    s.shot(second, "second-generate-refused")
    s.check_clean("the refusals")
    s.result(refusal=said)
