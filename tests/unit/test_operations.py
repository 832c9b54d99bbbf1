"""Who may read the metrics (``MetricsAccess``), and readiness over a real SQLite catalog with the
tables in a directory or in a moto S3 bucket that then goes away."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from datagrove.catalog.database import make_engine, migrate
from datagrove.catalog.repository import Catalog
from datagrove.errors import Forbidden, Unauthorized
from datagrove.services.operations import MetricsAccess, Readiness
from datagrove.tables.storage import S3Options, Storage
from tests.support.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, moto_server

TOKEN = "a-metrics-token"


def access(allow: str = "127.0.0.0/8,::1", token: str | None = None) -> MetricsAccess:
    return MetricsAccess(allow=allow, token=token)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"])
def test_loopback_may_read_the_metrics_by_default_without_a_token(address):
    access().check(address=address, authorization=None)


def test_an_address_in_an_allowed_range_may_and_one_outside_is_forbidden_without_a_token():
    ranges = access("10.0.0.0/8, 192.168.1.7")
    ranges.check(address="10.20.30.40", authorization=None)
    ranges.check(address="192.168.1.7", authorization=None)
    with pytest.raises(Forbidden, match="192.168.1.8"):
        ranges.check(address="192.168.1.8", authorization=None)
    with pytest.raises(Forbidden):
        ranges.check(address="127.0.0.1", authorization=None)


def test_with_a_token_configured_an_address_not_allowed_is_asked_for_it():
    with pytest.raises(Unauthorized):
        access(token=TOKEN).check(address="203.0.113.9", authorization=None)


def test_the_token_opens_the_metrics_to_any_address():
    access("", token=TOKEN).check(address="203.0.113.9", authorization=f"Bearer {TOKEN}")
    access("", token=TOKEN).check(address="203.0.113.9", authorization=f"bearer {TOKEN}")


@pytest.mark.parametrize(
    "authorization", [f"Bearer x{TOKEN}", "Bearer ", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}"]
)
def test_a_wrong_or_malformed_credential_is_refused_even_from_an_allowed_address(authorization):
    with pytest.raises(Unauthorized):
        access(token=TOKEN).check(address="127.0.0.1", authorization=authorization)


def test_a_bearer_credential_is_refused_when_no_token_is_configured():
    with pytest.raises(Unauthorized):
        access().check(address="203.0.113.9", authorization="Bearer anything")


def test_an_empty_allow_list_lets_no_address_in_and_an_unknown_address_is_not_allowed():
    with pytest.raises(Forbidden):
        access("").check(address="127.0.0.1", authorization=None)
    with pytest.raises(Forbidden):
        access().check(address=None, authorization=None)
    with pytest.raises(Forbidden):
        access().check(address="not-an-address", authorization=None)


def test_a_bad_allow_list_stops_the_server_from_starting():
    with pytest.raises(ValueError, match="'10.0.0.0/33'"):
        access("127.0.0.1, 10.0.0.0/33")


def test_a_scrape_is_prometheus_text():
    body, content_type = access().scrape(address="127.0.0.1", authorization=None)
    assert content_type.startswith("text/plain")
    assert b"# TYPE datagrove_http_requests_total counter" in body


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    migrate(engine)
    return Catalog(engine)


def test_ready_with_the_directory_and_not_ready_naming_it_once_it_is_gone(catalog, tmp_path):
    warehouse = tmp_path / "warehouse"
    readiness = Readiness(catalog=catalog, storage=Storage.local(warehouse))
    report = readiness.check()
    assert report.ready and report.checks == {"catalog": "ok", "storage": "ok"}
    shutil.rmtree(warehouse)
    report = readiness.check()
    assert not report.ready and report.failed == ("storage",)
    assert report.checks["catalog"] == "ok" and "missing" in report.checks["storage"]
    warehouse.mkdir()
    assert readiness.check().ready


def test_not_ready_naming_the_catalog_when_it_cannot_be_opened(tmp_path):
    unreachable = Catalog(make_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'catalog.db'}"))
    report = Readiness(catalog=unreachable, storage=Storage.local(tmp_path / "warehouse")).check()
    assert report.failed == ("catalog",) and report.checks["catalog"].startswith("unreachable")
    assert str(tmp_path) not in report.checks["catalog"]  # the kind of error only, not its text


def test_ready_with_the_bucket_and_not_ready_once_the_store_stops(catalog, tmp_path):
    with moto_server(tmp_path / "moto") as moto:
        bucket = moto.new_bucket()
        options = S3Options(
            endpoint=moto.endpoint,
            region=REGION,
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=SECRET_ACCESS_KEY,
            path_style=True,
        )
        readiness = Readiness(catalog=catalog, storage=Storage.s3(f"s3://{bucket}/datagrove", options))
        assert readiness.check().ready
        missing = Readiness(catalog=catalog, storage=Storage.s3(f"s3://no-{bucket}/datagrove", options))
        assert "does not exist" in missing.check().checks["storage"]
    report = readiness.check()  # moto has stopped
    assert report.failed == ("storage",) and "cannot be reached" in report.checks["storage"]
    assert SECRET_ACCESS_KEY not in str(report)


def test_a_store_that_never_answers_is_named_after_the_timeout_and_probes_do_not_pile_up(catalog):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        options = S3Options(
            endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}",
            region=REGION,
            access_key_id="silent",
            secret_access_key="silent",
            path_style=True,
        )
        readiness = Readiness(
            catalog=catalog, storage=Storage.s3("s3://silent/datagrove", options), timeout_seconds=1
        )
        started = time.monotonic()
        reports = [readiness.check() for _ in range(2)]
        elapsed = time.monotonic() - started
        probes = [thread for thread in threading.enumerate() if thread.name == "readiness"]
    assert reports[0].checks == {"catalog": "ok", "storage": "no answer within 1 s"}
    assert all(report.failed == ("storage",) for report in reports)
    assert elapsed < 5
    assert len(probes) == 1  # the later checks waited on the probe in flight
