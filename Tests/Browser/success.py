"""The success story: open the Mini App as a test user → a new avatar → 3 selfies → the
starter tier and a receipt e-mail → pay on the simulated bank's page → back in the app the
payment succeeds → generate → live progress → the gallery, every image loaded, and the
full-screen viewer (arrow keys, Escape), both with named controls and AA contrast. No console
error, no CSP violation on the way. On the way: a bad e-mail's message shows above the fixed
Pay bar; the customer's first generation is "#1" (not the global job id); the photo shown as
"2 / 7" downloads as pinglass-2.
"""
import os

from a11y import contrast, unnamed_controls
from harness import USER, Session, expect, images_loaded, tid
from journey import add_selfies, choose_tier, generate, new_avatar, pay, require, to_plan

PHOTOS = int(os.environ.get("PINGLASS_EXPECT_PHOTOS", "7"))

with Session("success") as s:
    page = s.open_app()
    new_avatar(s, page)
    add_selfies(s, page, 3)
    # A bad e-mail: its message is in sight, above the fixed bar with the Pay button.
    to_plan(page)
    tid(page, "receipt-email").fill("customer-at-example")
    tid(page, "tier-starter").click()
    tid(page, "pay").click()
    message = page.locator(".field:has([data-testid=receipt-email]) .field-error")
    expect(message).to_be_visible()
    page.wait_for_timeout(200)   # the scroll settles (instant scrolling; one frame or two)
    box, bar = message.bounding_box(), page.locator("#mainbar").bounding_box()
    s.shot(page, "email-error", full_page=False)
    require(box and bar and box["y"] >= 0 and box["y"] + box["height"] <= bar["y"],
            f"the e-mail's error is not in sight above the Pay bar: message {box}, bar {bar}")
    choose_tier(s, page, "starter", f"customer{USER}@example.com")
    pay(s, page)
    s.check_clean("before generating")
    status = generate(s, page)
    require(status == "completed", f"the job ended {status}")

    gallery = tid(page, "gallery")
    expect(gallery.locator("img")).to_have_count(PHOTOS, timeout=30_000)
    widths = images_loaded(page, "[data-testid=gallery]")
    s.log("gallery image widths:", widths)
    require(len(widths) == PHOTOS and all(w > 0 for w in widths), f"images not all loaded: {widths}")
    require(not tid(page, "refund-notice").is_visible(), "a refund notice on a completed job")
    s.shot(page, "gallery")
    expect(page.locator("h1")).to_have_text("Generation #1")   # the customer's first, whatever the job's id
    a11y = unnamed_controls(page) + contrast(page)[0]

    # The full-screen viewer: open the first photo, the arrow key moves to the next, Escape closes.
    page.locator("[data-testid=gallery] button, [data-testid=gallery] a").first.click()
    viewer = page.locator("dialog[open]")
    expect(viewer).to_be_visible()
    expect(viewer).to_contain_text(f"1 / {PHOTOS}")
    page.keyboard.press("ArrowRight")
    expect(viewer).to_contain_text(f"2 / {PHOTOS}")
    require(images_loaded(page, "dialog[open]")[0] > 0, "the viewer's photo did not load")
    name = viewer.locator("a[download]").get_attribute("download") or ""
    require(name.startswith("pinglass-2."), f"the photo shown as 2 / {PHOTOS} downloads as {name!r}")
    s.shot(page, "viewer", full_page=False)
    a11y += unnamed_controls(page) + contrast(page)[0]
    page.keyboard.press("Escape")
    expect(viewer).to_have_count(0)
    require(not a11y, "accessibility of the gallery and the viewer: " + "; ".join(a11y))
    tid(page, "job-home").click()
    row = page.locator(".rows .row").filter(has_text="Generation #1")
    expect(row).to_contain_text(f"{PHOTOS} portraits")
    s.shot(page, "home-after")
    s.check_clean("the gallery")
    s.result(photos=len(widths), url=page.url)
