"""Token buckets for the data plane (per caller and per endpoint) and for failed authentication (per address).

Each bucket is one number, its theoretical arrival time (GCRA, the token bucket in another form): a request
at ``now`` is admitted when ``max(tat, now) + interval - now <= burst * interval``, and then moves ``tat`` on
by one interval. A bucket whose ``tat`` is in the past is full, the same as no bucket at all, so a table of
them never needs cleaning: stale slots are free slots.

Workers on one host share one table. With ``--workers N`` it lives in a small file that every worker maps
into memory and updates under an exclusive ``flock`` (microseconds), so N workers admit the configured rate
in total, not N times it. Replicas on other hosts share nothing: R replicas behind a load balancer admit up
to R times the rate, so give each replica the total divided by R.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import math
import mmap
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from shipyard.errors import RateLimitedError

if TYPE_CHECKING:
    from shipyard.config import Settings

log = logging.getLogger("shipyard.auth")

RATE_LIMIT_FILE_ENV = "SHIPYARD_INTERNAL_RATE_LIMIT_FILE"
"""How ``serve`` tells its workers which file holds the shared buckets (set only with several workers)."""

LIMITED_PATHS = frozenset(
    {
        "/v1/endpoints/{endpoint}/predict",
        "/v1/endpoints/{endpoint}/feedback",
        "/v2/models/{model_name}/infer",
        "/v2/models/{model_name}/versions/{model_version}/infer",
    }
)
"""The route templates (as in ``serving.auth.RULES``) whose requests take a token: the data plane."""


class Buckets(Protocol):
    """A table of buckets by key: take one token, or say how long until one is there."""

    def take(self, key: str, *, interval_s: float, burst: int, now: float, dry_run: bool = False) -> float:
        """0.0 when admitted (and the token taken unless ``dry_run``), else the seconds until it would be."""
        ...


def _gcra(tat: float, now: float, interval_s: float, burst: int) -> tuple[float, float]:
    """(the bucket's next tat, the wait): a wait of 0 admits the request."""
    moved = max(tat, now) + interval_s
    wait = moved - now - burst * interval_s
    return (moved, 0.0) if wait <= 1e-9 else (tat, wait)


class LocalBuckets:
    """One process's buckets in a dict, bounded: past ``max_keys`` the full (stale) ones are dropped."""

    def __init__(self, max_keys: int = 65_536) -> None:
        self.tat: dict[str, float] = {}
        self.max_keys = max_keys

    def take(self, key: str, *, interval_s: float, burst: int, now: float, dry_run: bool = False) -> float:
        moved, wait = _gcra(self.tat.get(key, now), now, interval_s, burst)
        if wait == 0.0 and not dry_run:
            if len(self.tat) >= self.max_keys and key not in self.tat:
                self.tat = {k: t for k, t in self.tat.items() if t > now}
            self.tat[key] = moved
        return wait


_SLOT = struct.Struct("<Qd")  # the key's 64-bit hash (0: never used), its tat
_PROBE = 8  # slots looked at per key, from its hash's home slot on


class SharedBuckets:
    """Buckets in a file every worker maps: a fixed table of slots, updated under an exclusive flock.

    Keys are hashed to 64 bits; a key finds its slot among ``_PROBE`` from its home slot. A new key takes a
    free one (never used, or full again) or, when all are busy, the one closest to full: the evicted key
    starts again with a full bucket, which errs on letting requests in, never on refusing them.
    """

    def __init__(self, path: str, slots: int = 16_384) -> None:
        self.slots = slots
        size = slots * _SLOT.size
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            if os.fstat(self.fd).st_size < size:  # the first worker sizes it; the others find it sized
                os.ftruncate(self.fd, size)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.map = mmap.mmap(self.fd, size)

    def close(self) -> None:
        self.map.close()
        os.close(self.fd)

    def take(self, key: str, *, interval_s: float, burst: int, now: float, dry_run: bool = False) -> float:
        digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") or 1
        home = digest % self.slots
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            chosen, tat = -1, now
            free = oldest = -1
            oldest_tat = math.inf
            for i in range(_PROBE):
                offset = ((home + i) % self.slots) * _SLOT.size
                used, slot_tat = _SLOT.unpack_from(self.map, offset)
                if used == digest:
                    chosen, tat = offset, slot_tat
                    break
                if free < 0 and (used == 0 or slot_tat <= now):
                    free = offset
                if slot_tat < oldest_tat:
                    oldest, oldest_tat = offset, slot_tat
            if chosen < 0:
                chosen = free if free >= 0 else oldest
            moved, wait = _gcra(tat, now, interval_s, burst)
            if wait == 0.0 and not dry_run:
                _SLOT.pack_into(self.map, chosen, digest, moved)
            return wait
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)


