"""``datagrove upload``: a CSV file goes up in parallel gzip parts, cut only between records, and
comes back identical; a bad file fails naming its line and changes nothing."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datagrove.uploader import Progress, line_at, plan
from tests.support.server import RunningServer

SCHEMA = {"columns": [{"type": "STRING", "name": "s"}, {"type": "LONG", "name": "n"}]}
TRICKY = ["plain", "a, comma", 'a "quote"', "two\nlines", "\n", "many\n\n\nnewlines,\n", "", "ünïcødé ✓"]


def csv_rows(count: int, *, seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    return [
        (f"{rng.choice(TRICKY)} {i}" if i % 3 else rng.choice(TRICKY), rng.randint(-1000, 10**6))
        for i in range(count)
    ]


def to_csv(rows: list[tuple[str, int]]) -> bytes:
    return "".join(f'"{s.replace(chr(34), chr(34) * 2)}",{n}\n' for s, n in rows).encode()


def run_upload(
    server: RunningServer, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datagrove.cli", "upload", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def with_token(server: RunningServer) -> list[str]:
    return ["--url", server.base_url, "--token", server.token]


@pytest.fixture
def client(server: RunningServer):
    with server.client() as client:
        yield client


@pytest.fixture
def dataset(client, unique) -> str:
    response = client.post("/v1/datasets", json={"name": f"upload {unique}", "schema": SCHEMA})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def count_and_sum(client, dataset_id: str) -> list:
    response = client.post(
        f"/v1/datasets/query/execute/{dataset_id}", json={"sql": "SELECT COUNT(*), SUM(n) FROM table"}
    )
    assert response.status_code == 200, response.text
    return response.json()["rows"][0]


def exported(client, dataset_id: str) -> list[tuple[str, int]]:
    response = client.get(f"/v1/datasets/{dataset_id}/data")
    assert response.status_code == 200, response.text
    return [(s, int(n)) for s, n in csv.reader(io.StringIO(response.text, newline=""))]


# --- the splitter, on its own -------------------------------------------------------------------


def assert_parts_are_whole_records(path: Path, spans: list, parts: int) -> None:
    data = path.read_bytes()
    assert b"".join(data[s.start : s.end] for s in spans) == data
    assert [s.number for s in spans] == list(range(1, len(spans) + 1)) and len(spans) <= parts
    for span in spans:
        assert span.end > span.start
        assert line_at(path, span.start) == data[: span.start].count(b"\n") + 1
        if span.end < len(data):
            assert data[span.end - 1 : span.end] == b"\n" and data[: span.end].count(b'"') % 2 == 0
    expected = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert [
        row for s in spans for row in csv.reader(io.StringIO(data[s.start : s.end].decode(), newline=""))
    ] == expected


@pytest.mark.parametrize("block_bytes", [1, 5, 64, 1 << 20])
def test_the_splitter_never_cuts_inside_a_quoted_newline_even_right_at_a_split_point(tmp_path, block_bytes):
    # Nearly every byte is a newline inside quotes, so every split point lands on one.
    data = b"".join(b'"' + b"\n" * (7 + i % 5) + b'",' + str(i).encode() + b"\n" for i in range(60))
    path = tmp_path / "tricky.csv"
    path.write_bytes(data)
    for parts in range(1, 25):
        spans = list(plan(path, parts, block_bytes=block_bytes))
        assert_parts_are_whole_records(path, spans, parts)
        assert len(spans) == parts  # 60 records are enough for 24 parts


def test_each_part_ends_at_the_first_record_boundary_past_its_share(tmp_path):
    data = to_csv(csv_rows(2_000, seed=3))
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    boundaries = [i + 1 for i, byte in enumerate(data) if byte == 10 and data[: i + 1].count(b'"') % 2 == 0]
    spans = list(plan(path, 7, block_bytes=1000))
    for k, span in enumerate(spans[:-1], start=1):
        assert span.end == min(b for b in boundaries if b >= len(data) * k // 7)


@settings(max_examples=200, deadline=None)
@given(
    records=st.lists(
        st.lists(
            st.sampled_from(['""', '"\n"', '"a,""b"""', "x", "", '"\n\n,"', "12"]), min_size=1, max_size=3
        ),
        max_size=30,
    ),
    final_newline=st.booleans(),
    parts=st.integers(1, 12),
    block_bytes=st.integers(1, 40),
)
def test_parts_concatenate_back_to_the_file(tmp_path_factory, records, final_newline, parts, block_bytes):
    data = (
        "\n".join(",".join(fields) for fields in records) + ("\n" if final_newline and records else "")
    ).encode()
    path = tmp_path_factory.mktemp("split") / "f.csv"
    path.write_bytes(data)
    assert_parts_are_whole_records(path, list(plan(path, parts, block_bytes=block_bytes)), parts)


def test_the_progress_bar_shows_share_bytes_rate_and_parts():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    progress = Progress(766_000_000, 8, terminal)
    progress.add(345_200_000)
    progress.add(part_done=True)
    line = terminal.getvalue().rsplit("\r", 1)[-1]
    assert line.startswith("[#############                 ]  45% 345.2 MB / 766.0 MB ")
    assert line.endswith(" MB/s  parts 1/8")


# --- against a real server ----------------------------------------------------------------------


def test_a_csv_goes_up_in_parallel_parts_and_comes_back_identical(server, client, dataset, tmp_path):
    rows = csv_rows(20_000, seed=1)
    path = tmp_path / "data.csv"
    path.write_bytes(to_csv(rows))

    done = run_upload(
        server, str(path), "--dataset", dataset, "--parts", "5", "--parallel", "3", *with_token(server)
    )

    assert done.returncode == 0, done.stderr
    assert "uploaded 20,000 rows" in done.stdout and "in 5 parts" in done.stdout
    assert count_and_sum(client, dataset) == [20_000, sum(n for _, n in rows)]
    assert exported(client, dataset) == rows


