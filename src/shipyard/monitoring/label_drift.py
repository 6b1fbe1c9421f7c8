"""Label drift: the labels arriving as feedback against the training target, and the shift of class priors.

Features can stay put while the outcome moves (more fraud this month at the same inputs), and a model whose
inputs drifted may still face the same outcomes. The reference profile counts the training target (by class
for a classifier, in fine quantile bins for a regressor); the labelled feedback of the report's range is
counted the same way and tested with the features' machinery and thresholds: chi-square and Jensen-Shannon
for classes, KS, PSI and Wasserstein for values. For classifiers the prior-probability shift is reported
class by class: the training share, the labelled share, and the share the model predicted over all served
rows (the label-free view of the same shift).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.core.jsonsafe import finite_or_none
from shipyard.core.profile import (
    OTHER,
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    ReferenceProfile,
    categorical_profile,
)
from shipyard.core.signature import OutputKind, Signature
from shipyard.monitoring.drift import feature_drift
from shipyard.monitoring.drift_records import FeatureDrift
from shipyard.monitoring.json_reading import Fields, feature_drift_from_dict
from shipyard.monitoring.thresholds import DriftThresholds, FeatureThresholds

LABEL = "label"
UNSEEN_LABELS = 20
"""Labels the training target never had keep their names, up to this many (the rest count as ``__other__``)."""


@dataclass(frozen=True, slots=True)
class ClassShare:
    """One class's share of the training target, of the labelled feedback, and of the served predictions."""

    label: str
    reference: float | None
    labelled: float | None
    predicted: float | None

    @property
    def shift(self) -> float | None:
        """Labelled share minus training share: the prior-probability shift of this class."""
        if self.reference is None or self.labelled is None:
            return None
        return self.labelled - self.reference

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "reference": finite_or_none(self.reference),
            "labelled": finite_or_none(self.labelled),
            "predicted": finite_or_none(self.predicted),
            "shift": finite_or_none(self.shift),
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> ClassShare:
        return cls(
            fields.text("label"),
            fields.optional_number("reference"),
            fields.optional_number("labelled"),
            fields.optional_number("predicted"),
        )


@dataclass(frozen=True, slots=True)
class LabelDrift:
    """The labels' drift against the training target over the report's range.

    ``drift`` is the test (None when it was not run, and ``note`` says why: no feedback, a single class, no
    training target); ``priors`` the class shares of a classifier, also when the test was not run.
    """

    kind: OutputKind
    labelled: int
    drifted: bool
    drift: FeatureDrift | None = None
    priors: tuple[ClassShare, ...] = ()
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "labelled": self.labelled,
            "drifted": self.drifted,
            "test": self.drift.test if self.drift is not None else None,
            "drift": self.drift.to_dict() if self.drift is not None else None,
            "priors": [share.to_dict() for share in self.priors],
            "note": self.note,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> LabelDrift:
        drift = fields.optional_section("drift")
        return cls(
            kind=OutputKind(fields.choice("kind", tuple(k.value for k in OutputKind))),
            labelled=fields.integer("labelled"),
            drifted=fields.flag("drifted"),
            drift=feature_drift_from_dict(drift) if drift is not None else None,
            priors=tuple(ClassShare.from_fields(item) for item in fields.objects("priors")),
            note=fields.optional_text("note"),
        )


def label_drift(
    reference: FeatureProfile | None,
    labels: Sequence[Any],
    *,
    kind: OutputKind,
    predicted: FeatureProfile | None = None,
    thresholds: FeatureThresholds | None = None,
) -> LabelDrift | None:
    """Test the labels (None entries are feedback without a label) against the training target's profile.

    None for a model whose output is neither classes nor values (nothing to compare); otherwise a record
    that says why a figure is missing rather than raising.
    """
    chosen = thresholds or FeatureThresholds()
    given = [label for label in labels if label is not None]
    if kind is OutputKind.CLASSIFICATION:
        return _class_drift(reference, given, predicted, chosen)
    if kind is OutputKind.REGRESSION:
        return _value_drift(reference, given, chosen)
    return None


