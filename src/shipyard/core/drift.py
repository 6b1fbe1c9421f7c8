"""Drift of a live window against a version's reference profile, per feature and for the prediction.

Both sides are profiles counted in the reference's bins (``shipyard.core.profile``), so every test runs
on counts, never on raw rows: judging a window of a million rows costs what a window of a hundred does.

Every measure that applies is computed and reported:

- numbers: PSI over about ten groups of fine bins holding equal reference mass; Kolmogorov-Smirnov on
  the fine bins' CDFs (the statistic is at most one fine bin's mass below SciPy's on the raw rows, and the
  p-value is SciPy's asymptotic one, or its limit for large samples); Wasserstein-1 from the binned CDFs
  and per-bin sums, and the same divided by the reference's standard deviation, so that one threshold fits
  every scale.
- categories: chi-square on the 2 x k table and Jensen-Shannon distance (base 2), after rare levels are
  folded into one ``__rare__`` group, so a column of thousands of ids does not read as drift (a level
  flooding live traffic is never folded away).

One of them decides, by the size of the live window (the "default test"). Below ``large_window_rows``
live values (1,000 by default) a p-value decides, KS for numbers and chi-square for categories, at
``alpha``: effect sizes on small samples mostly measure sampling noise (PSI's floor is about
(bins - 1)(1/n_ref + 1/n_live)). From 1,000 values on an effect size decides, PSI > 0.2 for numbers (or
normalised Wasserstein > 0.1) and JS > 0.1 for categories: with tens of thousands of rows every p-value is
tiny, and differences too small to matter would raise alarms. Evidently follows the same rule of thumb.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import ArrayLike

from shipyard.core.jsonsafe import finite_or_none
from shipyard.core.profile import OTHER, CategoricalProfile, FeatureProfile, NumericProfile, ReferenceProfile
from shipyard.core.stats import psi as psi_of_counts
from shipyard.errors import InvalidArgumentError

StatTest = Literal["psi", "ks", "wasserstein", "chi2", "js"]
Kind = Literal["numeric", "categorical"]
RARE = "__rare__"
PREDICTION = "prediction"
NUMERIC_EFFECTS = ("psi", "wasserstein")
CORRECTIONS = ("none", "bonferroni")
# Cochran's rule: the chi-square approximation wants an expected count of at least 5 in every cell.
MIN_EXPECTED = 5
# Up to this effective sample size the KS p-value is SciPy's exact-n formula; above it, the limit (fast).
KS_EXACT_N = 1000
# A rare level is kept apart when live traffic has this many times the share it could have had in the
# reference: by chance that takes odds below one in a million at the sizes where it matters.
SURGE_RATIO = 10


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


# --- measures on counts -----------------------------------------------------------------------------------


def _counts(values: ArrayLike) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(array).all() or (array < 0).any():
        raise InvalidArgumentError("counts must be finite and >= 0")
    return array


def ks_test(reference_counts: ArrayLike, live_counts: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and asymptotic p-value from counts over the same ordered bins.

    The CDFs are compared at the bin edges only, so the statistic can fall short of the raw-data one by up
    to one bin's mass, and the p-value errs on the side of no drift. (1.0 when either side is empty.)
    """
    r, lv = _counts(reference_counts), _counts(live_counts)
    if r.shape != lv.shape:
        raise InvalidArgumentError(f"ks_test needs aligned bins; got {r.size} reference and {lv.size} live counts")
    n_r, n_l = r.sum(), lv.sum()
    if n_r <= 0 or n_l <= 0:
        return 0.0, 1.0
    statistic = float(np.max(np.abs(np.cumsum(r) / n_r - np.cumsum(lv) / n_l)))
    return statistic, _ks_p_value(statistic, n_r * n_l / (n_r + n_l))


