"""IP addresses and CIDR blocks for ``cidr`` patterns."""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from dockyard.domain.patterns.errors import InvalidEventPattern

# -- IP addresses -------------------------------------------------------------------------------

_IPV4: Final = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6: Final = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")
_MASK: Final = re.compile(r"[+-]?[0-9]+")
#: An address: (its length in bytes, its value).
_Address = tuple[int, int]


def _address(text: str) -> _Address | None:
    """``text`` as an IP address literal, as event-ruler reads one (an IPv4-mapped IPv6
    address is the IPv4 address), else None."""
    if _IPV4.fullmatch(text):
        try:
            return 4, int(ipaddress.IPv4Address(text))
        except ValueError:
            return None
    if _IPV6.fullmatch(text):
        try:
            address = ipaddress.IPv6Address(text)
        except ValueError:
            return None
        if address.ipv4_mapped is not None:
            return 4, int(address.ipv4_mapped)
        return 16, int(address)
    return None


def _cidr_block(text: str) -> tuple[int, int, int]:
    """``"10.0.0.0/24"`` -> (address length, lowest, highest), or AWS's complaint."""
    parts = text.split("/") if "/" in text else [text]
    while parts and parts[-1] == "":  # like Java's split, which drops trailing empty strings
        parts.pop()
    if len(parts) != 2:
        raise InvalidEventPattern("Malformed CIDR, one '/' required")
    ip, mask_text = parts
    if not _MASK.fullmatch(mask_text) or not -(2**31) <= int(mask_text) < 2**31:
        raise InvalidEventPattern("Malformed CIDR, mask bits must be an integer")
    mask = int(mask_text)
    if mask < 0:
        raise InvalidEventPattern("Malformed CIDR, mask bits must not be negative")
    if not (_IPV4.fullmatch(ip) or _IPV6.fullmatch(ip)):
        raise InvalidEventPattern(f"Nonstandard IP address: {ip}")
    address = _address(ip)
    if address is None:
        raise InvalidEventPattern(f"Invalid IP address: {ip}")
    size, value = address
    if size == 4 and mask > 31:
        raise InvalidEventPattern("IPv4 mask bits must be < 32")
    if size == 16 and mask > 127:
        raise InvalidEventPattern("IPv6 mask bits must be < 128")
    # Like event-ruler, the block starts at the address given (host bits are not cleared).
    return size, value, value | ((1 << (size * 8 - mask)) - 1)
