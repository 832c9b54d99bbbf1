"""Connector streams in a real browser: listed, created from the form, run now, and their history."""

from __future__ import annotations

import uuid

from playwright.sync_api import Page, expect

from tests.browser.conftest import check_accessibility, screenshot
from tests.support.server import RunningServer


def test_a_dataset_sql_connector_is_created_run_and_its_history_shown(
    web_server: RunningServer, admin_page: Page
) -> None:
    with web_server.client() as api:
        schema = {"columns": [{"type": "STRING", "name": "s"}, {"type": "LONG", "name": "n"}]}
        source = api.post(
            "/v1/datasets", json={"name": "source-" + uuid.uuid4().hex[:6], "schema": schema}
        ).json()["id"]
        api.put(f"/v1/datasets/{source}/data", content="a,1\nb,2\n", headers={"Content-Type": "text/csv"})
    page = admin_page
    page.goto(f"{web_server.base_url}/ui/connectors")
    expect(page.get_by_text("No connector streams yet.")).to_be_visible()
    check_accessibility(page)

    page.get_by_label("Dataset name").fill("copied")
    page.get_by_label("Connector", exact=True).select_option("dataset-sql")
    page.get_by_label("Configuration").fill(f'query=SELECT s, n * 10 AS n10 FROM "{source}"')
    page.get_by_label("Schedule").fill('{"type": "nonsense"}')
    page.get_by_role("button", name="Create connector stream").click()
    expect(page.get_by_role("alert")).to_be_visible()  # the schedule's 400, named on the page
    expect(page.get_by_label("Configuration")).to_have_value(f'query=SELECT s, n * 10 AS n10 FROM "{source}"')

    page.get_by_label("Schedule").fill("")
    page.get_by_role("button", name="Create connector stream").click()
    expect(page.get_by_role("heading", name="copied")).to_be_visible()
    expect(page.get_by_text("No runs yet.")).to_be_visible()
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("status")).to_contain_text("was queued")
    history = page.locator("#run-history tbody")
    for _ in range(30):
        if "SUCCESS" in history.inner_text():
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(history).to_contain_text("SUCCESS")
    expect(history.locator("tr").first.locator("td").nth(5)).to_have_text("2")
    screenshot(page, "connector-history")
    check_accessibility(page)

    page.goto(f"{web_server.base_url}/ui/connectors")
    expect(page.locator("#connector-list")).to_contain_text("copied")
    screenshot(page, "connectors")
