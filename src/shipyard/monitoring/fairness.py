"""Group fairness of a classifier's decisions: demographic parity and equalized odds, as fairlearn defines them.

Demographic parity needs only predictions, so it is watched live before any label arrives; equalized odds
needs labels. A group's true (false) positive rate is undefined when it has no positive (negative) labels.
fairlearn counts such a rate as 0 (scikit-learn's normalised confusion matrix fills 0/0 with 0), which can
make a small group with no positives in a window look maximally unfair; ``undefined_rates="zero"`` (the
default) matches fairlearn's numbers, ``"skip"`` leaves such groups out of that difference. Either way the
group's own rate is reported as None and a note names the groups concerned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from shipyard.core.jsonsafe import finite_or_none, json_value
from shipyard.errors import InvalidArgumentError
from shipyard.monitoring.labels import Values
from shipyard.monitoring.labels import as_1d as _as_1d

UndefinedRates = Literal["zero", "skip"]


def _equals(values: np.ndarray, target: Any) -> np.ndarray:
    """Row-wise ``== target`` that never fails on mixed types (1 and "1" are simply different)."""
    if values.size == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(values.astype(object) == target, dtype=bool)


def _missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        # NumPy's stubs type a ufunc over a dtype-less array as Any.
        nan: np.ndarray = np.isnan(values)
        return nan
    if values.dtype.kind == "O":
        return np.fromiter(
            (v is None or (isinstance(v, float) and math.isnan(v)) for v in values.tolist()),
            dtype=bool,
            count=values.size,
        )
    return np.zeros(values.size, dtype=bool)


def _groups(sensitive: np.ndarray) -> tuple[list[Any], np.ndarray]:
    """Distinct group values (sorted where they sort) and each row's group index."""
    try:
        uniques, inverse = np.unique(sensitive, return_inverse=True)
        return uniques.tolist(), inverse.ravel()
    except TypeError:  # mixed types: group by first appearance, then order by text for a stable report
        index: dict[Any, int] = {}
        codes = np.fromiter(
            (index.setdefault(v, len(index)) for v in sensitive.tolist()), dtype=np.intp, count=sensitive.size
        )
        order = sorted(index, key=lambda v: (type(v).__name__, str(v)))
        remap = np.array([order.index(v) for v in index], dtype=np.intp)
        return order, remap[codes]


@dataclass(frozen=True, slots=True)
class GroupRates:
    """One group's figures; the rates are None where undefined (no rows labelled positive, or negative)."""

    group: Any
    count: int
    selection_rate: float | None
    positives: int | None = None
    negatives: int | None = None
    true_positive_rate: float | None = None
    false_positive_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": json_value(self.group),
            "count": self.count,
            "selection_rate": finite_or_none(self.selection_rate),
            "positives": self.positives,
            "negatives": self.negatives,
            "true_positive_rate": finite_or_none(self.true_positive_rate),
            "false_positive_rate": finite_or_none(self.false_positive_rate),
        }


@dataclass(frozen=True, slots=True)
class FairnessMetrics:
    """Between-group differences (max minus min over groups) and the per-group figures behind them.

    ``equalized_odds_difference`` is the larger of the true and false positive rate differences (fairlearn's
    ``agg="worst_case"``); the label-based figures are None when no labels were given.
    """

    n: int
    positive: Any
    demographic_parity_difference: float | None
    equalized_odds_difference: float | None
    true_positive_rate_difference: float | None
    false_positive_rate_difference: float | None
    groups: tuple[GroupRates, ...]
    undefined_rates: str
    labelled: int = 0
    notes: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "labelled": self.labelled,
            "positive": json_value(self.positive),
            "demographic_parity_difference": finite_or_none(self.demographic_parity_difference),
            "equalized_odds_difference": finite_or_none(self.equalized_odds_difference),
            "true_positive_rate_difference": finite_or_none(self.true_positive_rate_difference),
            "false_positive_rate_difference": finite_or_none(self.false_positive_rate_difference),
            "undefined_rates": self.undefined_rates,
            "groups": [g.to_dict() for g in self.groups],
            "notes": dict(self.notes),
        }


