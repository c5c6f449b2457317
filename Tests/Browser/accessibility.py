"""Accessibility of the Mini App: every control has an accessible name and every text meets
WCAG AA contrast on each screen up to the payment, in the light theme in English and the
dark theme in Russian (the simulator's open page passes Telegram's theme and the user's
language; the browser prefers the same scheme); one
customer goes from home to the live progress with the keyboard alone (Tab, Enter, Space,
typing: the file chooser and the bank's page included), in a browser that prefers reduced
motion, where nothing on any screen moves for longer than 10 ms. The Swift test runs no duty,
so the job stays queued and the progress screen stays up to be checked; it then checks the
keyboard customer's payment and job in the database."""
from a11y import contrast, controls_count, motion, tab_to, unnamed_controls
from harness import USER, Session, expect, selfies, tid, wait_status
from journey import add_selfies, choose_tier, new_avatar, require

problems = []


def check(s, page, screen, theme):
    s.shot(page, f"{theme}-{screen}")
    names = unnamed_controls(page)
    low, texts = contrast(page)
    _, moving = motion(page, busy=True)
    s.log(f"{theme} {screen}: {controls_count(page)} controls, {texts} texts checked, {moving} elements move with buttons busy")
    require(texts > 0, f"{theme} {screen}: no text to check")
    for p in names + low:
        problems.append(f"{theme} {screen}: {p}")
        s.log("PROBLEM", problems[-1])


def themed_screens(s, theme, user, lang):
    context = s.new_context(theme=theme) if theme != s.theme else s.context
    page = s.open_app(context=context, user=user, theme=theme, lang=lang)
    page.locator("[data-testid=avatar-new], [data-testid=consent-accept]").first.wait_for(state="visible")
    check(s, page, "home", theme)
    if tid(page, "consent-accept").is_visible():
        check(s, page, "consent", theme)
    new_avatar(s, page)
    check(s, page, "avatar", theme)
    add_selfies(s, page, 3)
    choose_tier(s, page, "starter", f"a11y{user}@example.com")
    check(s, page, "tier", theme)


def press(page, testid, key="Enter"):
    f = tab_to(page, testid)
    require(f["visible"], f"{testid} has the focus but shows no focus outline or ring: {f}")
    page.keyboard.press(key)


def keyboard_journey(s, user):
    """Home → consent → avatar → selfies (file chooser) → e-mail → tier → pay (the bank's page
    by keyboard too) → generate → progress, with no mouse; reduced motion checked on each screen."""
    context = s.new_context(reduced_motion="reduce")
    page = s.open_app(context=context, user=user)
    page.locator("[data-testid=avatar-new], [data-testid=consent-accept]").first.wait_for(state="visible")

    def still(screen):
        s.shot(page, f"keyboard-{screen}")
        bad, moving = motion(page, busy=True)
        s.log(f"reduced motion, {screen} (buttons busy): {moving} elements declare motion, {len(bad)} move")
        for b in bad:
            problems.append(f"reduced motion, {screen}: {b}")
            s.log("PROBLEM", problems[-1])

    still("home")
    if tid(page, "consent-accept").is_visible():
        press(page, "consent-accept")
        expect(tid(page, "consent-accept")).to_be_hidden()
    press(page, "avatar-new")
    page.locator("[data-testid=reference-input], [data-testid=consent-accept]").first.wait_for(state="attached")
    if tid(page, "consent-accept").is_visible():
        press(page, "consent-accept")
    still("avatar")
    files = selfies(page, 3)
    with page.expect_file_chooser() as chooser:
        press(page, "reference-input")
    chooser.value.set_files(files if chooser.value.is_multiple() else files[0])
    if not chooser.value.is_multiple():
        for f in files[1:]:
            with page.expect_file_chooser() as more:
                press(page, "reference-input")
            more.value.set_files(f)
    expect(tid(page, "reference-item")).to_have_count(3, timeout=30_000)
    still("selfies")

    if tid(page, "avatar-continue").count():
        press(page, "avatar-continue")
    tid(page, "receipt-email").wait_for(state="visible")
    # The tiers are radios: Tab reaches the group, the arrows move the choice, Space takes it.
    checked = "[data-testid^=tier-]:has(input:checked), [data-testid^=tier-][aria-checked=true], [data-testid^=tier-][aria-pressed=true]"
    press(page, "tier-starter", "Space")
    expect(page.locator(checked)).to_have_attribute("data-testid", "tier-starter")
    page.keyboard.press("ArrowDown")
    expect(page.locator(checked)).not_to_have_attribute("data-testid", "tier-starter")
    page.keyboard.press("ArrowUp")
    expect(page.locator(checked)).to_have_attribute("data-testid", "tier-starter")
    tab_to(page, "receipt-email")
    page.keyboard.type(f"keys{user}@example.com")
    still("tier")

    with context.expect_page() as opened:
        press(page, "pay")
    bank = opened.value
    bank.wait_for_load_state("load")
    s.shot(bank, "keyboard-bank")
    for _ in range(20):
        bank.keyboard.press("Tab")
        if bank.evaluate("() => /^Pay \\d/.test(document.activeElement.textContent || '')"):
            break
    else:
        raise AssertionError("the bank's Pay button is not reachable with Tab")
    with bank.expect_navigation():
        bank.keyboard.press("Enter")
    bank.close()
    page.bring_to_front()
    wait_status(tid(page, "payment-status"), ["succeeded"], timeout=60_000)
    still("paid")
    press(page, "generate")
    wait_status(tid(page, "job-status"), ["queued", "processing"], timeout=30_000)
    still("progress")
    check(s, page, "progress", "light")


with Session("accessibility") as s:
    themed_screens(s, "light", USER, "en")
    themed_screens(s, "dark", USER + 1, "ru")
    keyboard_journey(s, USER + 2)
    require(not problems, f"{len(problems)} accessibility problems (listed above)")
    s.check_clean("accessibility")
    s.result(problems=len(problems))
