"""The admin pages in a real browser: an admin creates a user (who can then sign in), a group with a
member, and reads the activity log filtered by user and action."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.conftest import NARROW, check_accessibility, screenshot
from tests.support.server import RunningServer
from tests.support.web import Person


def test_an_admin_creates_a_user_and_a_group_and_reads_the_log(
    web_server: RunningServer, admin_page: Page, sign_in: Callable[..., Page]
) -> None:
    page = admin_page
    tag = uuid.uuid4().hex[:6]
    email = f"nia-{tag}@example.com"
    page.goto(f"{web_server.base_url}/ui/admin/users")
    check_accessibility(page)
    page.get_by_label("Name", exact=True).fill(f"Nia {tag}")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Role", exact=True).select_option("Editor")
    page.get_by_label("Password (optional, 8 or more characters)").fill("pw-nia-secret")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("status")).to_contain_text(f"User Nia {tag} ({email}) was created.")
    row = page.locator("#user-list tr", has_text=email)
    expect(row.get_by_label(f"Role of Nia {tag}", exact=True)).to_have_value("Editor")
    row.get_by_label(f"Role of Nia {tag}", exact=True).select_option("Privileged")
    row.get_by_role("button", name=f"Change the role of Nia {tag}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Nia {tag} is now Privileged.")
    screenshot(page, "admin-users")

    page.get_by_label("Email", exact=True).fill(email)  # taken: the API's 409 message, on the page
    page.get_by_label("Name", exact=True).fill("Again")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("alert")).to_contain_text("already exists")

    page.goto(f"{web_server.base_url}/ui/admin/groups")
    page.get_by_label("Name", exact=True).fill(f"Analysts {tag}")
    page.get_by_role("button", name="Add group").click()
    expect(page.get_by_role("status")).to_contain_text(f"Group Analysts {tag} was created.")
    group = page.locator("section.group", has_text=f"Analysts {tag}")
    group.get_by_label(f"Add a member to Analysts {tag}").select_option(label=f"Nia {tag} ({email})")
    group.get_by_role("button", name="Add").click()
    group = page.locator("section.group", has_text=f"Analysts {tag}")
    expect(group.get_by_role("button", name=f"Remove Nia {tag} from Analysts {tag}")).to_be_visible()
    screenshot(page, "admin-groups")
    check_accessibility(page)

    page.goto(f"{web_server.base_url}/ui/admin/activity")
    page.get_by_label("Action starts with").fill("user.")
    page.get_by_role("button", name="Filter").click()
    log = page.locator("#activity tbody")
    expect(log).to_contain_text("user.create")
    expect(log).not_to_contain_text("group.")
    screenshot(page, "admin-activity")
    check_accessibility(page)

    nia = sign_in(Person(0, f"Nia {tag}", email, "pw-nia-secret", "Privileged"), NARROW)
    expect(nia.get_by_text(f"Signed in as Nia {tag}")).to_be_visible()
    nia.goto(f"{web_server.base_url}/ui/admin/users")
    expect(nia.get_by_role("heading", name="Forbidden")).to_be_visible()
