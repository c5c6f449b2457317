"""The success story: open the Mini App as a test user → a new avatar → 3 selfies → the
starter tier and a receipt e-mail → pay on the simulated bank's page → back in the app the
payment succeeds → generate → live progress → the gallery, every image loaded, and the
full-screen viewer (arrow keys, Escape), both with named controls and AA contrast. No console
error, no CSP violation on the way."""
import os

from a11y import contrast, unnamed_controls
from harness import USER, Session, expect, images_loaded, tid
from journey import add_selfies, choose_tier, generate, new_avatar, pay, require

PHOTOS = int(os.environ.get("PINGLASS_EXPECT_PHOTOS", "7"))

with Session("success") as s:
    page = s.open_app()
    new_avatar(s, page)
    add_selfies(s, page, 3)
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
    a11y = unnamed_controls(page) + contrast(page)[0]

    # The full-screen viewer: open the first photo, the arrow key moves to the next, Escape closes.
    page.locator("[data-testid=gallery] button, [data-testid=gallery] a").first.click()
    viewer = page.locator("dialog[open]")
    expect(viewer).to_be_visible()
    expect(viewer).to_contain_text(f"1 / {PHOTOS}")
    page.keyboard.press("ArrowRight")
    expect(viewer).to_contain_text(f"2 / {PHOTOS}")
    require(images_loaded(page, "dialog[open]")[0] > 0, "the viewer's photo did not load")
    s.shot(page, "viewer", full_page=False)
    a11y += unnamed_controls(page) + contrast(page)[0]
    page.keyboard.press("Escape")
    expect(viewer).to_have_count(0)
    require(not a11y, "accessibility of the gallery and the viewer: " + "; ".join(a11y))
    s.check_clean("the gallery")
    s.result(photos=len(widths), url=page.url)
