"""Endpoints and the routing decision: which model version serves a request.

``route`` is the single place traffic is split. Today an endpoint sends all traffic to one version;
the rollout work grows the policy (candidate weight, shadows) without changing its callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shipyard.core.refs import ModelRef


class Arm(StrEnum):
    """Which side of a traffic split served a request."""

    STABLE = "stable"
    CANDIDATE = "candidate"
    SHADOW = "shadow"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A named serving address. ``model`` is a ref: a pinned version, or an alias the endpoint follows."""

    name: str
    model: str
    strict: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def follows_alias(self) -> bool:
        return ModelRef.parse(self.model).alias is not None


@dataclass(frozen=True, slots=True)
class TrafficPolicy:
    """Where an endpoint's traffic goes, by resolved version ref (``fraud:3``)."""

    stable: str


@dataclass(frozen=True, slots=True)
class RouteDecision:
    version: str
    arm: Arm


def route(policy: TrafficPolicy, routing_key: str) -> RouteDecision:
    """Pick the version for one request; pure, so every worker and replica decides alike."""
    del routing_key  # a single-version policy sends every key to the stable version
    return RouteDecision(policy.stable, Arm.STABLE)
