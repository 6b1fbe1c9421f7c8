"""A rollout's inputs: what it was asked to do (strategy, steps, timings, gates) and what analyses tell it.

Specs are validated once, before anything moves. An ``Analysis`` is the stats module's result reduced to an
outcome and JSON-able evidence, so the state machine never computes statistics itself.

The CLI's spellings (``--steps 5,25,50,100``, ``--interval 5m``, ``--split 50``) are parsed here so that the
CLI, the HTTP admin routes and the dashboard refuse the same bad input with the same words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from itertools import pairwise
from typing import Any

from shipyard.core.endpoints import Arm
from shipyard.core.refs import ModelRef
from shipyard.errors import InvalidArgumentError


class Strategy(StrEnum):
    """How traffic moves from the stable version to the candidate."""

    REPLACE = "replace"
    BLUE_GREEN = "blue-green"
    CANARY = "canary"
    AB = "ab"
    SHADOW = "shadow"

    @classmethod
    def parse(cls, text: str | Strategy) -> Strategy:
        """Read a strategy name as users type it; an unknown one lists the allowed names."""
        if isinstance(text, Strategy):
            return text
        cleaned = text.strip().lower().replace("_", "-") if isinstance(text, str) else text
        try:
            return cls(cleaned)
        except ValueError:
            allowed = ", ".join(s.value for s in cls)
            raise InvalidArgumentError(f"unknown rollout strategy {text!r}; use one of: {allowed}") from None


def percent(fraction: float) -> str:
    """A fraction as people read it in messages: 0.05 -> '5%'."""
    return f"{fraction * 100:g}%"


def parse_percent(text: str | float, *, option: str = "value") -> float:
    """Read ``50`` or ``50%`` (the CLI's ``--split 50``) as the fraction 0.5."""
    raw = text.strip().removesuffix("%").strip() if isinstance(text, str) else text
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{option} must be a percentage such as 50, got {text!r}") from None
    if not math.isfinite(value):
        raise InvalidArgumentError(f"{option} must be a percentage such as 50, got {text!r}")
    return value / 100


def parse_steps(text: str) -> tuple[float, ...]:
    """Read ``"5,25,50,100"`` (percentages) as canary weights ``(0.05, 0.25, 0.5, 1.0)``; validated later."""
    parts = [p for p in (text.split(",") if isinstance(text, str) else []) if p.strip()]
    if not parts:
        raise InvalidArgumentError(f"steps must be comma-separated percentages such as 5,25,50,100, got {text!r}")
    try:
        return tuple(parse_percent(p, option="step") for p in parts)
    except InvalidArgumentError:
        raise InvalidArgumentError(
            f"steps must be comma-separated percentages such as 5,25,50,100, got {text!r}"
        ) from None


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?", re.IGNORECASE)
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | float, *, option: str = "duration") -> float:
    """Read ``90``, ``30s``, ``10m``, ``1h30m`` as seconds; a bare number is seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    cleaned = text.strip().replace(" ", "") if isinstance(text, str) else ""
    if not cleaned or _DURATION_PART.sub("", cleaned):
        raise InvalidArgumentError(f"{option} must be a duration such as 30s, 10m or 1h30m, got {text!r}")
    return sum(float(n) * _UNIT_S[(u or "s").lower()] for n, u in _DURATION_PART.findall(cleaned))


def format_duration(seconds: float) -> str:
    """Seconds as a short human duration: 190 -> '3m 10s'."""
    total = max(0, math.ceil(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if v]
    return " ".join(parts[:2]) or "0s"


@dataclass(frozen=True, slots=True)
class RolloutGates:
    """Thresholds the analysis checks the candidate against; ``None`` turns a gate off.

    The fields mirror the stats module's canary gates, so the controller can pass ``to_dict()`` straight on.
    """

    max_error_rate: float | None = 0.05
    max_error_rate_ratio: float | None = 2.0
    max_latency_ratio: float | None = 1.5
    max_prediction_shift: float | None = 0.2
    min_requests: int = 100

    def __post_init__(self) -> None:
        rate = self.max_error_rate
        if rate is not None and (not _is_number(rate) or not 0.0 <= rate <= 1.0):
            raise InvalidArgumentError(f"gate max_error_rate must be a fraction in [0, 1], got {rate!r}")
        for name in ("max_error_rate_ratio", "max_latency_ratio"):
            value = getattr(self, name)
            if value is not None and (not _is_number(value) or not math.isfinite(value) or value <= 0):
                raise InvalidArgumentError(f"gate {name} must be a ratio above 0 (e.g. 1.5), got {value!r}")
        shift = self.max_prediction_shift
        if shift is not None and (not _is_number(shift) or not math.isfinite(shift) or shift < 0):
            raise InvalidArgumentError(f"gate max_prediction_shift must be 0 or more, got {shift!r}")
        if not isinstance(self.min_requests, int) or isinstance(self.min_requests, bool) or self.min_requests < 1:
            raise InvalidArgumentError(f"gate min_requests must be a whole number from 1, got {self.min_requests!r}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutGates:
        """Build gates from a JSON object; an unknown key is refused, since a typo would silently drop a gate."""
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise InvalidArgumentError(f"unknown gate {unknown[0]!r}; gates are: {', '.join(sorted(allowed))}")
        return cls(**dict(data))


DEFAULT_STEPS = (0.05, 0.25, 0.5, 1.0)
MAX_DURATION_S = 30 * 86400.0  # a step or bake longer than a month is a typo, and would overflow date arithmetic

# Which options each strategy reads; giving another is a mistake worth telling the user about.
_OPTIONS: dict[Strategy, frozenset[str]] = {
    Strategy.REPLACE: frozenset(),
    Strategy.BLUE_GREEN: frozenset({"bake_s", "gates"}),
    Strategy.CANARY: frozenset({"steps", "interval_s", "gates"}),
    Strategy.AB: frozenset({"split", "alpha", "auto_promote", "gates"}),
    Strategy.SHADOW: frozenset({"sample", "gates"}),
}


@dataclass(frozen=True, slots=True)
class RolloutSpec:
    """A validated rollout request; ``candidate`` is the resolved version ref the traffic moves to."""

    strategy: Strategy
    candidate: str
    steps: tuple[float, ...] = DEFAULT_STEPS
    interval_s: float = 300.0
    bake_s: float = 600.0
    split: float = 0.5
    sample: float = 0.2
    alpha: float = 0.05
    auto_promote: bool = False
    gates: RolloutGates = field(default_factory=RolloutGates)

    def __post_init__(self) -> None:
        if not isinstance(self.strategy, Strategy):
            raise InvalidArgumentError(f"strategy must be a Strategy, got {self.strategy!r}; use RolloutSpec.create")
        ModelRef.parse(self.candidate)
        _check_steps(self.steps, canary=self.strategy is Strategy.CANARY)
        if not _is_number(self.interval_s) or not math.isfinite(self.interval_s) or self.interval_s <= 0:
            raise InvalidArgumentError(f"interval must be above 0 seconds, got {self.interval_s!r}")
        if not _is_number(self.bake_s) or not math.isfinite(self.bake_s) or self.bake_s < 0:
            raise InvalidArgumentError(f"bake time must be 0 seconds or more, got {self.bake_s!r}")
        for name, value in (("interval", self.interval_s), ("bake time", self.bake_s)):
            if value > MAX_DURATION_S:
                raise InvalidArgumentError(
                    f"{name} of {format_duration(value)} is longer than the {format_duration(MAX_DURATION_S)} "
                    "a rollout step may last"
                )
        if not _is_number(self.split) or not 0.0 < self.split < 1.0:
            raise InvalidArgumentError(f"split must be a fraction in (0, 1) (e.g. 0.5 for 50%), got {self.split!r}")
        if not _is_number(self.sample) or not 0.0 < self.sample <= 1.0:
            raise InvalidArgumentError(f"shadow sample must be a fraction in (0, 1], got {self.sample!r}")
        if not _is_number(self.alpha) or not 0.0 < self.alpha < 1.0:
            raise InvalidArgumentError(f"alpha must be a significance level in (0, 1) such as 0.05, got {self.alpha!r}")
        if not isinstance(self.auto_promote, bool):
            raise InvalidArgumentError(f"auto_promote must be true or false, got {self.auto_promote!r}")
        if not isinstance(self.gates, RolloutGates):
            raise InvalidArgumentError(f"gates must be RolloutGates, got {type(self.gates).__name__}")

    @classmethod
    def create(
        cls,
        strategy: str | Strategy,
        candidate: str,
        *,
        steps: str | Sequence[float] | None = None,
        interval_s: str | float | None = None,
        bake_s: str | float | None = None,
        split: float | None = None,
        sample: float | None = None,
        alpha: float | None = None,
        auto_promote: bool | None = None,
        gates: RolloutGates | Mapping[str, Any] | None = None,
    ) -> RolloutSpec:
        """Build a spec from user input; an option the strategy does not read is refused, not ignored."""
        parsed = Strategy.parse(strategy)
        given = {
            "steps": steps,
            "interval_s": interval_s,
            "bake_s": bake_s,
            "split": split,
            "sample": sample,
            "alpha": alpha,
            "auto_promote": auto_promote,
            "gates": gates,
        }
        for name, value in given.items():
            if value is not None and name not in _OPTIONS[parsed]:
                users = ", ".join(sorted(s.value for s, names in _OPTIONS.items() if name in names))
                raise InvalidArgumentError(
                    f"option {name.removesuffix('_s')!r} applies to {users} rollouts, not to {parsed.value!r}"
                )
        options: dict[str, Any] = {}
        if steps is not None:
            options["steps"] = parse_steps(steps) if isinstance(steps, str) else tuple(steps)
        if interval_s is not None:
            options["interval_s"] = parse_duration(interval_s, option="interval")
        if bake_s is not None:
            options["bake_s"] = parse_duration(bake_s, option="bake time")
        options.update({k: v for k, v in (("split", split), ("sample", sample), ("alpha", alpha)) if v is not None})
        if auto_promote is not None:
            options["auto_promote"] = auto_promote
        if gates is not None:
            options["gates"] = gates if isinstance(gates, RolloutGates) else RolloutGates.from_dict(gates)
        return cls(parsed, candidate, **options)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy.value,
            "candidate": self.candidate,
            "steps": list(self.steps),
            "interval_s": self.interval_s,
            "bake_s": self.bake_s,
            "split": self.split,
            "sample": self.sample,
            "alpha": self.alpha,
            "auto_promote": self.auto_promote,
            "gates": self.gates.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutSpec:
        """Rebuild a stored spec; missing options take today's defaults."""
        options = {
            k: data[k] for k in ("interval_s", "bake_s", "split", "sample", "alpha", "auto_promote") if k in data
        }
        if "steps" in data:
            options["steps"] = tuple(data["steps"])
        if "gates" in data:
            options["gates"] = RolloutGates.from_dict(data["gates"])
        return cls(Strategy.parse(data["strategy"]), data["candidate"], **options)


