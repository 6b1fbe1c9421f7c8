"""Drift thresholds: one set for the window, overridden per feature, validated where they are set.

The defaults follow the rule of thumb in ``monitoring.drift``: a p-value decides on small windows, an
effect size on large ones; ``DriftThresholds.for_feature`` gives the limits that apply to one column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from shipyard.errors import InvalidArgumentError

NUMERIC_EFFECTS = ("psi", "wasserstein")
CORRECTIONS = ("none", "bonferroni")


# --- thresholds -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeatureThresholds:
    """When one feature counts as drifted, and how its bins are grouped first; the defaults fit most features.

    ``numeric_effect`` picks the effect size that decides large numeric windows: ``"psi"`` (threshold
    ``psi``) or ``"wasserstein"`` (normalised by the reference's standard deviation, threshold
    ``wasserstein``). ``rare_share``: categorical levels below this share of both windows pooled are
    folded into ``__rare__``, as are levels whose expected count would be under 5, and all but the
    ``max_levels`` largest.
    """

    alpha: float = 0.05
    psi: float = 0.2
    wasserstein: float = 0.1
    js: float = 0.1
    large_window_rows: int = 1000
    min_rows: int = 30
    numeric_effect: str = "psi"
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

    ``correction="bonferroni"`` divides alpha by the number of features tested in the window: with 25
    features at alpha 0.05, about 72% of windows without any drift would otherwise flag at least one
    feature on a p-value. It leaves effect sizes alone; they do not multiply like p-values.
    """

    default: FeatureThresholds = field(default_factory=FeatureThresholds)
    features: Mapping[str, FeatureThresholds | Mapping[str, Any]] = field(default_factory=dict)
    prediction: FeatureThresholds | Mapping[str, Any] = field(default_factory=dict)
    correction: str = "none"

    def __post_init__(self) -> None:
        if self.correction not in CORRECTIONS:
            raise InvalidArgumentError(f"correction must be one of {', '.join(CORRECTIONS)}, got {self.correction!r}")
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
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftThresholds:
        """Thresholds from configuration: missing keys take the defaults, unknown ones are refused."""
        default = _overridden(FeatureThresholds(), data.get("default") or {}, "the defaults")
        return cls(
            default,
            {str(k): dict(v) for k, v in (data.get("features") or {}).items()},
            dict(data.get("prediction") or {}),
            str(data.get("correction", "none")),
        )
