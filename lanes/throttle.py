"""Bad bot-API tokens, counted per client (SPEC §9): slowed down, then refused with 429 for a while.

The rule (numbers from settings, README "Security"): a client's window opens with its first bad or
missing token and lasts ``MARTINGALE_AUTH_WINDOW_SECONDS``. From the (N/2)-th bad token of the
window on, each 401 is delayed, a little more each time, up to ``MARTINGALE_AUTH_MAX_DELAY_SECONDS``;
after N (``MARTINGALE_AUTH_FAILURES``) every request from that client, good token or not, is refused
until the window ends. A good token does not reset the count, and requests made while refused are
not counted, so the refusal never outlasts the window. Other clients are not affected.

The counts live in Django's ``default`` cache, two keys per client that expire with its window, so
they cannot pile up: per process with the default LocMemCache, shared by every process and app
server with ``CACHE_URL`` (Redis). When the cache cannot be reached the API keeps answering, unthrottled,
and the failure is logged.

A client is its address (``client_address``): ``REMOTE_ADDR``, or behind the reverse proxies listed
in ``MARTINGALE_TRUSTED_PROXIES`` the address they forwarded. An IPv6 client counts as its /64, the
block one host usually gets, so that walking through its addresses does not escape the count.
"""
from __future__ import annotations

import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest

logger = logging.getLogger("lanes.throttle")

KEY_PREFIX = "auth-failures"
ERROR_LOG_INTERVAL = 60.0  # seconds between two log lines about an unreachable cache, per process

sleep = time.sleep  # replaced by tests that count the delays instead of waiting for them


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(proxy.strip(), strict=False) for proxy in proxies if proxy.strip())


def _address(text: str):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(request: HttpRequest) -> Optional[str]:
    """The client's IP address, or None when there is none to read (also django-axes's client).

    ``REMOTE_ADDR``, unless it is one of ``MARTINGALE_TRUSTED_PROXIES``: then the last address of
    ``X-Forwarded-For`` that is not a proxy's (the one the outermost proxy saw; whatever the client
    wrote further left is ignored).
    """
    remote = _address(request.META.get("REMOTE_ADDR") or "")
    proxies = _networks(tuple(settings.MARTINGALE_TRUSTED_PROXIES))
    if remote is not None and proxies and any(remote in net for net in proxies):
        for hop in reversed((request.META.get("HTTP_X_FORWARDED_FOR") or "").split(",")):
            forwarded = _address(hop)
            if forwarded is None:
                break  # not written by a proxy of ours: stop at the proxy that received it
            remote = forwarded
            if not any(forwarded in net for net in proxies):
                break
    return None if remote is None else str(remote)


def client_key(address: Optional[str]) -> str:
    """What the throttle counts on: the address, or its /64 for IPv6."""
    ip = _address(address or "")
    if ip is None:
        return "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


@dataclass(frozen=True)
class Refusal:
    """A client refused until its window ends."""

    client: str
    retry_after: int  # whole seconds, at least 1


class AuthThrottle:
    """Counts one client's bad tokens in the cache; see the module's docstring for the rule."""

    _last_error_log = 0.0

    def __init__(self, failures: int, window: int, max_delay: float, cache=None):
        self.failures, self.window, self.max_delay = failures, window, max_delay
        self.cache = cache if cache is not None else caches["default"]

    @classmethod
    def from_settings(cls) -> "AuthThrottle":
        return cls(
            settings.MARTINGALE_AUTH_FAILURES,
            settings.MARTINGALE_AUTH_WINDOW_SECONDS,
            settings.MARTINGALE_AUTH_MAX_DELAY_SECONDS,
        )

    @property
    def enabled(self) -> bool:
        return self.failures > 0

    @staticmethod
    def _keys(client: str) -> tuple[str, str]:
        return f"{KEY_PREFIX}:{client}:count", f"{KEY_PREFIX}:{client}:since"

    def refusal(self, client: str) -> Optional[Refusal]:
        """The refusal in force for ``client``, or None when it may be served."""
        if not self.enabled:
            return None
        count_key, since_key = self._keys(client)
        try:
            found = self.cache.get_many([count_key, since_key])
        except Exception as exc:  # noqa: BLE001 - an unreachable Redis must not take the API down
            self._cache_failed(exc)
            return None
        if (found.get(count_key) or 0) < self.failures:
            return None
        since = found.get(since_key)
        left = self.window if since is None else since + self.window - time.time()
        return Refusal(client, max(1, math.ceil(left)))

    def record_failure(self, client: str) -> float:
        """Count one bad token from ``client``; the delay (seconds) its 401 answer should wait."""
        if not self.enabled:
            return 0.0
        count_key, since_key = self._keys(client)
        try:
            # The first bad token of a window stamps its start; both keys expire when it ends.
            self.cache.add(since_key, time.time(), timeout=self.window)
            self.cache.add(count_key, 0, timeout=self.window)
            try:
                count = self.cache.incr(count_key)
            except ValueError:  # the window ended between the two calls
                self.cache.add(count_key, 1, timeout=self.window)
                count = 1
        except Exception as exc:  # noqa: BLE001 - likewise
            self._cache_failed(exc)
            return 0.0
        if count == self.failures:
            logger.warning(
                "martingale.throttle client=%s bad_tokens=%d refused_for_seconds=%d",
                client, count, self.window,
            )
        return self.delay(count)

    def delay(self, count: int) -> float:
        """The wait before the 401 of the ``count``-th bad token: none before N/2, then growing by
        equal steps to the maximum at the N-th."""
        half = max(1, self.failures // 2)
        if count < half:
            return 0.0
        step = self.max_delay / max(1, self.failures - half)
        return min(self.max_delay, step * (count - half + 1))

    def reset(self, client: str) -> None:
        """Forget ``client``'s bad tokens (lift a refusal by hand)."""
        self.cache.delete_many(list(self._keys(client)))

    def _cache_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - AuthThrottle._last_error_log >= ERROR_LOG_INTERVAL:
            AuthThrottle._last_error_log = now
            logger.warning("martingale.throttle cache unreachable, not throttling: %s: %s", type(exc).__name__, exc)