def _ks_p_value(statistic: float, effective_n: float) -> float:
    """P(D >= statistic) at the effective size n*m/(n+m), as ``scipy.stats.ks_2samp(method="asymp")``.

    Up to KS_EXACT_N that is SciPy's own formula (Kolmogorov's distribution for that n). Above it, SciPy's
    ``kstwo.sf`` can take most of a second per call (n = 500,000, D = 0.01), so the limiting distribution
    is used instead: its p-value is slightly larger (under 3% near 0.05 at n = 1,000, less above), which
    errs on the side of no drift.
    """
    if effective_n <= KS_EXACT_N:
        from scipy import stats as scipy_stats  # imported when first needed: it costs the CLI half a second

        p_value = float(scipy_stats.kstwo.sf(statistic, max(1, round(effective_n))))
    else:
        from scipy.special import kolmogorov

        p_value = float(kolmogorov(math.sqrt(effective_n) * statistic))
    return min(1.0, max(0.0, p_value))


def chi_square(reference_counts: ArrayLike, live_counts: ArrayLike) -> tuple[float, float]:
    """Pearson's chi-square test of homogeneity on the 2 x k table (levels counted by neither side dropped).

    Equal to ``scipy.stats.chi2_contingency(table, correction=False)``; (0.0, 1.0) when fewer than two
    levels or either side is empty, since there is then nothing to compare.
    """
    from scipy.special import chdtrc

    r, lv = _counts(reference_counts), _counts(live_counts)
    if r.shape != lv.shape:
        raise InvalidArgumentError(f"chi_square needs aligned levels; got {r.size} reference and {lv.size} live")
    table = np.vstack([r, lv])
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    if table.shape[1] < 2 or (rows <= 0).any():
        return 0.0, 1.0
    expected = np.outer(rows, table.sum(axis=0)) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return statistic, float(chdtrc(table.shape[1] - 1, statistic))  # chi2.sf without its per-call overhead


def js_distance(reference_counts: ArrayLike, live_counts: ArrayLike) -> float:
    """Jensen-Shannon distance (base 2, so in [0, 1]) between the two count vectors' proportions."""
    r, lv = _counts(reference_counts), _counts(live_counts)
    if r.shape != lv.shape:
        raise InvalidArgumentError(f"js_distance needs aligned levels; got {r.size} reference and {lv.size} live")
    if r.sum() <= 0 or lv.sum() <= 0:
        return 0.0
    p, q = r / r.sum(), lv / lv.sum()
    m = (p + q) / 2

    def relative_entropy(a: np.ndarray) -> float:
        used = a > 0  # 0 log 0 = 0; where a > 0, m > 0 too
        return float((a[used] * np.log(a[used] / m[used])).sum())

    divergence = (relative_entropy(p) + relative_entropy(q)) / (2 * math.log(2))
    return math.sqrt(max(0.0, divergence))


