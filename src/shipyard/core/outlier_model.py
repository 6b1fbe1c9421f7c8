"""The novelty model a model version carries: fitted on its training rows, it scores each served row as an outlier.

It lives beside the version (like the confidence calibrator) because it is stored with it, as JSON: plain
numbers, and for an isolation forest a skops dump in base64 (never a pickle). Fitting and scoring it are
monitoring's maths (``monitoring.outliers``); loading the forest is the services' business.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import InvalidArgumentError

OUTLIER_METHODS = ("mahalanobis", "isolation_forest")
OUTLIER_OPTIONS = (*OUTLIER_METHODS, "none")
"""What ``register(..., outlier_model=...)`` takes: a method, or "none" to fit no outlier model."""
DEFAULT_OUTLIER_METHOD = "mahalanobis"
OUTLIER_QUANTILE = 0.999
"""A row is an outlier when it scores above this quantile of the training rows' scores: 0.1% of training rows."""
RARE_LEVEL_SHARE = 0.001
"""A category level seen in fewer than this share of training rows (or never) counts as rare."""


def check_outlier_option(value: str) -> str:
    """The registration option as given, or an error naming what is allowed."""
    if value not in OUTLIER_OPTIONS:
        raise InvalidArgumentError(
            f"outlier_model must be one of {', '.join(repr(o) for o in OUTLIER_OPTIONS)}; got {value!r}"
        )
    return value


@dataclass(frozen=True, slots=True)
class OutlierModel:
    """A per-row novelty model over a version's features, with the score above which a row is an outlier.

    Numeric features are standardised by ``center``/``scale``; ``whitening`` (Mahalanobis only) turns a
    standardised row into one whose squared length is its squared Mahalanobis distance under a shrunk
    covariance. ``levels`` holds each categorical feature's common levels with their training share: a level
    not among them is rare (or never seen). A Mahalanobis score is the distance plus ``rare_weight`` per rare
    level; an isolation forest's is its anomaly score in (0, 1), the forest stored in ``forest``.
    """

    method: str
    threshold: float
    training_rows: int
    numeric: tuple[str, ...] = ()
    center: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()
    whitening: tuple[tuple[float, ...], ...] = ()
    levels: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    rare_weight: float = 1.0
    quantile: float = OUTLIER_QUANTILE
    forest: str | None = None
    """An isolation forest as a skops dump in base64; None for Mahalanobis."""

    def __post_init__(self) -> None:
        if self.method not in OUTLIER_METHODS:
            raise InvalidArgumentError(
                f"unknown outlier model method {self.method!r}; expected one of {OUTLIER_METHODS}"
            )
        if not math.isfinite(self.threshold):
            raise InvalidArgumentError(f"an outlier threshold must be a finite number; got {self.threshold!r}")
        p = len(self.numeric)
        if len(self.center) != p or len(self.scale) != p:
            raise InvalidArgumentError(
                f"an outlier model needs one center and one scale per numeric feature ({p}); got "
                f"{len(self.center)} and {len(self.scale)}"
            )
        if self.method == "mahalanobis" and (len(self.whitening) != p or any(len(r) != p for r in self.whitening)):
            raise InvalidArgumentError(f"a Mahalanobis outlier model needs a {p}x{p} whitening matrix")
        if self.method == "isolation_forest" and not self.forest:
            raise InvalidArgumentError("an isolation-forest outlier model needs its forest")

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.numeric, *self.levels)

    @property
    def expected_rate(self) -> float:
        """The share of rows like the training rows that score above the threshold."""
        return round(1.0 - self.quantile, 12)  # 0.001, not 1 - 0.999 = 0.0010000000000000009

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "threshold": self.threshold,
            "quantile": self.quantile,
            "training_rows": self.training_rows,
            "numeric": list(self.numeric),
            "center": list(self.center),
            "scale": list(self.scale),
            "whitening": [list(row) for row in self.whitening],
            "levels": {name: dict(shares) for name, shares in self.levels.items()},
            "rare_weight": self.rare_weight,
            "forest": self.forest,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutlierModel:
        try:
            return cls(
                method=str(data["method"]),
                threshold=float(data["threshold"]),
                training_rows=int(data["training_rows"]),
                numeric=tuple(str(n) for n in data.get("numeric") or ()),
                center=tuple(float(c) for c in data.get("center") or ()),
                scale=tuple(float(s) for s in data.get("scale") or ()),
                whitening=tuple(tuple(float(v) for v in row) for row in data.get("whitening") or ()),
                levels={
                    str(name): {str(level): float(share) for level, share in shares.items()}
                    for name, shares in (data.get("levels") or {}).items()
                },
                rare_weight=float(data.get("rare_weight", 1.0)),
                quantile=float(data.get("quantile", OUTLIER_QUANTILE)),
                forest=data.get("forest"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"a stored outlier model cannot be read: {type(exc).__name__}: {exc}") from exc

    def summary(self) -> str:
        """One line for the model card."""
        parts = [f"{self.method.replace('_', ' ')} over {len(self.numeric)} numeric"]
        if self.levels:
            parts.append(f"{len(self.levels)} categorical features")
        else:
            parts[0] += " features"
        return (
            f"{' and '.join(parts)}, fitted on {self.training_rows:,} training rows; threshold "
            f"{self.threshold:.4g} (their {self.quantile:.1%} quantile)"
        )