def _class_drift(
    reference: FeatureProfile | None, labels: list[Any], predicted: FeatureProfile | None, thresholds: FeatureThresholds
) -> LabelDrift:
    def result(note: str, live: CategoricalProfile | None = None) -> LabelDrift:
        priors = _priors(reference, live, predicted)
        return LabelDrift(OutputKind.CLASSIFICATION, len(labels), False, priors=priors, note=note)

    if reference is None:
        return result("registered without a training target: no class shares to compare the labels with")
    if isinstance(reference, NumericProfile):
        return result(
            "the reference profile counts this classifier's target as numbers (registered before label drift): "
            "register the version again with training_target to compare class shares"
        )
    known = tuple(level for level in reference.counts if level != OTHER)
    live = categorical_profile(
        np.asarray([_class_text(label, known) for label in labels], dtype=object),
        known,
        unseen_levels=UNSEEN_LABELS,
    )
    if not labels:
        return result("no labelled feedback in this range: label drift needs labels")
    classes = [level for level, n in live.counts.items() if n]
    if len(classes) < 2:
        return result(
            f"every label in this range is {classes[0]!r} ({len(labels)} labels): label drift is not tested on a "
            "single class, which more often means only one outcome is being labelled than a moved prior",
            live,
        )
    drift = feature_drift(LABEL, reference, live, thresholds=thresholds)
    priors = _priors(reference, live, predicted)
    return LabelDrift(OutputKind.CLASSIFICATION, len(labels), drift.drifted, drift, priors, drift.note)


def _value_drift(reference: FeatureProfile | None, labels: list[Any], thresholds: FeatureThresholds) -> LabelDrift:
    values = np.asarray([_number(label) for label in labels], dtype=np.float64)
    values = values[np.isfinite(values)]

    def result(note: str) -> LabelDrift:
        return LabelDrift(OutputKind.REGRESSION, int(values.size), False, note=note)

    if reference is None:
        return result("registered without a training target: no target distribution to compare the labels with")
    if not isinstance(reference, NumericProfile):
        return result("the training target was counted as categories, not numbers: label drift cannot bin the labels")
    if values.size == 0:
        skipped = len(labels)
        return result(
            "no labelled feedback in this range: label drift needs labels"
            if not skipped
            else f"none of the {skipped} labels is a finite number: label drift needs numeric labels"
        )
    live = _binned(values, reference)
    drift = feature_drift(LABEL, reference, live, thresholds=thresholds)
    return LabelDrift(OutputKind.REGRESSION, int(values.size), drift.drifted, drift, note=drift.note)


def _binned(values: np.ndarray, reference: NumericProfile) -> NumericProfile:
    from shipyard.core.profile import numeric_profile

    return numeric_profile(values, reference.edges)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return math.nan


def _class_text(label: Any, known: tuple[str, ...]) -> str:
    """A label as the training target's class names spell it: a JSON 1.0 for class "1" counts as "1"."""
    text = str(label)
    if text not in known and isinstance(label, float) and label.is_integer() and str(int(label)) in known:
        return str(int(label))
    return text


def _shares(profile: FeatureProfile | None) -> dict[str, float]:
    if not isinstance(profile, CategoricalProfile) or not profile.count:
        return {}
    total = profile.count
    return {level: n / total for level, n in profile.counts.items() if n}


def _priors(
    reference: FeatureProfile | None, live: CategoricalProfile | None, predicted: FeatureProfile | None
) -> tuple[ClassShare, ...]:
    """Every class any side has, in class order (numbers by value, then names).

    Not in the stored profile's order: PostgreSQL's JSONB keeps an object's keys in its own order, so the
    same report would list the classes differently on SQLite and PostgreSQL.
    """
    sides = [_shares(reference), _shares(live), _shares(predicted)]
    present = [bool(isinstance(p, CategoricalProfile) and p.count) for p in (reference, live, predicted)]
    order = sorted({level for shares in sides for level in shares}, key=_class_order)

    def share(i: int, level: str) -> float | None:
        return sides[i].get(level, 0.0) if present[i] else None

    return tuple(ClassShare(level, share(0, level), share(1, level), share(2, level)) for level in order)


def _class_order(level: str) -> tuple[int, float, str]:
    try:
        return (0, float(level), level)
    except ValueError:
        return (1, 0.0, level)


def version_label_drift(
    reference: ReferenceProfile | None,
    labels: Sequence[Any],
    signature: Signature,
    predicted: FeatureProfile | None,
    thresholds: DriftThresholds,
) -> LabelDrift | None:
    """Label drift of one version over the report's range, at the thresholds the features use by default."""
    kind = signature.output.kind
    if reference is None and kind in (OutputKind.CLASSIFICATION, OutputKind.REGRESSION):
        given = sum(1 for label in labels if label is not None)
        note = "registered without training data: no target distribution to compare the labels with"
        return LabelDrift(kind, given, False, note=note)
    target = reference.target if reference is not None else None
    return label_drift(target, labels, kind=kind, predicted=predicted, thresholds=thresholds.for_feature(LABEL))
