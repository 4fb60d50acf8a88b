"""Who may reach the servers: the one login (``--auth user:password``) that the chat page and ``POST /answer``
both honour, and the warning for a server that listens beyond this machine without one."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress

LOCALHOST = {"127.0.0.1", "localhost", "::1"}


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    """``"user:password"`` -> ``(user, password)``; None when no login is wanted."""
    if not auth:
        return None
    user, _, password = auth.partition(":")
    if not user or not password:
        raise ValueError("--auth takes user:password")
    return user, password


def is_local(host: str) -> bool:
    """True when ``host`` is a loopback name or address (reachable from this machine only)."""
    if host in LOCALHOST:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, credentials: tuple[str, str] | None) -> str | None:
    """The warning to give when the server would listen beyond localhost without a login, else None."""
    if is_local(host) or credentials is not None:
        return None
    where = host or "all interfaces"
    return f"Listening on {where} without --auth: anyone who can reach this address can use the chat."


def basic_auth_allows(header: str | None, credentials: tuple[str, str] | None) -> bool:
    """Whether an HTTP ``Authorization`` header carries ``credentials`` (always, when no login is wanted);
    compared in constant time."""
    if credentials is None:
        return True
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user_ok = hmac.compare_digest(user.encode(), credentials[0].encode())
    return hmac.compare_digest(password.encode(), credentials[1].encode()) and user_ok