def _bin_integrals(profile: NumericProfile, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The integral of the profile's CDF over each bin [left, right]: exact with per-bin sums.

    Integrating by parts, the integral of F over (a, b] is b F(b) - a F(a) - (sum of the values in the bin)
    / n. Without sums (profiles stored before them) the values are taken as spread evenly in the bin.
    """
    counts = np.asarray(profile.counts, dtype=np.float64)
    n = counts.sum()
    cdf_right = np.cumsum(counts) / n
    cdf_left = cdf_right - counts / n
    sums = np.asarray(profile.sums, dtype=np.float64) if profile.sums is not None else counts * (left + right) / 2
    return right * cdf_right - left * cdf_left - sums / n


def wasserstein_binned(reference: NumericProfile, live: NumericProfile) -> float | None:
    """Wasserstein-1 distance between two profiles over the same edges, in the feature's units.

    It is the area between the two CDFs. Bin by bin that area is exact from the per-bin sums, unless the
    CDFs cross inside a bin; then the bin contributes the net area, a little less. None when a side is empty.
    """
    if reference.count == 0 or live.count == 0 or reference.min is None or live.min is None:
        return None
    if reference.edges != live.edges:
        raise InvalidArgumentError("wasserstein_binned needs two profiles binned with the same edges")
    low = min(reference.min, live.min)
    high = max(cast(float, reference.max), cast(float, live.max))
    cuts = np.clip(np.asarray(reference.edges, dtype=np.float64), low, high)
    left, right = np.concatenate(([low], cuts)), np.concatenate((cuts, [high]))
    difference = _bin_integrals(reference, left, right) - _bin_integrals(live, left, right)
    return float(np.abs(difference).sum())


# --- grouping ---------------------------------------------------------------------------------------------


def _mass_groups(reference_counts: np.ndarray, groups: int) -> np.ndarray:
    """Group index of each fine bin: runs of adjacent bins holding about 1/groups of the reference each.

    A run ends where the reference's cumulative share passes the next multiple of 1/groups, so 100
    quantile bins become the deciles, and a 10-bin profile stored before fine bins keeps its bins.
    """
    cumulative = np.cumsum(reference_counts) / reference_counts.sum()
    ticks = np.minimum(np.floor(cumulative * groups + 1e-9), groups)
    _, index = np.unique(np.concatenate(([0.0], ticks[:-1])), return_inverse=True)
    return np.asarray(index)


def _interval_labels(cuts: list[float]) -> tuple[str, ...]:
    bounds = [-math.inf, *cuts, math.inf]
    labels = []
    for low, high in itertools.pairwise(bounds):
        closing = ")" if high == math.inf else "]"
        labels.append(f"({low:.4g}, {high:.4g}{closing}")
    return tuple(labels)


def _folded_levels(
    reference: CategoricalProfile, live: CategoricalProfile, thresholds: FeatureThresholds
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Level labels and aligned counts, with rare levels folded into one ``__rare__`` group.

    A level is rare when its share of both sides pooled is below ``rare_share``, or below the share at
    which the smaller side would expect fewer than 5 rows; beyond ``max_levels`` levels the smallest are
    folded too, and so is ``__other__`` whenever anything is. Folding keeps chi-square's approximation
    valid and stops JS from adding up the sampling noise of thousands of tiny levels. It goes by the pooled
    share (the table's column totals) because choosing levels by either side's own share picks the ones
    that happen to be high there, which reads as drift (a 20%+ false-alarm rate in simulation).

    A level flooding live traffic is never rare, though: at least 5 live rows and ``SURGE_RATIO`` times
    the share it could have had in the reference. For a level the reference never named, that is the
    smallest named share when the reference cut its levels (the value may hide in ``__other__``), else 0.
    """
    keys = list(reference.counts)
    keys += sorted((k for k in live.counts if k not in reference.counts), key=lambda k: -live.counts[k])
    r = np.array([reference.counts.get(k, 0) for k in keys], dtype=np.float64)
    lv = np.array([live.counts.get(k, 0) for k in keys], dtype=np.float64)
    n_r, n_l = r.sum(), lv.sum()
    pooled = (r + lv) / (n_r + n_l)
    keep = pooled >= max(thresholds.rare_share, MIN_EXPECTED / min(n_r, n_l))
    named = r[[k != OTHER for k in keys]]
    hidden = float(named[named > 0].min()) / n_r if OTHER in reference.counts and (named > 0).any() else 0.0
    possible = np.where((r == 0) & np.array([k != OTHER for k in keys]), hidden, r / n_r)
    surge = (lv >= MIN_EXPECTED) & (lv / n_l >= np.maximum(thresholds.rare_share, SURGE_RATIO * possible))
    keep |= surge
    if keep.sum() > thresholds.max_levels:
        ranked = np.lexsort((-pooled, ~surge))  # surges first, then by pooled share
        keep[ranked[thresholds.max_levels :]] = False
    if not keep.all() and OTHER in keys and not surge[keys.index(OTHER)]:
        # The reference kept its most frequent levels: those near the cut were picked for counts that
        # happened to be high, so on their own they would read as falling in every live window. Together
        # with __other__ (what the cut left out) their total is unbiased.
        keep[keys.index(OTHER)] = False
    if (~keep).sum() <= 1:  # folding a single level into a group of its own changes nothing
        keep[:] = True
    order = [i for i in np.lexsort((-lv, -r)) if keep[i]]
    labels = [keys[i] for i in order]
    ref_counts, live_counts = [r[i] for i in order], [lv[i] for i in order]
    if not keep.all():
        labels.append(RARE)
        ref_counts.append(float(r[~keep].sum()))
        live_counts.append(float(lv[~keep].sum()))
    return tuple(labels), np.array(ref_counts), np.array(live_counts)


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
class WindowDrift:
    """A window's verdict: drifted when any feature or the prediction is, features sorted worst first."""

    drifted: bool
    drifted_features: tuple[str, ...]
    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None
    correction: str = "none"

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
        }


# --- one feature ------------------------------------------------------------------------------------------


