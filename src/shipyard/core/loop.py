"""An endpoint's loop policy: what happens after a retraining job registers a new version.

``manual`` stops there (a person validates and rolls out); ``validate`` judges the version against the
endpoint's stable one on a holdout and waits for a person's approval before a canary; ``auto`` starts the
canary as soon as the gates pass, and the canary's own gates promote or roll back. Pure: the service layer
stores the policy on the endpoint and runs it; this module only says what a policy is and what a run did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shipyard.errors import InvalidArgumentError


class LoopMode(StrEnum):
    MANUAL = "manual"
    VALIDATE = "validate"
    AUTO = "auto"

    @classmethod
    def parse(cls, text: str) -> LoopMode:
        try:
            return cls(text.strip().lower())
        except ValueError:
            known = ", ".join(m.value for m in cls)
            raise InvalidArgumentError(f"unknown loop policy {text!r}; choose one of: {known}") from None


DEFAULT_MAX_REGRESSION = 0.01
"""With no gate given, a retrained version may be at most this much worse than the stable one, on the paired
bound (accuracy points for a classifier, a fraction of the MAE for a regressor): otherwise every trained
model would pass, and ``auto`` would roll out anything."""

CANARY_OPTIONS = ("steps", "interval_s", "gates")
"""What of a canary spec a policy may hold (``RolloutSpec.create``'s options for ``canary``)."""


@dataclass(frozen=True, slots=True)
class LoopPolicy:
    """One endpoint's policy. ``holdout`` (a CSV/Parquet path on the lease holder) and ``target`` feed the
    validation run; ``minimum``/``maximum`` are ``figure=value`` gates as ``shipyard validate`` takes them;
    ``canary`` the options of the canary ``auto`` (or an approval) starts."""

    mode: LoopMode
    holdout: str | None = None
    target: str | None = None
    minimum: tuple[str, ...] = ()
    maximum: tuple[str, ...] = ()
    max_regression: float | None = None
    canary: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode is not LoopMode.MANUAL and (not self.holdout or not self.target):
            raise InvalidArgumentError(
                f"the {self.mode.value} loop validates each retrained version on a holdout: give --holdout "
                "PATH (CSV or Parquet with the label column) and --target COLUMN"
            )
        unknown = sorted(set(self.canary) - set(CANARY_OPTIONS))
        if unknown:
            raise InvalidArgumentError(
                f"canary option(s) {unknown} are not part of a loop's canary; use: {', '.join(CANARY_OPTIONS)}"
            )

    @property
    def effective_max_regression(self) -> float | None:
        """The regression gate a run uses: the one given, or the default when no gate at all was given."""
        if self.max_regression is not None or self.minimum or self.maximum:
            return self.max_regression
        return DEFAULT_MAX_REGRESSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "holdout": self.holdout,
            "target": self.target,
            "minimum": list(self.minimum),
            "maximum": list(self.maximum),
            "max_regression": self.max_regression,
            "canary": dict(self.canary),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoopPolicy:
        regression = data.get("max_regression")
        return cls(
            mode=LoopMode(str(data["mode"])),
            holdout=data.get("holdout"),
            target=data.get("target"),
            minimum=tuple(str(t) for t in data.get("minimum") or ()),
            maximum=tuple(str(t) for t in data.get("maximum") or ()),
            max_regression=float(regression) if regression is not None else None,
            canary=dict(data.get("canary") or {}),
        )


class StepKind(StrEnum):
    REGISTERED = "registered"
    VALIDATED = "validated"
    VALIDATION_FAILED = "validation_failed"
    AWAITING_APPROVAL = "awaiting_approval"
    CANARY_STARTED = "canary_started"
    CANARY_REFUSED = "canary_refused"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class LoopStep:
    """One thing the loop did for a job, as ``jobs show`` and the outbox event tell it."""

    kind: StepKind
    at: str
    message: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "at": self.at, "message": self.message, "detail": dict(self.detail)}


def steps_to_dicts(steps: Sequence[LoopStep]) -> list[dict[str, Any]]:
    return [s.to_dict() for s in steps]
