"""The operator's pages on a phone: /admin without a session lands on the login form; the
account the Swift test made with `pinglass admin create-user` logs in and sees the dashboard
(money in roubles, nothing wider than the screen, light and dark); logging out ends the session, and /admin
asks for the login again. Env: PINGLASS_ADMIN_NAME, PINGLASS_ADMIN_PASSWORD."""
import os
import re

from playwright.sync_api import expect

from harness import APP, Session, StoryFailed

NAME = os.environ["PINGLASS_ADMIN_NAME"]
PASSWORD = os.environ["PINGLASS_ADMIN_PASSWORD"]


def fits(page, where):
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    if wide > 0:
        raise StoryFailed(f"{where}: the page is {wide} px wider than the screen")


with Session("admin") as s:
    page = s.context.new_page()
    page.goto(APP + "/admin")
    expect(page).to_have_url(re.compile(r"/admin/login$"))
    expect(page.locator("h1")).to_have_text("Log in")
    fits(page, "login")
    s.shot(page, "login")

    page.fill("#username", NAME)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin$"))
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator(".amount").first).to_contain_text("₽")
    expect(page.get_by_text(f"{NAME} (admin)")).to_be_visible()
    fits(page, "dashboard")
    s.shot(page, "dashboard")
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    if dark == "rgb(255, 255, 255)":
        raise StoryFailed("the dark scheme left the page white")
    s.shot(page, "dashboard-dark")
    page.emulate_media(color_scheme="light")

    page.get_by_role("link", name="Audit").click()
    expect(page.locator("h1")).to_have_text("Audit log")
    expect(page.locator("table.audit")).to_contain_text("admin.login")
    s.shot(page, "audit")

    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/login$"))
    s.shot(page, "logged-out")
    page.goto(APP + "/admin")
    expect(page).to_have_url(re.compile(r"/admin/login$"))
    s.check_clean("after logging out")
    s.result(loggedOut=True)
