"""The SQL console in a real browser: a query's typed grid, its chart (drawn, and switched between
bar, line and scatter), the CSV download, at 1280 and 400 px, checked by axe-core."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.conftest import NARROW, check_accessibility, screenshot
from tests.support.server import RunningServer
from tests.support.web import Person

ROWS = "Oslo,3,2024-01-01,1.5\nBergen,7,2024-01-03,2.5\nOslo,4,2024-01-02,0.5\nTromsø,1,2024-01-04,4.0\n"


def visits_dataset(server: RunningServer, rows: str = ROWS) -> str:
    columns = [
        {"type": "STRING", "name": "city"},
        {"type": "LONG", "name": "visits"},
        {"type": "DATE", "name": "day"},
        {"type": "DOUBLE", "name": "score"},
    ]
    with server.client() as api:
        name = "visits-" + uuid.uuid4().hex[:6]
        created = api.post("/v1/datasets", json={"name": name, "schema": {"columns": columns}})
        dataset_id = created.json()["id"]
        loaded = api.put(
            f"/v1/datasets/{dataset_id}/data", content=rows, headers={"Content-Type": "text/csv"}
        )
        assert loaded.status_code == 204, loaded.text
    return str(dataset_id)


def write_query(page: Page, sql: str) -> None:
    """Replace the editor's text, as typing would (CodeMirror keeps its own copy of it)."""
    page.evaluate("sql => document.querySelector('.CodeMirror').CodeMirror.setValue(sql)", sql)


def run_query(page: Page, sql: str) -> None:
    write_query(page, sql)
    page.get_by_role("button", name="Run", exact=True).click()


def test_a_query_fills_the_typed_grid_and_draws_a_chart_that_can_be_switched(
    web_server: RunningServer, admin_page: Page
) -> None:
    dataset_id = visits_dataset(web_server)
    page = admin_page
    page.goto(f"{web_server.base_url}/ui/sql?dataset={dataset_id}")
    expect(page.get_by_role("heading", name="SQL", exact=True)).to_be_visible()
    columns = page.locator(".column-list")
    for name in ("city", "visits", "day", "score"):
        expect(columns.get_by_role("button", name=f"Insert column {name}")).to_be_visible()
    expect(page.locator(".CodeMirror .cm-keyword").first).to_be_visible()  # highlighted SQL
    screenshot(page, "sql-console-empty")
    check_accessibility(page)

    run_query(page, "SELECT city, SUM(visits) AS visits FROM table GROUP BY city ORDER BY city")
    expect(page.locator("#sql-status")).to_contain_text("3 rows in")
    grid = page.locator("#result-grid")
    expect(grid.locator("thead th")).to_have_text(["city STRING", "visits LONG"], use_inner_text=True)
    expect(grid.locator("tbody tr")).to_have_count(3)
    expect(grid.locator("tbody tr").first.locator("td")).to_have_text(["Bergen", "7"])
    expect(grid.locator("tbody td.number").first).to_have_css("text-align", "right")

    chart = page.locator("#result-chart")
    expect(chart).to_have_attribute("data-kind", "bar")  # text + number
    expect(chart.locator("rect.mark")).to_have_count(3)
    heights = chart.locator("rect.mark").evaluate_all(
        "bars => bars.map(b => Number(b.getAttribute('height')))"
    )
    assert heights[0] == heights[1] > heights[2] > 0  # Bergen 7, Oslo 3 + 4, Tromsø 1
    screenshot(page, "sql-console-bar-chart")
    check_accessibility(page)

    page.get_by_label("Kind").select_option("line")
    expect(chart).to_have_attribute("data-kind", "line")
    expect(chart.locator("path.mark")).to_have_count(1)
    page.get_by_label("Kind").select_option("scatter")
    expect(chart).to_have_attribute("data-kind", "scatter")

    run_query(page, "SELECT day, visits FROM table ORDER BY day")
    expect(chart).to_have_attribute("data-kind", "line")  # a date + a number
    expect(chart.locator("circle.mark")).to_have_count(4)
    run_query(page, "SELECT visits, score FROM table")
    expect(chart).to_have_attribute("data-kind", "scatter")  # two numbers
    expect(chart.locator("circle.mark")).to_have_count(4)
    screenshot(page, "sql-console-scatter-chart")


def test_errors_paging_and_the_csv_download(web_server: RunningServer, admin_page: Page) -> None:
    dataset_id = visits_dataset(web_server)
    page = admin_page
    page.goto(f"{web_server.base_url}/ui/sql?dataset={dataset_id}")
    run_query(page, "SELECT nope FROM table")
    expect(page.get_by_role("alert")).to_contain_text("nope")

    many = visits_dataset(web_server, "".join(f"c{i},{i},2024-01-01,{i}.5\n" for i in range(120)))
    page.goto(f"{web_server.base_url}/ui/sql?dataset={many}")
    run_query(page, "SELECT visits FROM table ORDER BY visits")
    expect(page.locator("#sql-status")).to_contain_text("120 rows in")
    expect(page.locator("#result-grid tbody tr")).to_have_count(50)
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#result-grid caption")).to_have_text("Query result, page 2 of 3")
    expect(page.locator("#result-grid tbody tr").first.locator("td")).to_have_text(["50"])

    page.goto(f"{web_server.base_url}/ui/sql?dataset={dataset_id}")

    write_query(page, "SELECT city, visits FROM table ORDER BY visits")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    download = download_info.value
    text = download.path().read_text(encoding="utf-8")
    assert list(csv.reader(io.StringIO(text))) == [
        ["city", "visits"],
        ["Tromsø", "1"],
        ["Oslo", "3"],
        ["Oslo", "4"],
        ["Bergen", "7"],
    ]


def test_the_console_at_400_px(
    web_server: RunningServer, sign_in: Callable[..., Page], make_user: Callable[..., Person]
) -> None:
    dataset_id = visits_dataset(web_server)
    person = make_user("Participant")
    with web_server.client() as api:
        body = {
            "permissions": [{"type": "USER", "id": person.id, "accessLevel": "CAN_VIEW"}],
            "sendEmail": False,
        }
        assert api.post(f"/api/data/v3/datasources/{dataset_id}/share", json=body).status_code == 200
    page = sign_in(person, NARROW)
    page.goto(f"{web_server.base_url}/ui/sql?dataset={dataset_id}")
    run_query(page, "SELECT city, visits FROM table")
    expect(page.locator("#result-chart rect.mark")).to_have_count(4)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page is {width} px wide at a 400 px viewport"
    screenshot(page, "sql-console-narrow")
    check_accessibility(page)
