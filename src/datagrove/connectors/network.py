"""Where connectors may reach: the SSRF guard every built-in connector goes through.

A stream's configuration is written by users, so a connector must not become a way to reach the
server's own network (a cloud metadata endpoint, an admin port on localhost, a database on the
private subnet). Hosts are resolved and every address must be public, unless the operator listed
the host, the address or a range holding it in ``connector_allowed_hosts``. Local files are read
only from ``connector_local_dirs``, after symlinks are resolved.

The check resolves names when it runs; connectors run it again at the start of every run (DNS may
have changed) and the database connectors connect to the very address that was checked.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from datagrove.connectors.base import TransientSourceError
from datagrove.errors import BadRequest

if TYPE_CHECKING:
    from datagrove.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class NetworkPolicy:
    #: Hosts, addresses or CIDR ranges that may be reached although they are not public.
    allowed: tuple[str, ...] = ()
    #: Directories whose files (symlinks resolved) file connectors may read.
    local_dirs: tuple[Path, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> NetworkPolicy:
        return cls(
            allowed=tuple(_split(settings.connector_allowed_hosts)),
            local_dirs=tuple(Path(entry) for entry in _split(settings.connector_local_dirs)),
        )

    def check_host(self, host: str) -> None:
        """Raise ``BadRequest`` unless every address ``host`` resolves to may be reached."""
        self.resolve(host)

    def resolve(self, host: str) -> list[str]:
        """The addresses of ``host``, all checked (a connector should connect to one of these, so
        that a second DNS answer cannot swap in another address); ``BadRequest`` if any is refused,
        ``TransientSourceError`` if the name does not resolve now."""
        name = host.strip().strip("[]").rstrip(".").lower()
        if not name:
            raise BadRequest("the connector's configuration needs a host")
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as exc:
            raise TransientSourceError(f"could not resolve host {name!r}") from exc
        addresses = list(
            dict.fromkeys(_plain(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos)
        )
        if not addresses:
            raise TransientSourceError(f"could not resolve host {name!r}")
        names, networks = self._allowed()
        if name in names:
            return [str(address) for address in addresses]
        for address in addresses:
            if _is_public(address) or any(address in network for network in networks):
                continue
            shown = name if name == str(address) else f"{name} ({address})"
            raise BadRequest(
                f"host {shown} is a private, loopback, link-local or reserved address; "
                "an operator may allow it with connector_allowed_hosts"
            )
        return [str(address) for address in addresses]

    def check_url(self, url: str) -> None:
        """Raise ``BadRequest`` unless ``url`` is http(s) to a host ``check_host`` accepts."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError:
            raise BadRequest("the URL is not valid") from None
        if parts.scheme.lower() not in ("http", "https"):
            raise BadRequest("only http and https URLs can be read")
        if not host:
            raise BadRequest("the URL has no host")
        self.check_host(host)

    def local_path(self, path: str) -> Path:
        """``path`` resolved (symlinks too); it must lie inside one of ``local_dirs``.

        A relative path is taken relative to the first local directory.
        """
        if not self.local_dirs:
            raise BadRequest("reading local files is not enabled (connector_local_dirs is empty)")
        given = Path(path).expanduser()
        if not given.is_absolute():
            given = self.local_dirs[0] / given
        resolved = given.resolve()
        for directory in self.local_dirs:
            if resolved.is_relative_to(directory.resolve()):
                return resolved
        raise BadRequest(f"the file {path!r} is not inside a directory listed in connector_local_dirs")

    def _allowed(self) -> tuple[set[str], list[IPNetwork]]:
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in self.allowed:
            text = entry.strip().strip("[]").rstrip(".").lower()
            try:
                network = ipaddress.ip_network(text, strict=False)
            except ValueError:
                names.add(text)
                continue
            if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
                mapped = network.network_address.ipv4_mapped
                if mapped is not None:  # ::ffff:10.0.0.1 is 10.0.0.1
                    network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
            networks.append(network)
        return names, networks


def _split(text: str) -> Iterable[str]:
    return (entry.strip() for entry in text.split(",") if entry.strip())


def _plain(address: IPAddress) -> IPAddress:
    # An IPv4-mapped IPv6 address reaches the IPv4 host: judge it as that host.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_public(address: IPAddress) -> bool:
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        # Shared address space (100.64.0.0/10, carrier NAT) and the like are not private but
        # not global either.
        or not address.is_global
    )
