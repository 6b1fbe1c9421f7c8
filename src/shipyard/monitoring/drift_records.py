"""What a drift check returns: per test, per feature and per window, each JSON-able and rebuilt by the report.

Kept apart from the computation (``monitoring.drift``) so the report, its renderers and its JSON reader
depend on the records only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shipyard.core.jsonsafe import finite_or_none

StatTest = Literal["psi", "ks", "wasserstein", "chi2", "js"]
Kind = Literal["numeric", "categorical"]


# --- results ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatResult:
    """One measure on one feature against its own threshold (alpha for the p-value tests)."""

    test: StatTest
    score: float
    threshold: float
    p_value: float | None
    drifted: bool

    @property
    def severity(self) -> float:
        """How far past its threshold, comparable across tests: 1.0 is the threshold itself."""
        if self.p_value is not None:
            return math.log(max(self.p_value, 1e-300)) / math.log(self.threshold)
        return self.score / self.threshold

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: NaN and infinite figures become null."""
        return {
            "test": self.test,
            "score": finite_or_none(self.score),
            "threshold": self.threshold,
            "p_value": finite_or_none(self.p_value),
            "drifted": self.drifted,
        }


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One feature's (or the prediction's) drift: the deciding test, every measure, and what to plot.

    ``test`` is None when nothing was decided (too few rows, no reference, incompatible bins); ``note``
    then says why. ``bins`` label the groups the proportions are over (numeric: intervals cut at ``edges``).
    """

    feature: str
    kind: Kind
    test: StatTest | None
    drifted: bool
    rows: int
    stats: tuple[StatResult, ...] = ()
    scores: Mapping[str, float | None] = field(default_factory=dict)
    bins: tuple[str, ...] = ()
    edges: tuple[float, ...] = ()
    reference_proportions: tuple[float, ...] = ()
    live_proportions: tuple[float, ...] = ()
    reference_missing_share: float | None = None
    live_missing_share: float | None = None
    note: str | None = None

    @property
    def decision(self) -> StatResult | None:
        """The deciding test's result."""
        return next((s for s in self.stats if s.test == self.test), None)

    @property
    def score(self) -> float | None:
        """The deciding test's score (its statistic for a p-value test)."""
        decision = self.decision
        return decision.score if decision else None

    @property
    def threshold(self) -> float | None:
        """The deciding test's threshold (alpha, after any correction, for a p-value test)."""
        decision = self.decision
        return decision.threshold if decision else None

    @property
    def p_value(self) -> float | None:
        """The deciding test's p-value; None for effect sizes."""
        decision = self.decision
        return decision.p_value if decision else None

    @property
    def severity(self) -> float:
        """How far past its threshold the deciding test is (1.0 at it); 0.0 when nothing was decided."""
        decision = self.decision
        return decision.severity if decision else 0.0

    def flagged_by(self) -> tuple[StatTest, ...]:
        """Every test that, on its own threshold, calls this feature drifted (decided or not)."""
        return tuple(s.test for s in self.stats if s.drifted)

    def stat(self, test: StatTest) -> StatResult | None:
        """One test's result by name, None when it does not apply to this feature."""
        return next((s for s in self.stats if s.test == test), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, with the grouped proportions of both sides for plotting them side by side."""
        reference: dict[str, Any] = {
            "bins": list(self.bins),
            "proportions": list(self.reference_proportions),
            "missing_share": finite_or_none(self.reference_missing_share),
        }
        if self.kind == "numeric":
            reference["edges"] = list(self.edges)
        return {
            "feature": self.feature,
            "kind": self.kind,
            "test": self.test,
            "score": finite_or_none(self.score),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "severity": finite_or_none(self.severity) if self.decision is not None else None,
            "p_value": finite_or_none(self.p_value),
            "scores": {name: finite_or_none(value) for name, value in self.scores.items()},
            "tests": [s.to_dict() for s in self.stats],
            "rows": self.rows,
            "reference": reference,
            "live": {
                "proportions": list(self.live_proportions),
                "missing_share": finite_or_none(self.live_missing_share),
            },
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class MultivariateDrift:
    """A window's multivariate drift: its rows' PCA reconstruction errors against the training rows'.

    ``error`` is the errors' distribution test, decided like a numeric feature's; ``drifted`` is its verdict.
    ``lower``/``upper`` bound the window's mean error under no drift (training mean +/- 3 standard errors,
    NannyML's band). With no PCA stored or no live rows, ``error`` is None and ``note`` says why.
    """

    drifted: bool
    method: str = "pca_reconstruction"
    columns: tuple[str, ...] = ()
    left_out: Mapping[str, str] = field(default_factory=dict)
    components: int = 0
    variance_kept: float | None = None
    reference_mean: float | None = None
    reference_sd: float | None = None
    live_mean: float | None = None
    lower: float | None = None
    upper: float | None = None
    error: FeatureDrift | None = None
    note: str | None = None

    @property
    def outside_band(self) -> bool | None:
        """Whether the window's mean error left NannyML's band; None without live rows."""
        if self.live_mean is None or self.lower is None or self.upper is None:
            return None
        return not self.lower <= self.live_mean <= self.upper

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "drifted": self.drifted,
            "test": self.error.test if self.error is not None else None,
            "columns": list(self.columns),
            "left_out": dict(self.left_out),
            "components": self.components,
            "variance_kept": finite_or_none(self.variance_kept),
            "reference_mean": finite_or_none(self.reference_mean),
            "reference_sd": finite_or_none(self.reference_sd),
            "live_mean": finite_or_none(self.live_mean),
            "lower": finite_or_none(self.lower),
            "upper": finite_or_none(self.upper),
            "outside_band": self.outside_band,
            "error": self.error.to_dict() if self.error is not None else None,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class WindowDrift:
    """A window's verdict: drifted when any feature, the prediction or the multivariate test is, features
    sorted worst first.

    Features' p-values are judged after ``correction``. ``drift_share`` is the share of tested features
    that drifted (None when none was tested); ``dataset_drifted`` says it is above ``drift_share_threshold``,
    the dataset-level rule Evidently's preset applies. ``multivariate`` is None for reports from before it.
    """

    drifted: bool
    drifted_features: tuple[str, ...]
    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None
    correction: str = "none"
    drift_share: float | None = None
    drift_share_threshold: float = 0.5
    dataset_drifted: bool = False
    multivariate: MultivariateDrift | None = None

    def feature(self, name: str) -> FeatureDrift:
        """One feature's result by name; KeyError names the features there are."""
        for item in self.features:
            if item.feature == name:
                return item
        raise KeyError(f"no drift result for feature {name!r}; features: {', '.join(f.feature for f in self.features)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: what the monitoring report and alert rules read."""
        return {
            "drifted": self.drifted,
            "drifted_features": list(self.drifted_features),
            "prediction_drifted": bool(self.prediction and self.prediction.drifted),
            "tested": sum(1 for f in self.features if f.test is not None),
            "skipped": [f.feature for f in self.features if f.test is None],
            "correction": self.correction,
            "features": [f.to_dict() for f in self.features],
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "drift_share": self.drift_share,
            "drift_share_threshold": self.drift_share_threshold,
            "dataset_drifted": self.dataset_drifted,
            "multivariate": self.multivariate.to_dict() if self.multivariate is not None else None,
        }
