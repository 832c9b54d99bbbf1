"""The datasets pages in a real browser: the list, a dataset's page (schema, preview, stream and
executions, access, policies, history), sharing with another person and revoking, as that person
sees it after signing in. Screenshots of each page; axe-core checks on each."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.conftest import NARROW, check_accessibility, screenshot
from tests.support.server import RunningServer
from tests.support.web import Person, make_policy, make_streamed_dataset


def preview_regions(page: Page) -> list[str]:
    return page.locator("table.preview tbody tr td:first-child").all_inner_texts()


def test_share_preview_and_revoke_as_two_people_see_it(
    web_server: RunningServer, sign_in: Callable[..., Page], admin: Person, make_user: Callable[..., Person]
) -> None:
    name = f"Sales {uuid.uuid4().hex[:6]}"
    dataset_id = make_streamed_dataset(web_server, name)
    pat = make_user("Participant", name=f"Pat {uuid.uuid4().hex[:4]}")
    make_policy(web_server, dataset_id, pat.id, "East")

    # Pat sees nothing yet: not in the list, and the page is "not found" (its existence does not leak).
    pat_page = sign_in(pat)
    expect(pat_page.get_by_role("link", name=name)).to_have_count(0)
    response = pat_page.goto(f"{web_server.base_url}/ui/datasets/{dataset_id}")
    assert response is not None and response.status == 404
    expect(pat_page.get_by_role("alert")).to_contain_text("does not exist")
    screenshot(pat_page, "dataset-not-found")

    # The admin opens the dataset from the list and sees all of it.
    admin_page = sign_in(admin)
    admin_page.get_by_label("Search by name", exact=True).fill(name)
    admin_page.get_by_role("button", name="Search").click()
    admin_page.get_by_role("link", name=name).click()
    expect(admin_page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    assert preview_regions(admin_page) == ["East", "West", "East", "North"]
    executions = admin_page.get_by_role("region", name="Recent executions of stream")
    expect(executions.get_by_text("SUCCESS")).to_be_visible()
    expect(admin_page.get_by_role("region", name="Schema").get_by_text("amount")).to_be_visible()
    expect(
        admin_page.get_by_role("region", name="Row-level policies").get_by_text("East only")
    ).to_be_visible()
    expect(admin_page.get_by_role("region", name="Snapshot history").get_by_text("current")).to_be_visible()
    screenshot(admin_page, "dataset")
    check_accessibility(admin_page)

    # Share with Pat, who then sees the dataset and only the rows its policy allows.
    admin_page.get_by_label("Share with", exact=True).select_option(label=f"{pat.name} ({pat.email})")
    admin_page.get_by_label("Level", exact=True).select_option("CAN_VIEW")
    admin_page.get_by_role("button", name="Share").click()
    expect(admin_page.get_by_role("status")).to_have_text("Shared.")
    expect(admin_page.get_by_role("region", name="Who has access").get_by_text(pat.name)).to_be_visible()
    screenshot(admin_page, "dataset-shared")

    pat_page.goto(f"{web_server.base_url}/ui/datasets")
    pat_page.get_by_role("link", name=name).click()
    expect(pat_page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    assert preview_regions(pat_page) == ["East", "East"]
    expect(pat_page.get_by_text("Only the dataset's co-owners see its policies.")).to_be_visible()
    expect(pat_page.get_by_role("button", name="Share")).to_have_count(0)
    screenshot(pat_page, "dataset-as-viewer")
    check_accessibility(pat_page)

    # Revoke: Pat's next request no longer finds it.
    admin_page.get_by_role("button", name=f"Revoke {pat.name}").click()
    expect(admin_page.get_by_role("status")).to_have_text("Access revoked.")
    response = pat_page.reload()
    assert response is not None and response.status == 404
    pat_page.goto(f"{web_server.base_url}/ui/datasets")
    expect(pat_page.get_by_role("link", name=name)).to_have_count(0)


def test_the_list_is_searchable_sortable_and_paged_at_400_px(
    web_server: RunningServer, sign_in: Callable[..., Page], admin: Person
) -> None:
    tag = uuid.uuid4().hex[:6]
    for index, rows in enumerate(("a,1\n", "a,1\nb,2\nc,3\n", "a,1\nb,2\n")):
        make_streamed_dataset(web_server, f"List {tag} {index}", rows)
    page = sign_in(admin, NARROW)
    page.goto(f"{web_server.base_url}/ui/datasets?q={tag}&sort=-rows")
    names = page.locator("tbody tr td:first-child").all_inner_texts()
    assert names == [f"List {tag} 1", f"List {tag} 2", f"List {tag} 0"]
    page.get_by_role("link", name="Name").click()  # sort by name, ascending
    names = page.locator("tbody tr td:first-child").all_inner_texts()
    assert names == [f"List {tag} 0", f"List {tag} 1", f"List {tag} 2"]
    expect(page.get_by_role("columnheader", name="Name")).to_have_attribute("aria-sort", "ascending")
    screenshot(page, "datasets-list-narrow")
    check_accessibility(page)