def _spread(
    rates: list[float | None], groups: list[Any], policy: UndefinedRates, name: str, notes: dict[str, str]
) -> float | None:
    """Max minus min over groups, with undefined rates handled as ``policy`` says."""
    undefined = [json_value(g) for g, r in zip(groups, rates, strict=True) if r is None]
    if undefined:
        treatment = "counted as 0, as fairlearn does" if policy == "zero" else "left out of the difference"
        notes[name] = f"undefined for groups {undefined}; {treatment}"
    values = [0.0 if r is None else r for r in rates] if policy == "zero" else [r for r in rates if r is not None]
    return max(values) - min(values) if values else None


def fairness_metrics(
    labels: Values | None,
    predictions: Values,
    sensitive: Values,
    *,
    positive: Any,
    undefined_rates: UndefinedRates = "zero",
) -> FairnessMetrics:
    """Demographic parity and equalized odds differences across the groups in ``sensitive``.

    ``positive`` is the favourable decision (labels and predictions are compared to it one-vs-rest, so
    multiclass outputs work too). With ``labels=None`` only demographic parity is computed; rows whose label
    is missing count for demographic parity but not for equalized odds.
    """
    if undefined_rates not in ("zero", "skip"):
        raise InvalidArgumentError(f"undefined_rates must be 'zero' (as fairlearn) or 'skip', got {undefined_rates!r}")
    y_pred, groups_of = _as_1d(predictions, "predictions"), _as_1d(sensitive, "sensitive")
    if groups_of.size != y_pred.size:
        raise InvalidArgumentError(
            f"sensitive and predictions must be the same length; got {groups_of.size} and {y_pred.size}"
        )
    y = None if labels is None else _as_1d(labels, "labels")
    if y is not None and y.size != y_pred.size:
        raise InvalidArgumentError(f"labels and predictions must be the same length; got {y.size} and {y_pred.size}")

    notes: dict[str, str] = {}
    selected = _equals(y_pred, positive)
    is_positive = _equals(y, positive) if y is not None else None
    labelled = ~_missing(y) if y is not None else np.zeros(y_pred.size, dtype=bool)
    if y_pred.size and not selected.any() and (is_positive is None or not is_positive.any()):
        notes["positive"] = f"positive={positive!r} appears in no prediction or label; check its type and spelling"
    if y is None:
        notes["labels"] = "no labels: only demographic parity is computed"

    names, codes = _groups(groups_of)
    rates: list[GroupRates] = []
    for g, name in enumerate(names):
        rows = codes == g
        count = int(rows.sum())
        selection = float(selected[rows].mean())
        if is_positive is None:
            rates.append(GroupRates(name, count, selection))
            continue
        with_label = rows & labelled
        pos, neg = with_label & is_positive, with_label & ~is_positive
        n_pos, n_neg = int(pos.sum()), int(neg.sum())
        tpr = float(selected[pos].mean()) if n_pos else None
        fpr = float(selected[neg].mean()) if n_neg else None
        rates.append(GroupRates(name, count, selection, n_pos, n_neg, tpr, fpr))

    dpd = _spread([r.selection_rate for r in rates], names, undefined_rates, "selection_rate", notes)
    tpr_diff = fpr_diff = eod = None
    if is_positive is not None:
        tpr_diff = _spread([r.true_positive_rate for r in rates], names, undefined_rates, "true_positive_rate", notes)
        fpr_diff = _spread([r.false_positive_rate for r in rates], names, undefined_rates, "false_positive_rate", notes)
        defined = [d for d in (tpr_diff, fpr_diff) if d is not None]
        eod = max(defined) if defined else None
    if not names:
        notes["groups"] = "no rows: every difference is undefined"
    return FairnessMetrics(
        n=int(y_pred.size),
        positive=positive,
        demographic_parity_difference=dpd,
        equalized_odds_difference=eod,
        true_positive_rate_difference=tpr_diff,
        false_positive_rate_difference=fpr_diff,
        groups=tuple(rates),
        undefined_rates=undefined_rates,
        labelled=int(labelled.sum()),
        notes=notes,
    )