class Outcome(StrEnum):
    """An analysis verdict: move on (pass), wait for more evidence (hold), or get the candidate out (fail).

    The canary gates return it and the state machine acts on it: one enum for both, never a string between.
    """

    PASS = "pass"
    HOLD = "hold"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Analysis:
    """The statistics' answer, reduced to what the state machine acts on.

    For canary and blue-green it is the gates' verdict (too few candidate requests is HOLD). For A/B,
    PASS means the candidate won, FAIL that stable won, HOLD 'no difference yet' (see ``for_ab``).
    ``evidence`` is JSON-able and is stored on the event, so ``rollout status`` can show why.
    """

    outcome: Outcome
    reason: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    carry: Mapping[str, Any] | None = None
    """JSON-able memory the next analysis needs (the A/B test's sequential state); kept on ``RolloutState.carry``."""

    @classmethod
    def for_ab(
        cls,
        winner: Arm | None,
        reason: str = "",
        evidence: Mapping[str, Any] | None = None,
        carry: Mapping[str, Any] | None = None,
    ) -> Analysis:
        """Map an A/B winner (the candidate, the stable version, or None for 'no difference yet') onto an outcome."""
        outcome = _AB_OUTCOMES.get(winner)
        if outcome is None:
            raise InvalidArgumentError(f"an A/B winner must be the stable or candidate arm, or None; got {winner!r}")
        return cls(outcome, reason, dict(evidence or {}), dict(carry) if carry is not None else None)


