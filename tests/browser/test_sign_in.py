"""Signing in and out in a real browser, at 1280 and 400 px, with the pages checked by axe-core."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import NARROW, WIDE, check_accessibility, screenshot
from tests.support.server import RunningServer
from tests.support.web import Person


def test_the_sign_in_page_is_accessible_at_both_widths(
    web_server: RunningServer, new_context: Callable[..., BrowserContext]
) -> None:
    for name, viewport in (("wide", WIDE), ("narrow", NARROW)):
        page = new_context(viewport).new_page()
        page.goto(web_server.base_url + "/")
        expect(page.get_by_role("heading", name="Sign in to Datagrove")).to_be_visible()
        screenshot(page, f"sign-in-{name}")
        check_accessibility(page)


def test_a_wrong_password_is_refused_with_a_message(
    web_server: RunningServer, new_context: Callable[..., BrowserContext], make_user: Callable[..., Person]
) -> None:
    person = make_user()
    page = new_context().new_page()
    page.goto(web_server.base_url + "/")
    page.get_by_label("Email", exact=True).fill(person.email)
    page.get_by_label("Password", exact=True).fill("not-the-password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("the email or password is not right")
    screenshot(page, "sign-in-refused")


def test_a_person_signs_in_sees_the_navigation_and_signs_out(
    sign_in: Callable[..., Page], make_user: Callable[..., Person], admin: Person
) -> None:
    person = make_user("Editor")
    page = sign_in(person)
    navigation = page.get_by_role("navigation", name="Main")
    for label in ("Datasets", "SQL", "Upload", "Connectors", "My tokens"):
        expect(navigation.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(navigation.get_by_role("link", name="Admin")).to_have_count(0)  # admins only
    expect(page.get_by_text(f"Signed in as {person.name}")).to_be_visible()
    screenshot(page, "datasets-after-sign-in")
    check_accessibility(page)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/")
    expect(page.get_by_role("heading", name="Sign in to Datagrove")).to_be_visible()
    page.goto(page.url.rstrip("/") + "/ui/datasets")  # the old session is gone
    expect(page.get_by_role("heading", name="Sign in to Datagrove")).to_be_visible()

    admin_page = sign_in(admin, NARROW)
    expect(
        admin_page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")
    ).to_be_visible()
    screenshot(admin_page, "datasets-narrow")
    check_accessibility(admin_page)


def test_a_developer_token_signs_in_too(
    web_server: RunningServer, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context().new_page()
    page.goto(web_server.base_url + "/")
    page.get_by_label("Developer token", exact=True).fill(web_server.token)
    page.get_by_role("button", name="Sign in with the token").click()
    page.wait_for_url("**/ui/datasets")
    expect(page.get_by_role("heading", name="Datasets", exact=True)).to_be_visible()
