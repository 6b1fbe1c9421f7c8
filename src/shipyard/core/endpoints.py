"""Endpoints and the routing decision: which model version serves a request.

``route`` is the single place traffic is split: a stable version, optionally a candidate taking a
sticky share of routing keys, and optionally a shadow receiving a sampled copy of requests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shipyard.core.refs import ModelRef
from shipyard.errors import InvalidArgumentError


class Arm(StrEnum):
    """Which side of a traffic split served a request."""

    STABLE = "stable"
    CANDIDATE = "candidate"
    SHADOW = "shadow"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A named serving address. ``model`` is a ref: a pinned version, or an alias the endpoint follows.

    ``require_approval``: it serves, follows and rolls out to approved versions only (the approval rule).
    ``require_validation``: it serves and rolls out to versions with a passing validation run only, and its
    model's versions are approved only with one (the validation rule).
    """

    name: str
    model: str
    strict: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    require_approval: bool = False
    require_validation: bool = False

    @property
    def follows_alias(self) -> bool:
        return ModelRef.parse(self.model).alias is not None


BUCKETS = 10_000


@dataclass(frozen=True, slots=True)
class TrafficPolicy:
    """Where an endpoint's traffic goes, by resolved version ref (``fraud:3``).

    ``weight`` is the candidate's share of routing keys, a fraction in [0, 1]; ``shadow_sample`` is the
    share of requests also sent to the shadow version, off the response path.
    """

    stable: str
    candidate: str | None = None
    weight: float = 0.0
    shadow: str | None = None
    shadow_sample: float = 0.0

    def __post_init__(self) -> None:
        for name in ("weight", "shadow_sample"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise InvalidArgumentError(f"{name} must be a fraction in [0, 1], got {value!r}")
        if self.weight > 0 and self.candidate is None:
            raise InvalidArgumentError("a candidate weight above 0 needs a candidate version")
        if self.shadow_sample > 0 and self.shadow is None:
            raise InvalidArgumentError("a shadow sample rate above 0 needs a shadow version")

    @property
    def versions(self) -> tuple[str, ...]:
        """Every version this policy can send traffic to, stable first."""
        return tuple(dict.fromkeys(v for v in (self.stable, self.candidate, self.shadow) if v is not None))


@dataclass(frozen=True, slots=True)
class RouteDecision:
    version: str
    arm: Arm
    shadow: str | None = None


def bucket(routing_key: str, salt: str = "") -> int:
    """The key's bucket in [0, 10,000): a stable hash, so every worker and replica agrees without talking."""
    digest = hashlib.blake2b((salt + routing_key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def route(policy: TrafficPolicy, routing_key: str) -> RouteDecision:
    """Pick the version for one request; pure, so every worker and replica decides alike.

    A key whose bucket is below ``weight`` x 10,000 goes to the candidate; as the weight grows, keys
    only ever move from stable to candidate, so a user never flips back and forth during a canary.
    Shadow sampling uses an independent (salted) bucket, so it is not correlated with the split.
    """
    if policy.candidate is not None and policy.weight > 0 and bucket(routing_key) < policy.weight * BUCKETS:
        decision_version, arm = policy.candidate, Arm.CANDIDATE
    else:
        decision_version, arm = policy.stable, Arm.STABLE
    sampled = policy.shadow_sample > 0 and bucket(routing_key, "shadow:") < policy.shadow_sample * BUCKETS
    return RouteDecision(decision_version, arm, policy.shadow if sampled else None)
