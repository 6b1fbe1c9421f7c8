"""Routing: sticky by key, split within a point of the weight, shadows sampled independently."""

from __future__ import annotations

import pytest

from shipyard.core.endpoints import Arm, TrafficPolicy, bucket, route
from shipyard.errors import InvalidArgumentError


def test_a_single_version_policy_sends_everything_to_stable() -> None:
    decision = route(TrafficPolicy("fraud:1"), "user-1")
    assert (decision.version, decision.arm, decision.shadow) == ("fraud:1", Arm.STABLE, None)


@pytest.mark.parametrize("weight", [0.05, 0.25, 0.5, 0.9])
def test_the_split_over_10000_distinct_keys_is_within_one_point_of_the_weight(weight: float) -> None:
    policy = TrafficPolicy("m:1", candidate="m:2", weight=weight)
    share = sum(route(policy, f"user-{i}").arm is Arm.CANDIDATE for i in range(10_000)) / 10_000
    assert abs(share - weight) <= 0.01


def test_the_same_key_always_lands_on_the_same_version_and_only_moves_forward() -> None:
    keys = [f"k{i}" for i in range(2_000)]
    previous = {k: route(TrafficPolicy("m:1", candidate="m:2", weight=0.05), k).arm for k in keys}
    for weight in (0.25, 0.5, 1.0):
        policy = TrafficPolicy("m:1", candidate="m:2", weight=weight)
        current = {k: route(policy, k).arm for k in keys}
        assert all(current[k] is Arm.CANDIDATE for k in keys if previous[k] is Arm.CANDIDATE)
        assert current == {k: route(policy, k).arm for k in keys}
        previous = current


def test_buckets_are_stable_across_processes() -> None:
    assert bucket("user-42") == bucket("user-42")
    assert 0 <= bucket("anything") < 10_000
    # A fixed value pins the hash function: replicas on other machines must compute the same bucket.
    assert (
        bucket("user-42")
        == int.from_bytes(__import__("hashlib").blake2b(b"user-42", digest_size=8).digest(), "big") % 10_000
    )


def test_shadow_sampling_is_independent_of_the_split() -> None:
    policy = TrafficPolicy("m:1", candidate="m:2", weight=0.5, shadow="m:3", shadow_sample=0.2)
    decisions = [route(policy, f"u{i}") for i in range(10_000)]
    shadowed = [d for d in decisions if d.shadow == "m:3"]
    assert abs(len(shadowed) / 10_000 - 0.2) <= 0.015
    in_candidate = sum(d.arm is Arm.CANDIDATE for d in shadowed) / len(shadowed)
    assert abs(in_candidate - 0.5) <= 0.05


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"candidate": "m:2", "weight": 1.5}, "weight must be a fraction in \\[0, 1\\]"),
        ({"candidate": "m:2", "weight": -0.1}, "weight must be a fraction"),
        ({"weight": 0.3}, "needs a candidate"),
        ({"shadow_sample": 0.3}, "needs a shadow"),
    ],
)
def test_bad_policies_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        TrafficPolicy("m:1", **kwargs)