@dataclass(frozen=True, slots=True)
class Limit:
    """A sustained rate and the burst allowed on top of it (whole requests)."""

    rps: float
    burst: int

    @classmethod
    def of(cls, rps: float, burst: int) -> Limit | None:
        """None when off (0 requests/s); a burst of 0 means one second's worth."""
        return None if rps <= 0 else cls(rps, burst or max(1, math.ceil(rps)))

    @property
    def interval_s(self) -> float:
        return 1.0 / self.rps


OnLimited = Callable[[str, str], None]
"""Told (endpoint, reason) for every refused request: the metrics counter."""


class RateLimiter:
    """The server's limits over one table of buckets; every refusal is a RateLimitedError with its wait."""

    def __init__(
        self,
        buckets: Buckets,
        *,
        endpoint: Limit | None = None,
        caller: Limit | None = None,
        auth_failures_per_minute: int = 0,
        on_limited: OnLimited | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.buckets = buckets
        self.endpoint = endpoint
        self.caller = caller
        self.failures = (
            Limit(auth_failures_per_minute / 60, auth_failures_per_minute) if auth_failures_per_minute else None
        )
        self.on_limited = on_limited or (lambda endpoint, reason: None)
        self.clock = clock

    @classmethod
    def from_settings(
        cls, settings: Settings, *, shared_file: str | None = None, on_limited: OnLimited | None = None
    ) -> RateLimiter | None:
        """The limiter ``settings`` ask for (None when every limit is off); ``shared_file`` when workers share."""
        endpoint = Limit.of(settings.rate_limit_rps, settings.rate_limit_burst)
        caller = Limit.of(settings.rate_limit_key_rps, settings.rate_limit_key_burst)
        if endpoint is None and caller is None and not settings.auth_failures_per_minute:
            return None
        buckets: Buckets = SharedBuckets(shared_file) if shared_file else LocalBuckets()
        return cls(
            buckets,
            endpoint=endpoint,
            caller=caller,
            auth_failures_per_minute=settings.auth_failures_per_minute,
            on_limited=on_limited,
        )

    def admit(self, endpoint: str, *, caller: str) -> None:
        """Take a token for ``caller`` and one for ``endpoint``, or raise naming the limit that was reached."""
        now = self.clock()
        for limit, key, reason, who in (
            (self.caller, f"caller\0{caller}", "key", caller),
            (self.endpoint, f"endpoint\0{endpoint}", "endpoint", f"endpoint {endpoint!r}"),
        ):
            if limit is None:
                continue
            wait = self.buckets.take(key, interval_s=limit.interval_s, burst=limit.burst, now=now)
            if wait > 0:
                self.on_limited(endpoint, reason)
                raise RateLimitedError(
                    f"rate limit for {who} reached ({limit.rps:g} requests/s, burst {limit.burst}); "
                    f"retry after {retry_after_s(wait)} s",
                    retry_after_s=wait,
                )

    def check_address(self, address: str) -> None:
        """Refuse an address that failed authentication too often lately, before looking at its credentials."""
        if self.failures is None:
            return
        wait = self._failure_wait(address, dry_run=True)
        if wait > 0:
            self.on_limited("", "auth_failures")
            raise RateLimitedError(
                f"too many failed authentications from this address; retry after {retry_after_s(wait)} s",
                retry_after_s=wait,
            )

    def failed(self, address: str) -> None:
        """Count a refused credential; the failure that exhausts the allowance is logged (once per episode)."""
        if self.failures is None:
            return
        self._failure_wait(address, dry_run=False)
        if self._failure_wait(address, dry_run=True) > 0:
            log.warning(
                "too many failed authentications from %s (over %d a minute): refusing it with 429 for now",
                address,
                self.failures.burst,
            )

    def _failure_wait(self, address: str, *, dry_run: bool) -> float:
        failures = self.failures
        if failures is None:
            return 0.0
        return self.buckets.take(
            f"address\0{address}",
            interval_s=failures.interval_s,
            burst=failures.burst,
            now=self.clock(),
            dry_run=dry_run,
        )


def retry_after_s(wait_s: float) -> int:
    """``Retry-After`` in whole seconds, rounded up and at least 1."""
    return max(1, math.ceil(wait_s))