def _kind(profile: FeatureProfile) -> Kind:
    return "numeric" if isinstance(profile, NumericProfile) else "categorical"


def _missing_share(profile: FeatureProfile | None) -> float | None:
    if profile is None:
        return None
    total = profile.count + profile.missing
    return profile.missing / total if total else None


def _incompatible(reference: FeatureProfile | None, live: FeatureProfile | None) -> str | None:
    """Why the two profiles cannot be compared at all, or None when they can."""
    if reference is None:
        return "no reference profile for this feature"
    if live is None:
        return "not in the live window"
    if _kind(reference) != _kind(live):
        return f"the reference profile is {_kind(reference)} but the live one is {_kind(live)}"
    if isinstance(reference, NumericProfile) and isinstance(live, NumericProfile) and reference.edges != live.edges:
        return (
            f"live values were binned at {len(live.edges)} cuts, the reference at {len(reference.edges)}: "
            "profile live windows with the reference's edges"
        )
    if reference.count == 0:
        return f"the reference has no values ({reference.missing} missing)"
    if live.count == 0:
        return f"all {live.missing} live values are missing" if live.missing else "no live values in this window"
    return None


def _too_few(live: FeatureProfile, thresholds: FeatureThresholds) -> str | None:
    if live.count < thresholds.min_rows:
        return f"not enough data: {live.count} live values, tests need at least {thresholds.min_rows}"
    return None


def _numeric_drift(
    name: str, reference: NumericProfile, live: NumericProfile, thresholds: FeatureThresholds, alpha: float
) -> FeatureDrift:
    r = np.asarray(reference.counts, dtype=np.float64)
    lv = np.asarray(live.counts, dtype=np.float64)
    groups = _mass_groups(r, thresholds.psi_groups)
    r_grouped, l_grouped = np.bincount(groups, weights=r), np.bincount(groups, weights=lv)
    psi = psi_of_counts(r_grouped, l_grouped)
    ks, ks_p = ks_test(r, lv)
    distance = wasserstein_binned(reference, live)
    std = math.sqrt(reference.variance)
    normalised = distance / std if distance is not None and std > 0 else None
    stats = [
        StatResult("psi", psi, thresholds.psi, None, psi > thresholds.psi),
        StatResult("ks", ks, alpha, ks_p, ks_p < alpha),
    ]
    if normalised is not None:
        stats.append(
            StatResult("wasserstein", normalised, thresholds.wasserstein, None, normalised > thresholds.wasserstein)
        )
    note = _too_few(live, thresholds)
    test: StatTest | None = None
    if note is None:
        test = "ks" if live.count < thresholds.large_window_rows else cast(StatTest, thresholds.numeric_effect)
        if test == "wasserstein" and normalised is None:
            test, note = "psi", "the reference is constant, so Wasserstein cannot be normalised: PSI decides"
    # Group boundaries: the fine edge after the last bin of every group but the last.
    last_bins = np.flatnonzero(np.diff(groups)) if groups.size > 1 else np.array([], dtype=np.int64)
    cuts = [float(reference.edges[i]) for i in last_bins]
    decided = next((s for s in stats if s.test == test), None)
    return FeatureDrift(
        feature=name,
        kind="numeric",
        test=test,
        drifted=bool(decided and decided.drifted),
        rows=live.count,
        stats=tuple(stats),
        scores={
            "psi": psi,
            "ks": ks,
            "ks_p_value": ks_p,
            "wasserstein": normalised,
            "wasserstein_distance": distance,
        },
        bins=_interval_labels(cuts),
        edges=tuple(cuts),
        reference_proportions=tuple(float(v) for v in r_grouped / r_grouped.sum()),
        live_proportions=tuple(float(v) for v in l_grouped / l_grouped.sum()),
        reference_missing_share=_missing_share(reference),
        live_missing_share=_missing_share(live),
        note=note,
    )


