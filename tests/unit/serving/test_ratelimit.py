"""Token buckets with an injected clock: burst, refill, independence, and one table shared by two workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.errors import RateLimitedError
from shipyard.serving.ratelimit import Limit, LocalBuckets, RateLimiter, SharedBuckets, retry_after_s


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_admitted_then_one_token_per_interval() -> None:
    clock = Clock()
    limiter = RateLimiter(LocalBuckets(), endpoint=Limit(2.0, 3), clock=clock)
    for _ in range(3):
        limiter.admit("fraud", caller="key:a")
    with pytest.raises(RateLimitedError) as refused:
        limiter.admit("fraud", caller="key:a")
    assert refused.value.retry_after_s == pytest.approx(0.5)
    assert retry_after_s(refused.value.retry_after_s) == 1
    limiter.admit("other", caller="key:a")  # another endpoint has its own bucket
    clock.now += 0.5
    limiter.admit("fraud", caller="key:a")


def test_callers_have_independent_buckets_and_refusals_are_counted() -> None:
    seen: list[tuple[str, str]] = []
    limiter = RateLimiter(
        LocalBuckets(), caller=Limit(1.0, 1), clock=Clock(), on_limited=lambda e, r: seen.append((e, r))
    )
    limiter.admit("fraud", caller="key:a")
    with pytest.raises(RateLimitedError, match="key:a"):
        limiter.admit("fraud", caller="key:a")
    limiter.admit("fraud", caller="key:b")
    assert seen == [("fraud", "key")]


def test_failed_authentications_block_an_address_for_a_while() -> None:
    clock = Clock()
    limiter = RateLimiter(LocalBuckets(), auth_failures_per_minute=3, clock=clock)
    for _ in range(3):
        limiter.check_address("10.0.0.9")
        limiter.failed("10.0.0.9")
    with pytest.raises(RateLimitedError, match="failed authentications"):
        limiter.check_address("10.0.0.9")
    limiter.check_address("10.0.0.10")
    clock.now += 20  # one failure's worth (60 s / 3) has drained
    limiter.check_address("10.0.0.9")


def test_two_workers_mapping_one_file_share_the_buckets(tmp_path: Path) -> None:
    clock = Clock()
    path = str(tmp_path / "buckets.bin")
    first, second = SharedBuckets(path), SharedBuckets(path)
    try:
        a = RateLimiter(first, endpoint=Limit(1.0, 4), clock=clock)
        b = RateLimiter(second, endpoint=Limit(1.0, 4), clock=clock)
        admitted = 0
        for limiter in (a, b) * 4:
            try:
                limiter.admit("fraud", caller="local")
                admitted += 1
            except RateLimitedError:
                pass
        assert admitted == 4  # the burst in total, not per worker
    finally:
        first.close()
        second.close()


def test_a_full_shared_table_forgets_the_stalest_bucket_rather_than_refusing(tmp_path: Path) -> None:
    buckets = SharedBuckets(str(tmp_path / "small.bin"), slots=8)
    try:
        for i in range(50):  # more keys than slots: each still gets its burst
            assert buckets.take(f"k{i}", interval_s=1.0, burst=1, now=1000.0) == 0.0
    finally:
        buckets.close()
