"""A user's own developer tokens in a real browser: created (its value shown once), used, revoked."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import NARROW, check_accessibility, screenshot
from tests.support.server import RunningServer
from tests.support.web import Person


def test_a_token_is_created_shown_once_and_revoked(
    web_server: RunningServer, sign_in: Callable[..., Page], make_user: Callable[..., Person]
) -> None:
    person = make_user("Participant")
    page = sign_in(person)
    page.goto(f"{web_server.base_url}/ui/account/tokens")
    expect(page.get_by_text("You have no developer tokens.")).to_be_visible()
    check_accessibility(page)
    page.get_by_label("Name", exact=True).fill("notebook")
    page.get_by_role("button", name="Create token").click()
    value = page.get_by_label("Token value").input_value()
    assert value.startswith("DDCI")
    expect(page.locator("#token-list")).to_contain_text("notebook")
    screenshot(page, "tokens-created")
    check_accessibility(page)
    me = httpx.get(f"{web_server.base_url}/v1/users/{person.id}", headers={"X-DOMO-Developer-Token": value})
    assert me.status_code == 200

    page.goto(f"{web_server.base_url}/ui/account/tokens")  # the list, never the value again
    expect(page.get_by_label("Token value")).to_have_count(0)
    page.get_by_role("button", name="Revoke token notebook").click()
    expect(page.get_by_role("status")).to_contain_text("Token 'notebook' was revoked")
    expect(page.get_by_text("You have no developer tokens.")).to_be_visible()
    gone = httpx.get(f"{web_server.base_url}/v1/users/{person.id}", headers={"X-DOMO-Developer-Token": value})
    assert gone.status_code == 401

    narrow = sign_in(person, NARROW)
    narrow.goto(f"{web_server.base_url}/ui/account/tokens")
    narrow.get_by_label("Expires in (days; empty: never)").fill("0")
    narrow.get_by_label("Name", exact=True).fill("bad")
    narrow.get_by_role("button", name="Create token").click()
    expect(narrow.get_by_role("alert")).to_contain_text("whole number of days")
    screenshot(narrow, "tokens-narrow")
