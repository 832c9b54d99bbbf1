"""The connectors' network policy: public hosts only, unless an operator allows more."""

from __future__ import annotations

from pathlib import Path

import pytest

from datagrove.connectors.network import NetworkPolicy
from datagrove.errors import BadRequest
from datagrove.settings import load


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "[::1]",
        "::ffff:127.0.0.1",
        "fe80::1",
        "fd00::1",
        "::",
    ],
)
def test_private_loopback_link_local_and_reserved_addresses_are_refused(host: str) -> None:
    with pytest.raises(BadRequest, match="connector_allowed_hosts"):
        NetworkPolicy().check_host(host)


def test_public_addresses_are_allowed() -> None:
    NetworkPolicy().check_host("8.8.8.8")
    NetworkPolicy().check_host("2606:4700:4700::1111")


def test_an_allowed_address_range_or_name_may_be_reached() -> None:
    NetworkPolicy(allowed=("127.0.0.1",)).check_host("127.0.0.1")
    NetworkPolicy(allowed=("10.0.0.0/8",)).check_host("10.9.8.7")
    NetworkPolicy(allowed=("localhost",)).check_host("LOCALHOST")
    NetworkPolicy(allowed=("127.0.0.0/8",)).check_host("::ffff:127.0.0.2")
    with pytest.raises(BadRequest):
        NetworkPolicy(allowed=("10.0.0.0/8",)).check_host("192.168.0.1")


def test_resolve_returns_the_checked_addresses() -> None:
    assert NetworkPolicy(allowed=("127.0.0.1",)).resolve("127.0.0.1") == ["127.0.0.1"]


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://example.com", "http://", "http://x:port/"]
)
def test_only_http_and_https_urls_with_a_host_are_accepted(url: str) -> None:
    with pytest.raises(BadRequest):
        NetworkPolicy().check_url(url)


def test_a_url_to_a_private_host_is_refused_and_allowed_when_listed() -> None:
    with pytest.raises(BadRequest, match="127.0.0.1"):
        NetworkPolicy().check_url("http://127.0.0.1:8080/data.csv?key=secret")
    NetworkPolicy(allowed=("127.0.0.1",)).check_url("http://127.0.0.1:8080/data.csv")


def test_local_paths_must_lie_inside_a_local_directory(tmp_path: Path) -> None:
    inside = tmp_path / "in"
    inside.mkdir()
    (inside / "a.csv").write_text("x\n")
    (tmp_path / "secret.txt").write_text("no\n")
    (inside / "link.txt").symlink_to(tmp_path / "secret.txt")
    policy = NetworkPolicy(local_dirs=(inside,))
    assert policy.local_path(str(inside / "a.csv")) == (inside / "a.csv").resolve()
    assert policy.local_path("a.csv") == (inside / "a.csv").resolve()
    for escape in (str(tmp_path / "secret.txt"), "../secret.txt", str(inside / "link.txt"), "/etc/passwd"):
        with pytest.raises(BadRequest, match="connector_local_dirs"):
            policy.local_path(escape)


def test_local_files_are_refused_when_no_directory_is_configured(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="not enabled"):
        NetworkPolicy().local_path(str(tmp_path))


def test_the_policy_comes_from_the_settings(tmp_path: Path) -> None:
    settings = load(connector_allowed_hosts="127.0.0.1, 10.0.0.0/8", connector_local_dirs=f"{tmp_path},/srv")
    policy = NetworkPolicy.from_settings(settings)
    assert policy.allowed == ("127.0.0.1", "10.0.0.0/8")
    assert policy.local_dirs == (tmp_path, Path("/srv"))
