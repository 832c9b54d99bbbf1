"""What the people who run a server ask of it: may this caller read the metrics, and is the server
ready for traffic.

``MetricsAccess`` decides who may read ``/metrics``. The figures hold no data, but they do tell
what a server is doing (route names, volumes, failures), so by default only the machine itself may
read them: an address in ``metrics_allow`` may without a credential, and any address may with the
bearer token ``metrics_token`` (a scraper across the network). The address is the TCP peer's, as
uvicorn gives it (behind a proxy: the proxy's, unless uvicorn is told to trust its headers).

``Readiness`` says whether this server can serve: its catalog answers and its table storage (the
data directory or the bucket) can be used. ``/health`` stays liveness: it answers while the
process does, so that a load balancer does not restart a server whose storage is briefly away.
"""

from __future__ import annotations

import concurrent.futures
import hmac
import ipaddress
import logging
import threading
from dataclasses import dataclass, field

from datagrove import metrics
from datagrove.catalog.repository import Catalog
from datagrove.errors import Forbidden, Unauthorized
from datagrove.tables.storage import Storage, StorageError

log = logging.getLogger("datagrove.operations")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class MetricsAccess:
    """Who may read ``/metrics``: the addresses of ``allow`` (comma-separated addresses or CIDR
    ranges), or anyone presenting ``token`` as ``Authorization: Bearer <token>``."""

    def __init__(self, *, allow: str, token: str | None) -> None:
        self._networks = parse_networks(allow)
        self._token = token.encode() if token else None

    def check(self, *, address: str | None, authorization: str | None) -> None:
        """Return if the caller may read the metrics; else raise ``Unauthorized`` (a token is
        configured and was not presented, or is wrong) or ``Forbidden`` (no token is configured
        and the address is not allowed)."""
        if authorization:
            scheme, _, presented = authorization.partition(" ")
            if scheme.lower() != "bearer" or not presented.strip():
                raise Unauthorized("the metrics need 'Authorization: Bearer <metrics token>'")
            if self._token is None or not hmac.compare_digest(presented.strip().encode(), self._token):
                raise Unauthorized("the metrics token is not valid")
            return
        if self._allowed(address):
            return
        if self._token is not None:
            raise Unauthorized("the metrics need 'Authorization: Bearer <metrics token>' from this address")
        raise Forbidden(f"the metrics may not be read from {address or 'an unknown address'}")

    def _allowed(self, address: str | None) -> bool:
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # e.g. a Unix socket's peer: no address to match
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._networks)

    def scrape(self, *, address: str | None, authorization: str | None) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format and its content type, if the caller may read them."""
        self.check(address=address, authorization=authorization)
        return metrics.scrape()


def parse_networks(text: str) -> list[Network]:
    """``metrics_allow``: comma-separated addresses or CIDR ranges; ``ValueError`` names a bad one
    (the server does not start with it)."""
    networks: list[Network] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"metrics_allow: {item!r} is not an address or a CIDR range") from None
    return networks


@dataclass(frozen=True)
class ReadinessReport:
    """``failed`` names each check that failed with why (no secret: see ``Readiness``)."""

    checks: dict[str, str] = field(default_factory=dict)  # check -> "ok" or what is wrong
    failed: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return not self.failed


#: The checks, in the order they run.
CHECKS = ("catalog", "storage")


class Readiness:
    """Runs the checks in one background probe at a time: a catalog or store that hangs (a
    network partition) makes ``check`` answer "no answer" after ``timeout_seconds`` instead of
    hanging, and repeated probes from a load balancer wait on the probe in flight instead of piling
    up threads behind it."""

    def __init__(self, *, catalog: Catalog, storage: Storage, timeout_seconds: float = 5.0) -> None:
        self._catalog = catalog
        self._storage = storage
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._in_flight: tuple[concurrent.futures.Future[None], dict[str, str]] | None = None

    def check(self) -> ReadinessReport:
        """Ping the catalog and probe the storage, or join the probe already running; waits at
        most ``timeout_seconds``. A catalog error's text can name its host or user, so only its
        kind is reported (the log has the rest); storage errors are ours and carry no credential
        (``tables/storage.py``)."""
        with self._lock:
            if self._in_flight is None or self._in_flight[0].done():
                done: concurrent.futures.Future[None] = concurrent.futures.Future()
                results: dict[str, str] = {}
                self._in_flight = (done, results)
                threading.Thread(
                    target=self._probe, args=(results, done), name="readiness", daemon=True
                ).start()
            done, results = self._in_flight
        concurrent.futures.wait((done,), timeout=self._timeout)
        checks = {name: results.get(name, f"no answer within {self._timeout:g} s") for name in CHECKS}
        return ReadinessReport(checks, tuple(name for name in CHECKS if checks[name] != "ok"))

    def _probe(self, results: dict[str, str], done: concurrent.futures.Future[None]) -> None:
        try:
            results["catalog"] = self._ping_catalog()
            results["storage"] = self._probe_storage()
        finally:
            done.set_result(None)

    def _ping_catalog(self) -> str:
        try:
            self._catalog.ping()
        except Exception as exc:
            log.warning("readiness: the catalog cannot be reached", exc_info=exc)
            return f"unreachable ({type(exc).__name__})"
        return "ok"

    def _probe_storage(self) -> str:
        try:
            self._storage.probe()
        except StorageError as exc:
            log.warning("readiness: the storage cannot be used", extra={"fields": {"error": exc.message}})
            return exc.message
        except Exception as exc:
            log.warning("readiness: the storage cannot be used", exc_info=exc)
            return f"unusable ({type(exc).__name__})"
        return "ok"
