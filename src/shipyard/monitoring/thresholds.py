"""Drift thresholds: one set for the window, overridden per feature, validated where they are set.

The defaults follow the rule of thumb in ``monitoring.drift``: a p-value decides on small windows, an
effect size on large ones (PSI or normalised Wasserstein, whichever is further past its threshold); the
window's p-values are corrected for testing many features at once (Holm). ``DriftThresholds.for_feature``
gives the limits that apply to one column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from shipyard.errors import InvalidArgumentError

NUMERIC_EFFECTS = ("psi_or_wasserstein", "psi", "wasserstein")
CORRECTIONS = ("holm", "bh", "bonferroni", "none")


# --- thresholds -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeatureThresholds:
    """When one feature counts as drifted, and how its bins are grouped first; the defaults fit most features.

    ``numeric_effect`` picks the effect size that decides large numeric windows: ``"psi"`` (threshold
    ``psi``), ``"wasserstein"`` (normalised by the reference's standard deviation, threshold
    ``wasserstein``), or by default either of them, as Evidently decides large samples. PSI alone misses a
    change of spread: over ten reference deciles, a standard deviation grown by half reads 0.194 on a
    million rows, under its 0.2, while its normalised Wasserstein distance is 0.40.

    ``rare_share``: categorical levels below this share of both windows pooled are folded into
    ``__rare__``, as are levels whose expected count would be under 5, and all but the ``max_levels``
    largest.
    """

    alpha: float = 0.05
    psi: float = 0.2
    wasserstein: float = 0.1
    js: float = 0.1
    large_window_rows: int = 1000
    min_rows: int = 30
    numeric_effect: str = "psi_or_wasserstein"
    psi_groups: int = 10
    rare_share: float = 0.01
    max_levels: int = 20

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise InvalidArgumentError(f"alpha must be a probability in (0, 1) such as 0.05, got {self.alpha!r}")
        for name in ("psi", "wasserstein", "js"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (math.isfinite(value) and value > 0)
            ):
                raise InvalidArgumentError(f"{name} threshold must be a number > 0, got {value!r}")
        for name in ("large_window_rows", "min_rows", "psi_groups", "max_levels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.numeric_effect not in NUMERIC_EFFECTS:
            raise InvalidArgumentError(
                f"numeric_effect must be one of {', '.join(NUMERIC_EFFECTS)}, got {self.numeric_effect!r}"
            )
        if not 0 <= self.rare_share < 1:
            raise InvalidArgumentError(f"rare_share must be a fraction in [0, 1), got {self.rare_share!r}")

    def to_dict(self) -> dict[str, Any]:
        """Every field by name, so a stored configuration shows the defaults it ran with."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


_THRESHOLD_NAMES = tuple(f.name for f in fields(FeatureThresholds))


def _overridden(
    base: FeatureThresholds, override: FeatureThresholds | Mapping[str, Any], where: str
) -> FeatureThresholds:
    if isinstance(override, FeatureThresholds):
        return override
    unknown = sorted(set(override) - set(_THRESHOLD_NAMES))
    if unknown:
        raise InvalidArgumentError(
            f"unknown drift threshold {', '.join(map(repr, unknown))} for {where}; known: {', '.join(_THRESHOLD_NAMES)}"
        )
    return replace(base, **override)


@dataclass(frozen=True, slots=True)
class DriftThresholds:
    """Defaults for every feature, overridden per feature name (a partial mapping such as ``{"psi": 0.3}``).

    ``correction`` adjusts the p-value tests for the number of features tested in the window: with 30
    features at alpha 0.05, a third of the windows without any drift would otherwise flag at least one
    feature (measured: 26-39%). ``"holm"`` (the default) keeps the chance that a window without drift
    flags anything at most alpha, whatever the features' dependence, and rejects more than Bonferroni
    (``"bonferroni"``: alpha divided by the number tested) when several features drift. ``"bh"``
    (Benjamini-Hochberg) bounds the expected share of false alarms among the flagged features instead:
    alpha too for a window without drift, more flags when many features drift. ``"none"`` judges each at
    its own alpha. Each feature keeps its own p-value; its threshold shows the corrected alpha. Effect
    sizes are left alone: they do not multiply like p-values.

    ``drift_share`` is the dataset-level rule beside it (Evidently's DataDriftPreset): the window's data
    drift when more than this share of its tested features drift.
    """

    default: FeatureThresholds = field(default_factory=FeatureThresholds)
    features: Mapping[str, FeatureThresholds | Mapping[str, Any]] = field(default_factory=dict)
    prediction: FeatureThresholds | Mapping[str, Any] = field(default_factory=dict)
    correction: str = "holm"
    drift_share: float = 0.5

    def __post_init__(self) -> None:
        if self.correction not in CORRECTIONS:
            raise InvalidArgumentError(f"correction must be one of {', '.join(CORRECTIONS)}, got {self.correction!r}")
        share = self.drift_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
            raise InvalidArgumentError(f"drift_share must be a fraction in [0, 1) such as 0.5, got {share!r}")
        for name, override in self.features.items():
            _overridden(self.default, override, f"feature {name!r}")  # fail at configuration, not per window
        _overridden(self.default, self.prediction, "the prediction")

    def for_feature(self, name: str) -> FeatureThresholds:
        """This feature's thresholds: the defaults with its overrides applied."""
        override = self.features.get(name)
        return self.default if override is None else _overridden(self.default, override, f"feature {name!r}")

    def for_prediction(self) -> FeatureThresholds:
        """The prediction's thresholds: the defaults with ``prediction``'s overrides applied."""
        return _overridden(self.default, self.prediction, "the prediction")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``from_dict`` reads it back."""

        def plain(o: FeatureThresholds | Mapping[str, Any]) -> dict[str, Any]:
            return o.to_dict() if isinstance(o, FeatureThresholds) else dict(o)

        return {
            "default": self.default.to_dict(),
            "features": {name: plain(o) for name, o in self.features.items()},
            "prediction": plain(self.prediction),
            "correction": self.correction,
            "drift_share": self.drift_share,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftThresholds:
        """Thresholds from configuration: missing keys take the defaults, unknown ones are refused."""
        default = _overridden(FeatureThresholds(), data.get("default") or {}, "the defaults")
        return cls(
            default,
            {str(k): dict(v) for k, v in (data.get("features") or {}).items()},
            dict(data.get("prediction") or {}),
            str(data.get("correction", "holm")),
            data.get("drift_share", 0.5),
        )


def correction_factor(q_values: Sequence[float], correction: str) -> float:
    """What each feature's alpha is multiplied by, given every tested p-value divided by its own alpha.

    Holm and Benjamini-Hochberg are step procedures, but each ends at one cut: the features they reject
    are exactly those with p < alpha x factor, so every feature can show the threshold that judged it.
    (Rejection is strict, p < threshold, as for a single test; with equal alphas these are the textbook
    procedures, with per-feature alphas their weighted forms.)
    """
    m = len(q_values)
    if correction == "none" or m == 0:
        return 1.0
    if correction == "bonferroni":
        return 1.0 / m
    ordered = sorted(q_values)
    if correction == "holm":  # step down: stop at the first p-value that misses alpha / (m - k + 1)
        for k, q in enumerate(ordered, start=1):
            if q >= 1.0 / (m - k + 1):
                return 1.0 / (m - k + 1)
        return 1.0
    if correction == "bh":  # step up: the largest k whose p-value is under k alpha / m
        largest = max((k for k, q in enumerate(ordered, start=1) if q < k / m), default=1)
        return largest / m
    raise InvalidArgumentError(f"correction must be one of holm, bh, bonferroni, none, got {correction!r}")
