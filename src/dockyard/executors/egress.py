"""Where http jobs, Lambda invocations and rule webhooks may connect: the egress gate.

Whoever may register a definition or a rule chooses the URL its calls go to, and whoever may
submit a job fills in its placeholders; the response is then readable by viewers in the job's
result. So the worker, not the definition, decides which *addresses* a call may reach
(:class:`AddressGate`, from :class:`~dockyard.policy.WorkerPolicy`):

- link-local addresses (``169.254.0.0/16``, ``fe80::/10``) and the cloud metadata services
  (``169.254.169.254``, ``fd00:ec2::254``, ``100.100.100.200``) are refused always, unless
  ``http_allowed_networks`` lists them;
- loopback, private (RFC 1918, ``fc00::/7``), shared (CGNAT ``100.64.0.0/10``), unspecified,
  multicast and reserved addresses are refused unless ``http_allow_private`` is on (the default
  of the single-user SQLite setup) or ``http_allowed_networks`` lists them.

An IPv6 address that carries an IPv4 one (``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4) is
judged by the IPv4 address it carries.

**Why a network backend.** Checking the URL's host name is not enough: a name can resolve to a
private address, or resolve to a public one when checked and a private one when connected (DNS
rebinding). The check must be on the address actually connected to. httpcore, under httpx,
opens every connection through a *network backend* (its public extension point for "custom DNS
handling", https://www.encode.io/httpcore/network-backends/); :class:`GatedBackend` wraps the
default one: it resolves the name once, drops the addresses the gate refuses, connects to a
checked address (the URL's name still goes in the ``Host`` header and TLS's SNI, which httpcore
takes from the URL), and checks the connected socket's peer before a byte is sent. Nothing is
sent to a refused address, not even a TCP handshake, so a refusal tells nothing about which
ports listen. httpx's transport takes no network backend (encode/httpx#3749 is open), so
:class:`GatedTransport` keeps httpx's transport — its request and response mapping, its
exception mapping — and replaces only the connection pool it built with an equal one over the
gated backend. Proxies are not used: the client is built with ``trust_env=False``, so
``HTTP_PROXY`` and friends cannot route a call around the gate.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import anyio
import httpcore
import httpx

from dockyard.policy import POLICY_ENVIRONMENT, WorkerPolicy

__all__ = ["AddressGate", "EgressRefused", "GatedBackend", "GatedTransport"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud instance-metadata services: AWS, GCP and Azure (IPv4 and AWS's IPv6), Alibaba.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 (CGNAT): not global, not "private"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

_ALLOW_PRIVATE = POLICY_ENVIRONMENT["http_allow_private"]
_ALLOWED_NETWORKS = POLICY_ENVIRONMENT["http_allowed_networks"]


class EgressRefused(Exception):
    """A call to an address the gate refuses; the message names it and the setting that would
    allow it. Not an httpx error, so httpx passes it through unchanged."""


def _carried(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries, if any; else the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def _kind(address: IPAddress) -> tuple[str, bool]:
    """What kind of non-public address this is (empty for a public one), and whether only
    ``http_allowed_networks`` can allow it."""
    if address in METADATA_ADDRESSES:
        return "an instance-metadata", True
    if address.is_link_local:
        return "a link-local", True
    checks = (
        (address.is_loopback, "a loopback"),
        (address.is_unspecified, "an unspecified"),
        (address.is_multicast, "a multicast"),
        (address in _SHARED, "a shared (CGNAT)"),
        (address.is_private, "a private"),
        (address.is_reserved or not address.is_global, "a reserved"),
    )
    return next((kind for matched, kind in checks if matched), ""), False


@dataclass(frozen=True, slots=True)
class AddressGate:
    """Which addresses calls may connect to (see the module docstring)."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_policy(cls, policy: WorkerPolicy) -> AddressGate:
        networks = tuple(
            ipaddress.ip_network(network, strict=False) for network in policy.http_allowed_networks
        )
        return cls(allow_private=policy.http_allow_private, allowed_networks=networks)

    def refusal(self, address: str | IPAddress, host: str | None = None) -> str | None:
        """None when a call may connect to ``address`` (reached by the name ``host``); else
        why not, naming the setting that would allow it."""
        parsed = ipaddress.ip_address(address) if isinstance(address, str) else address
        carried = _carried(parsed)
        if any(ip in network for ip in (parsed, carried) for network in self.allowed_networks):
            return None
        kind, only_listed = _kind(carried)
        if not kind or (self.allow_private and not only_listed):
            return None
        shown = str(parsed) if carried == parsed else f"{parsed} (IPv4 {carried})"
        if host is not None and _literal(host) is None:
            shown = f"{host} ({shown})"
        if only_listed:
            allowed_by = f"only when {_ALLOWED_NETWORKS} lists it"
        else:
            allowed_by = f"only with {_ALLOW_PRIVATE}=true or when {_ALLOWED_NETWORKS} lists it"
        return f"{shown} is {kind} address: calls reach it {allowed_by}"


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class GatedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's default network backend, connecting only to addresses the gate allows."""

    def __init__(
        self, gate: AddressGate, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.gate = gate
        self._inner = inner or httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        literal = _literal(host)
        if literal is not None:
            return [literal]
        try:
            with anyio.fail_after(timeout):
                found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as error:
            raise httpcore.ConnectError(f"{host}: {error}") from None
        addresses: list[IPAddress] = []
        for _family, _type, _proto, _name, sockaddr in found:
            address = ipaddress.ip_address(sockaddr[0])
            if address not in addresses:
                addresses.append(address)
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port, timeout)
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        allowed = [address for address in addresses if self.gate.refusal(address) is None]
        if not allowed:
            raise EgressRefused(self.gate.refusal(addresses[0], host) or host)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in allowed:
            try:
                stream = await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
                continue
            peer = stream.get_extra_info("server_addr")
            refusal = None if peer is None else self.gate.refusal(str(peer[0]), host)
            if refusal is not None:
                await stream.aclose()
                raise EgressRefused(refusal)
            return stream
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused(f"calls may not reach the Unix socket {path}")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GatedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over a pool whose connections pass the gate (see the module
    docstring for why the pool is replaced rather than the transport rewritten)."""

    def __init__(self, gate: AddressGate, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GatedBackend(gate),
        )