_AB_OUTCOMES: Mapping[Arm | None, Outcome] = {
    None: Outcome.HOLD,
    Arm.CANDIDATE: Outcome.PASS,
    Arm.STABLE: Outcome.FAIL,
}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_steps(steps: tuple[float, ...], *, canary: bool) -> None:
    """Steps are weights that only grow and end at 100%, so every routing key moves at most once."""
    if not isinstance(steps, tuple) or not steps or not all(_is_number(s) for s in steps):
        raise InvalidArgumentError(f"steps must be percentages such as 5,25,50,100, got {steps!r}")
    shown = ",".join(f"{s * 100:g}" for s in steps)
    for step in steps:
        if not 0.0 < step <= 1.0:
            raise InvalidArgumentError(f"step {percent(step)} is outside (0%, 100%] in steps {shown}")
    for before, after in pairwise(steps):
        if after <= before:
            raise InvalidArgumentError(
                f"steps must be strictly increasing, but {percent(after)} follows {percent(before)} in {shown}"
            )
    if steps[-1] != 1.0:
        raise InvalidArgumentError(f"steps must end at 100%, got {shown}; add 100 as the last step")
    if canary and len(steps) < 2:
        raise InvalidArgumentError(
            f"a canary needs a step below 100% before 100, got {shown}; use strategy 'replace' to move all at once"
        )