def test_a_gzip_file_with_replace_replaces_the_rows(server, client, dataset, tmp_path):
    first, second = csv_rows(3_000, seed=2), csv_rows(5_000, seed=3)
    (tmp_path / "first.csv").write_bytes(to_csv(first))
    (tmp_path / "second.csv.gz").write_bytes(gzip.compress(to_csv(second)))
    assert (
        run_upload(server, str(tmp_path / "first.csv"), "--dataset", dataset, *with_token(server)).returncode
        == 0
    )

    done = run_upload(
        server,
        str(tmp_path / "second.csv.gz"),
        "--dataset",
        dataset,
        "--replace",
        "--parts",
        "4",
        *with_token(server),
    )

    assert done.returncode == 0, done.stderr
    assert count_and_sum(client, dataset) == [5_000, sum(n for _, n in second)]
    assert exported(client, dataset) == second


def test_appending_twice_doubles_the_rows(server, client, dataset, tmp_path):
    rows = csv_rows(1_000, seed=4)
    path = tmp_path / "data.csv.gz"
    path.write_bytes(gzip.compress(to_csv(rows)))
    for _ in range(2):
        assert (
            run_upload(
                server, str(path), "--dataset", dataset, "--parts", "3", *with_token(server)
            ).returncode
            == 0
        )
    assert exported(client, dataset) == rows + rows


def test_a_bad_value_fails_naming_its_line_in_the_file_and_changes_nothing(server, client, dataset, tmp_path):
    good = csv_rows(2_000, seed=5)
    (tmp_path / "good.csv").write_bytes(to_csv(good))
    assert (
        run_upload(server, str(tmp_path / "good.csv"), "--dataset", dataset, *with_token(server)).returncode
        == 0
    )
    rows = csv_rows(10_000, seed=6)
    bad = 9_000  # in the last of 5 parts, after many quoted newlines
    before = to_csv(rows[:bad])
    (tmp_path / "bad.csv").write_bytes(
        before + to_csv(rows[bad:]).replace(b",%d\n" % rows[bad][1], b",oops\n", 1)
    )
    line = before.count(b"\n") + 1
    assert line > bad + 1  # physical lines, not records

    done = run_upload(
        server, str(tmp_path / "bad.csv"), "--dataset", dataset, "--parts", "5", *with_token(server)
    )

    assert done.returncode != 0
    assert f"line {line} of bad.csv" in done.stderr, done.stderr
    assert '"oops"' in done.stderr
    assert exported(client, dataset) == good
    stream = client.get("/v1/streams/search", params={"q": f"dataSource.id:{dataset}"}).json()[0]
    latest = client.get(f"/v1/streams/{stream['id']}/executions").json()[-1]
    assert latest["currentState"] == "ABORTED"


def test_an_oauth_client_from_the_environment_and_a_stream_id_work_too(server, client, dataset, tmp_path):
    rows = csv_rows(500, seed=7)
    path = tmp_path / "data.csv"
    path.write_bytes(to_csv(rows))
    stream = client.get("/v1/streams/search", params={"q": f"dataSource.id:{dataset}"}).json()[0]["id"]
    env = {
        "DATAGROVE_URL": server.base_url,
        "DATAGROVE_CLIENT_ID": server.client_id,
        "DATAGROVE_CLIENT_SECRET": server.client_secret,
    }

    done = run_upload(server, str(path), "--stream", str(stream), env=env)

    assert done.returncode == 0, done.stderr
    assert exported(client, dataset) == rows


def test_a_wrong_token_fails_with_the_servers_message(server, dataset, tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b'"a",1\n')
    done = run_upload(
        server, str(path), "--dataset", dataset, "--url", server.base_url, "--token", "DDCInope"
    )
    assert done.returncode != 0
    assert "datagrove:" in done.stderr and "Traceback" not in done.stderr


class FlakyProxy:
    """Forwards to the server, but answers 503 to the first upload of each part it is told to fail,
    and corrupts the second body of part 2 so the checksum check must catch it."""

    def __init__(self, target: str) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.seen.append(f"{self.command} {self.path}")
                attempts = proxy.seen.count(f"{self.command} {self.path}")
                if self.path.endswith("/part/2") and attempts == 1:
                    return self.answer(503, json.dumps({"status": 503, "message": "try again"}).encode())
                if self.path.endswith("/part/2") and attempts == 2:
                    body = gzip.compress(b'"tampered",0\n')
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                response = httpx.request(
                    self.command, target + self.path, content=body, headers=headers, timeout=120
                )
                self.answer(response.status_code, response.content)

            def answer(self, status: int, content: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = forward

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


def test_a_part_is_sent_again_after_a_5xx_or_a_checksum_mismatch(server, client, dataset, tmp_path):
    rows = csv_rows(3_000, seed=8)
    path = tmp_path / "data.csv"
    path.write_bytes(to_csv(rows))
    proxy = FlakyProxy(server.base_url)
    try:
        done = run_upload(
            server,
            str(path),
            "--dataset",
            dataset,
            "--parts",
            "3",
            "--url",
            proxy.url,
            "--token",
            server.token,
        )
    finally:
        proxy.http.shutdown()

    assert done.returncode == 0, done.stderr
    assert sum(1 for request in proxy.seen if request.endswith("/part/2")) == 3
    assert exported(client, dataset) == rows
