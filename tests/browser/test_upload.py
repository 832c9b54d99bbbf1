"""Uploading a CSV file in a real browser: the proposed, editable schema, the part-by-part upload with
its progress bar reaching 100 %, and the dataset's rows afterwards."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.conftest import NARROW, check_accessibility, screenshot
from tests.support.server import RunningServer
from tests.support.web import Person


def sample_csv(rows: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["city", "visits", "day", "note"])
    for i in range(rows):
        # Quoted commas and line ends: parts must be cut between records, never inside one.
        note = f"line one\nline, two {i}" if i % 7 == 0 else "é"
        if i == 150:
            note = "a record longer than a part, " * 200  # the part grows to hold it whole
        writer.writerow([f"City {i}", i, f"2024-01-{i % 28 + 1:02d}", note])
    return out.getvalue()


def test_a_csv_file_becomes_a_dataset_in_parts_with_the_progress_bar_reaching_100(
    web_server: RunningServer, admin_page: Page
) -> None:
    page = admin_page
    text = sample_csv(300)
    # Parts of 2 KiB: the ~11 KiB file goes up in several parts, as a big file would.
    page.goto(f"{web_server.base_url}/ui/upload?part_bytes=2048")
    expect(page.get_by_role("heading", name="Upload a CSV file")).to_be_visible()
    check_accessibility(page)
    part_requests: list[str] = []
    page.on(
        "request", lambda request: part_requests.append(request.url) if "/parts/" in request.url else None
    )

    page.get_by_label("Choose a CSV file").set_input_files(
        files=[{"name": "visits.csv", "mimeType": "text/csv", "buffer": text.encode()}]
    )
    expect(page.get_by_label("Type of column 2")).to_have_value("LONG")
    expect(page.get_by_label("Type of column 3")).to_have_value("DATE")
    expect(page.get_by_label("Type of column 4")).to_have_value("STRING")
    expect(page.get_by_label("Name of the new dataset")).to_have_value("visits")
    page.get_by_label("Type of column 2").select_option("DOUBLE")  # the schema can be edited
    page.get_by_label("Name of column 1").fill("town")
    expect(page.locator("#upload-preview tbody tr").first).to_contain_text("City 0")
    screenshot(page, "upload-schema")
    check_accessibility(page)

    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#upload-status")).to_contain_text("now holds 300 rows", timeout=60_000)
    expect(page.locator("#upload-progress")).to_have_js_property("value", 100)
    expect(page.locator("#upload-progress-text")).to_have_text("100 %")
    assert len(part_requests) > 3
    screenshot(page, "upload-done")

    dataset_id = page.get_by_role("link", name="Open visits").get_attribute("href").rsplit("/", 1)[1]
    with web_server.client() as api:
        described = api.get(f"/v1/datasets/{dataset_id}").json()
        exported = api.get(f"/v1/datasets/{dataset_id}/data?includeHeader=true").text
    assert [(c["name"], c["type"]) for c in described["schema"]["columns"]] == [
        ("town", "STRING"),
        ("visits", "DOUBLE"),
        ("day", "DATE"),
        ("note", "STRING"),
    ]
    got = list(csv.reader(io.StringIO(exported)))
    want = list(csv.reader(io.StringIO(text)))
    assert len(got) == 301
    assert [row[0] for row in got[1:]] == [row[0] for row in want[1:]]
    assert [row[3] for row in got[1:]] == [row[3] for row in want[1:]]
    assert [float(row[1]) for row in got[1:]] == [float(i) for i in range(300)]


def test_appending_to_a_dataset_one_may_edit_and_a_bad_file_named_at_400_px(
    web_server: RunningServer, sign_in: Callable[..., Page], make_user: Callable[..., Person]
) -> None:
    editor = make_user("Editor")
    page = sign_in(editor, NARROW)
    page.goto(f"{web_server.base_url}/ui/upload")
    first = "a,b\n1,x\n2,y\n"
    page.get_by_label("Choose a CSV file").set_input_files(
        files=[{"name": "ab.csv", "mimeType": "text/csv", "buffer": first.encode()}]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#upload-status")).to_contain_text("now holds 2 rows")

    page.goto(f"{web_server.base_url}/ui/upload")
    # Dropped on the page rather than chosen.
    page.locator("#upload-drop").evaluate(
        """zone => {
            const data = new DataTransfer();
            data.items.add(new File(["a,b\\n3,z\\n"], "more.csv", {type: "text/csv"}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        }"""
    )
    expect(page.get_by_label("Type of column 1")).to_have_value("LONG")
    page.get_by_label("Into").select_option(label="ab")
    page.get_by_label("Update method").select_option("APPEND")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#upload-status")).to_contain_text("now holds 3 rows")
    expect(page.locator("#upload-progress-text")).to_have_text("100 %")

    page.get_by_label("Choose a CSV file").set_input_files(
        files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": b"a,b\nnot a number,z\n"}]
    )
    page.get_by_label("Into").select_option(label="ab")
    page.get_by_label("Update method").select_option("APPEND")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("not a number")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page is {width} px wide at a 400 px viewport"
    screenshot(page, "upload-error-narrow")
    check_accessibility(page)
