"""The confidence calibrator a model version carries: fitted at registration, read by the label-free estimate.

It lives beside the version (like the reference profile) because it is stored with it; fitting it and
using it are monitoring's maths (``monitoring.calibration``).
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
class ConfidenceCalibrator:
    """Maps a top-label confidence bin to the accuracy seen there on labelled reference data.

    Plain lists in ``to_dict`` so it is stored as JSON with the model version; ``counts`` is the reference
    evidence behind each bin and ``data`` says which rows it came from (see ``CALIBRATION_DATA``).
    """

    accuracy: tuple[float, ...]
    counts: tuple[int, ...]
    unknown_labels: int = 0
    data: str = "training"

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
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfidenceCalibrator:
        if data.get("kind", "histogram_binning") != "histogram_binning":
            raise InvalidArgumentError(
                f"unknown confidence calibrator kind {data.get('kind')!r}; expected 'histogram_binning'"
            )
        return cls(
            tuple(float(a) for a in data["accuracy"]),
            tuple(int(c) for c in data["counts"]),
            int(data.get("unknown_labels", 0)),
            str(data.get("data", "training")),
        )
