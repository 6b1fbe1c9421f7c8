"""The confidence calibrator a model version carries: fitted at registration, read by the label-free estimate.

It lives beside the version (like the reference profile) because it is stored with it; fitting it and
using it are monitoring's maths (``monitoring.calibration`` for the top-label accuracy, ``monitoring.cbpe``
for the per-class calibration behind precision, recall, F1 and ROC AUC).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from shipyard.core.histograms import bin_index
from shipyard.errors import InvalidArgumentError

CALIBRATION_DATA = ("training", "holdout")
"""Where a calibrator's labelled rows came from: the rows the model was fitted on, or rows it never saw.
Training rows flatter a model that overfits (a forest is nearly always right on its own training rows), so
the card and the report say which it was."""


@dataclass(frozen=True, slots=True)
class ClassCalibrator:
    """One class's probability mapped to how often that class is the label (one-vs-rest isotonic regression).

    ``thresholds``/``values`` are the fitted step points, read by linear interpolation and clipped outside
    them (scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``, which NannyML's CBPE uses). Empty
    means identity: recalibrating did not lower the cross-validated calibration error on the reference rows,
    so the model's own probability is kept (NannyML's ``needs_calibration`` rule).
    """

    thresholds: tuple[float, ...] = ()
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if len(self.thresholds) != len(self.values):
            raise InvalidArgumentError(
                f"a class calibrator needs one value per threshold; got {len(self.thresholds)} thresholds and "
                f"{len(self.values)} values"
            )
        points = self.thresholds + self.values
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in points):
            raise InvalidArgumentError("class calibrator thresholds and values must be fractions in [0, 1]")
        if any(b < a for a, b in zip(self.thresholds, self.thresholds[1:], strict=False)):
            raise InvalidArgumentError("class calibrator thresholds must be non-decreasing")

    @property
    def identity(self) -> bool:
        return not self.thresholds

    def apply(self, probability: ArrayLike) -> np.ndarray:
        """Calibrated probability of this class for each row's raw probability of it."""
        values = np.asarray(probability, dtype=np.float64)
        if self.identity:
            return values
        calibrated: np.ndarray = np.interp(values, np.asarray(self.thresholds), np.asarray(self.values))
        return calibrated

    def to_dict(self) -> dict[str, Any]:
        return {"thresholds": list(self.thresholds), "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassCalibrator:
        return cls(tuple(float(t) for t in data.get("thresholds", ())), tuple(float(v) for v in data.get("values", ())))


@dataclass(frozen=True, slots=True)
class ConfidenceCalibrator:
    """Maps a top-label confidence bin to the accuracy seen there on labelled reference data.

    Plain lists in ``to_dict`` so it is stored as JSON with the model version; ``counts`` is the reference
    evidence behind each bin and ``data`` says which rows it came from (see ``CALIBRATION_DATA``).
    ``per_class`` holds one ``ClassCalibrator`` per class, in the model's class order; calibrators stored
    before it existed read back with None, and their versions' CBPE uses the raw probabilities (and says so).
    """

    accuracy: tuple[float, ...]
    counts: tuple[int, ...]
    unknown_labels: int = 0
    data: str = "training"
    per_class: tuple[ClassCalibrator, ...] | None = None

    def __post_init__(self) -> None:
        if not self.accuracy or len(self.accuracy) != len(self.counts):
            raise InvalidArgumentError(
                f"a confidence calibrator needs one accuracy and one count per bin; got {len(self.accuracy)} "
                f"accuracies and {len(self.counts)} counts"
            )
        if not all(math.isfinite(a) and 0.0 <= a <= 1.0 for a in self.accuracy):
            raise InvalidArgumentError(f"calibrated accuracies must be fractions in [0, 1]; got {list(self.accuracy)}")
        if self.data not in CALIBRATION_DATA:
            raise InvalidArgumentError(f"calibration data must be one of {list(CALIBRATION_DATA)}; got {self.data!r}")

    @property
    def bins(self) -> int:
        return len(self.accuracy)

    @property
    def rows(self) -> int:
        """Labelled rows the calibrator was fitted on."""
        return sum(self.counts)

    def apply(self, confidence: ArrayLike) -> np.ndarray:
        """Calibrated expected correctness of each row with this top-label confidence."""
        values = np.asarray(confidence, dtype=np.float64)
        return np.asarray(self.accuracy)[bin_index(values, self.bins)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "histogram_binning",
            "bins": self.bins,
            "accuracy": list(self.accuracy),
            "counts": list(self.counts),
            "unknown_labels": self.unknown_labels,
            "data": self.data,
            **({"per_class": [c.to_dict() for c in self.per_class]} if self.per_class is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfidenceCalibrator:
        if data.get("kind", "histogram_binning") != "histogram_binning":
            raise InvalidArgumentError(
                f"unknown confidence calibrator kind {data.get('kind')!r}; expected 'histogram_binning'"
            )
        per_class = data.get("per_class")
        return cls(
            tuple(float(a) for a in data["accuracy"]),
            tuple(int(c) for c in data["counts"]),
            int(data.get("unknown_labels", 0)),
            str(data.get("data", "training")),
            tuple(ClassCalibrator.from_dict(c) for c in per_class) if per_class is not None else None,
        )
