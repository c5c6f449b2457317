"""The customer's journey in the Mini App, step by step, as the stories share it. Every step
goes through the page's data-testid hooks (the Mini App contract) and takes a screenshot of
the screen it reached."""
from harness import StoryFailed, expect, pay_on_bank_page, selfies, tid, wait_status

ANY_START = "[data-testid=avatar-new], [data-testid=consent-accept]"


def accept_consent_if_asked(s, page):
    consent = tid(page, "consent-accept")
    if consent.is_visible():
        s.shot(page, "consent")
        # Asked for consent, the customer has nothing to delete: no "delete my data" beside "I agree".
        expect(page.locator(".danger-zone")).to_have_count(0)
        consent.click()
        expect(consent).to_be_hidden()


def new_avatar(s, page):
    """Home → (consent) → a new avatar: the screen with the selfie input."""
    page.locator(ANY_START).first.wait_for(state="visible")
    s.shot(page, "home")
    accept_consent_if_asked(s, page)
    tid(page, "avatar-new").click()
    page.locator("[data-testid=reference-input], [data-testid=consent-accept]").first.wait_for(state="attached")
    accept_consent_if_asked(s, page)
    expect(tid(page, "reference-input")).to_be_attached()
    s.shot(page, "avatar")


def upload(page, files):
    """Gives the files to the selfie input: all at once when it takes several, else one by one
    (each waiting for its item)."""
    field = tid(page, "reference-input")
    if field.evaluate("e => e.multiple"):
        field.set_input_files(files)
        return
    items = tid(page, "reference-item")
    for f in files:
        before = items.count()
        field.set_input_files(f)
        expect(items).to_have_count(before + 1, timeout=30_000)


def add_selfies(s, page, n=3):
    upload(page, selfies(page, n))
    expect(tid(page, "reference-item")).to_have_count(n, timeout=30_000)
    s.shot(page, "selfies")


def to_plan(page):
    """From the avatar's selfies on to the set and the e-mail (its own screen, when the app has one)."""
    page.locator("[data-testid=receipt-email], [data-testid=avatar-continue]").first.wait_for(state="visible")
    if tid(page, "avatar-continue").is_visible():
        tid(page, "avatar-continue").click()


def choose_tier(s, page, tier, email):
    to_plan(page)
    field = tid(page, "receipt-email")
    field.wait_for(state="visible")
    field.fill(email)
    tid(page, f"tier-{tier}").click()
    s.shot(page, "tier")


def pay(s, page):
    """Pay → the bank's page opens outside (a new tab) → Pay there → back in the app, which
    polls until the payment succeeded."""
    with s.context.expect_page() as opened:
        tid(page, "pay").click()
    bank = opened.value
    pay_on_bank_page(s, bank)
    bank.close()
    page.bring_to_front()
    status = tid(page, "payment-status")
    wait_status(status, ["succeeded"], timeout=60_000)
    s.shot(page, "paid")


def generate(s, page, final=("completed",)):
    """Generate → live progress → the job's final status; returns it."""
    tid(page, "generate").click()
    job = tid(page, "job-status")
    wait_status(job, ["queued", "processing"] + list(final), timeout=30_000)
    s.shot(page, "progress")
    status = wait_status(job, list(final), timeout=150_000)
    s.shot(page, "finished")
    return status


def require(cond, what):
    if not cond:
        raise StoryFailed(what)
