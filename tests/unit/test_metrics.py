"""The metrics module's own promises: bounded labels, commits timed with their outcome, and a
scrape-time source that fails leaves out its figures without failing the scrape."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from datagrove import metrics


def sample(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return value or 0.0


class Route:
    def __init__(self, path: str) -> None:
        self.path = path


def test_a_request_is_counted_by_its_route_template_and_an_unknown_method_as_other():
    template = "/v1/things/{thing_id}-" + uuid.uuid4().hex[:6]
    metrics.request_served({"method": "GET", "route": Route(template)}, 200, 0.003)
    metrics.request_served({"method": "BREW" + uuid.uuid4().hex[:4], "route": Route(template)}, 405, 0.001)
    assert sample("datagrove_http_requests_total", method="GET", route=template, status="200") == 1
    assert sample("datagrove_http_requests_total", method="other", route=template, status="405") == 1
    assert sample("datagrove_http_request_duration_seconds_count", method="GET", route=template) == 1


def test_a_request_no_route_served_counts_as_unmatched_unless_a_middleware_names_its_route():
    before = sample("datagrove_http_requests_total", method="POST", route="unmatched", status="404")
    metrics.request_served({"method": "POST"}, 404, 0.001)
    assert (
        sample("datagrove_http_requests_total", method="POST", route="unmatched", status="404") == before + 1
    )
    lane = "/lane/{id}-" + uuid.uuid4().hex[:6]
    metrics.request_served({"method": "POST", metrics.ROUTE_KEY: lane}, 200, 0.001)
    assert sample("datagrove_http_requests_total", method="POST", route=lane, status="200") == 1


def test_a_commit_that_raises_is_counted_as_failed_and_still_timed():
    kind = "test-" + uuid.uuid4().hex[:6]
    with metrics.committing(kind):
        pass
    with pytest.raises(RuntimeError), metrics.committing(kind):
        raise RuntimeError("the commit failed")
    assert sample("datagrove_commits_total", kind=kind, outcome="success") == 1
    assert sample("datagrove_commits_total", kind=kind, outcome="failure") == 1
    assert sample("datagrove_commit_duration_seconds_count", kind=kind) == 2


def test_a_failing_scrape_time_source_is_left_out_and_the_others_still_show():
    def broken() -> metrics.PoolUse:
        raise ConnectionError("the catalog is away")

    name = "test-" + uuid.uuid4().hex[:6]
    metrics.watch_pool(name + "-broken", broken)
    metrics.watch_pool(name, lambda: metrics.PoolUse(size=5, checked_out=2, idle=3, overflow=-3))
    body, _content_type = metrics.scrape()
    families = {family.name: family for family in text_string_to_metric_families(body.decode())}
    pools = {s.labels["pool"]: s.value for s in families["datagrove_catalog_pool_size"].samples}
    assert pools[name] == 5 and name + "-broken" not in pools
    in_use = families["datagrove_catalog_pool_connections"].samples
    assert {(s.labels["state"], s.value) for s in in_use if s.labels["pool"] == name} == {
        ("checked_out", 2),
        ("idle", 3),
    }