def _categorical_drift(
    name: str, reference: CategoricalProfile, live: CategoricalProfile, thresholds: FeatureThresholds, alpha: float
) -> FeatureDrift:
    labels, r, lv = _folded_levels(reference, live, thresholds)
    chi2, chi2_p = chi_square(r, lv)
    js = js_distance(r, lv)
    stats = (
        StatResult("chi2", chi2, alpha, chi2_p, chi2_p < alpha),
        StatResult("js", js, thresholds.js, None, js > thresholds.js),
    )
    note = _too_few(live, thresholds)
    test: StatTest | None = None
    if note is None:
        test = "chi2" if live.count < thresholds.large_window_rows else "js"
    if RARE in labels and note is None:
        kept = set(labels)
        folded = [level for level in reference.counts.keys() | live.counts.keys() if level not in kept]
        unseen = f" and {OTHER}" if OTHER in folded else ""
        note = f"{len(folded) - bool(unseen)} rare levels{unseen} grouped as {RARE}"
    decided = next((s for s in stats if s.test == test), None)
    return FeatureDrift(
        feature=name,
        kind="categorical",
        test=test,
        drifted=bool(decided and decided.drifted),
        rows=live.count,
        stats=stats,
        scores={"chi2": chi2, "chi2_p_value": chi2_p, "js": js},
        bins=labels,
        reference_proportions=tuple(float(v) for v in r / r.sum()),
        live_proportions=tuple(float(v) for v in lv / lv.sum()),
        reference_missing_share=_missing_share(reference),
        live_missing_share=_missing_share(live),
        note=note,
    )


def _feature_drift(
    name: str,
    reference: FeatureProfile | None,
    live: FeatureProfile | None,
    thresholds: FeatureThresholds,
    alpha: float,
) -> FeatureDrift:
    reason = _incompatible(reference, live)
    if reason is not None:
        known = reference if reference is not None else live
        return FeatureDrift(
            feature=name,
            kind=_kind(known) if known is not None else "numeric",
            test=None,
            drifted=False,
            rows=live.count if live is not None else 0,
            reference_missing_share=_missing_share(reference),
            live_missing_share=_missing_share(live),
            note=reason,
        )
    if isinstance(reference, NumericProfile) and isinstance(live, NumericProfile):
        return _numeric_drift(name, reference, live, thresholds, alpha)
    return _categorical_drift(
        name, cast(CategoricalProfile, reference), cast(CategoricalProfile, live), thresholds, alpha
    )


def feature_drift(
    name: str,
    reference: FeatureProfile | None,
    live: FeatureProfile | None,
    *,
    thresholds: FeatureThresholds | None = None,
) -> FeatureDrift:
    """Drift of one feature's live profile against its reference profile; never raises on odd data."""
    chosen = thresholds or FeatureThresholds()
    return _feature_drift(name, reference, live, chosen, chosen.alpha)


def _decidable(reference: FeatureProfile | None, live: FeatureProfile | None, thresholds: FeatureThresholds) -> bool:
    return _incompatible(reference, live) is None and live is not None and live.count >= thresholds.min_rows


def window_drift(
    reference: ReferenceProfile,
    live_features: Mapping[str, FeatureProfile],
    live_prediction: FeatureProfile | None = None,
    *,
    thresholds: DriftThresholds | None = None,
) -> WindowDrift:
    """Judge one window of live traffic against the version's reference profile, feature by feature.

    Features in only one of the two profiles are reported with a note, never raised on; the prediction
    is judged when the window has one. Results come drifted first, then by how far past the threshold.
    """
    chosen = thresholds or DriftThresholds()
    names = list(reference.features) + [n for n in live_features if n not in reference.features]
    pairs = [(n, reference.features.get(n), live_features.get(n), chosen.for_feature(n)) for n in names]
    if live_prediction is not None:
        pairs.append((PREDICTION, reference.prediction, live_prediction, chosen.for_prediction()))
    tested = sum(_decidable(r, lv, t) for _, r, lv, t in pairs)
    divisor = max(1, tested) if chosen.correction == "bonferroni" else 1
    results = [_feature_drift(n, r, lv, t, t.alpha / divisor) for n, r, lv, t in pairs]
    prediction = results.pop() if live_prediction is not None else None
    results.sort(key=lambda f: (not f.drifted, f.test is None, -f.severity))
    drifted_features = tuple(f.feature for f in results if f.drifted)
    return WindowDrift(
        drifted=bool(drifted_features) or bool(prediction and prediction.drifted),
        drifted_features=drifted_features,
        features=tuple(results),
        prediction=prediction,
        correction=chosen.correction,
    )
