"""The loss model a regressor's version carries: fitted at registration, read by the label-free error estimate.

Direct loss estimation (NannyML's DLE) predicts each served row's absolute and squared error from its
features and the model's prediction. The two predictors are gradient-boosted regression trees, stored here
as plain JSON node lists (no pickle, nothing that runs code when loaded), so a version's loss model is data
like its reference profile. Fitting the trees and applying them are monitoring's maths (``monitoring.dle``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import InvalidArgumentError

LOSS_MODEL_DATA = ("training", "holdout")
"""Which labelled rows the loss model learnt the errors on: the model's own training rows (whose errors are
smaller than those it will make in service) or holdout rows it never saw, which the card and report name."""

MAX_CATEGORY_CODES = 255
"""A categorical split tests codes below this (the tree learner's own limit on a feature's levels)."""


@dataclass(frozen=True, slots=True)
class LossFeature:
    """One input of the loss model: a numeric feature (``levels`` None) or a categorical one whose value is
    encoded as its index in ``levels``; a level the training rows never had counts as missing."""

    name: str
    levels: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "levels": list(self.levels) if self.levels is not None else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LossFeature:
        levels = data.get("levels")
        return cls(str(data["name"]), tuple(str(v) for v in levels) if levels is not None else None)


@dataclass(frozen=True, slots=True)
class TreeEnsemble:
    """Regression trees summed onto a baseline, as flat node lists (every tree's nodes in one list).

    A node with ``feature`` -1 is a leaf holding ``value``. Otherwise a row goes left when its value is
    missing and ``missing_left`` is set, when its category code is one of ``categories[node]`` (categorical
    splits), or when it is at most ``threshold`` (numeric splits; ``inf`` sends every present value left).
    """

    baseline: float
    roots: tuple[int, ...]
    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    missing_left: tuple[bool, ...]
    value: tuple[float, ...]
    categories: Mapping[int, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.feature)
        lengths = {len(self.threshold), len(self.left), len(self.right), len(self.missing_left), len(self.value)}
        if lengths != {n} or n == 0 or not self.roots:
            raise InvalidArgumentError(f"a loss model's trees need one entry per node in every list; got {n} nodes")
        links = zip(self.feature, self.left, self.right, strict=True)
        dangling = any(f >= 0 and not (0 <= a < n and 0 <= b < n) for f, a, b in links)
        if dangling or any(not 0 <= r < n for r in self.roots):
            raise InvalidArgumentError("a loss model's tree points at a node that does not exist")
        if not math.isfinite(self.baseline) or not all(math.isfinite(v) for v in self.value):
            raise InvalidArgumentError("a loss model's leaf values and baseline must be finite numbers")
        if any(math.isnan(t) or t == -math.inf for t in self.threshold):
            raise InvalidArgumentError("a loss model's split thresholds must be numbers (or inf)")
        for node, codes in self.categories.items():
            if not 0 <= node < n or any(not 0 <= c < MAX_CATEGORY_CODES for c in codes):
                raise InvalidArgumentError(f"a loss model's categorical split at node {node} is out of range")

    @property
    def trees(self) -> int:
        return len(self.roots)

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "roots": list(self.roots),
            "feature": list(self.feature),
            # JSON has no infinity: a split that sends every present value left is written as null
            "threshold": [t if math.isfinite(t) else None for t in self.threshold],
            "left": list(self.left),
            "right": list(self.right),
            "missing_left": [int(m) for m in self.missing_left],
            "value": list(self.value),
            "categories": {str(node): list(codes) for node, codes in self.categories.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TreeEnsemble:
        return cls(
            baseline=float(data["baseline"]),
            roots=tuple(int(r) for r in data["roots"]),
            feature=tuple(int(f) for f in data["feature"]),
            threshold=tuple(math.inf if t is None else float(t) for t in data["threshold"]),
            left=tuple(int(i) for i in data["left"]),
            right=tuple(int(i) for i in data["right"]),
            missing_left=tuple(bool(m) for m in data["missing_left"]),
            value=tuple(float(v) for v in data["value"]),
            categories={int(k): tuple(int(c) for c in v) for k, v in (data.get("categories") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class ErrorSpread:
    """The realised errors on the rows the loss model learnt from: their MAE and mean squared error, and the
    spread of each (population sd) that sizes a window's sampling-error band, as NannyML's DLE does."""

    absolute_mean: float
    absolute_sd: float
    squared_mean: float
    squared_sd: float

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) and v >= 0 for v in self.to_dict().values()):
            raise InvalidArgumentError(f"a loss model's reference errors must be finite and >= 0; got {self}")

    @property
    def rmse(self) -> float:
        return math.sqrt(self.squared_mean)

    def to_dict(self) -> dict[str, float]:
        return {
            "absolute_mean": self.absolute_mean,
            "absolute_sd": self.absolute_sd,
            "squared_mean": self.squared_mean,
            "squared_sd": self.squared_sd,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ErrorSpread:
        return cls(*(float(data[k]) for k in ("absolute_mean", "absolute_sd", "squared_mean", "squared_sd")))


@dataclass(frozen=True, slots=True)
class LossModel:
    """Predicts a regressor's absolute and squared error per row from its features and its prediction.

    ``features`` are the inputs in order; the model's prediction is the last input. ``rows`` labelled rows
    of ``data`` (see ``LOSS_MODEL_DATA``) taught it, and ``reference`` holds their realised errors.
    """

    features: tuple[LossFeature, ...]
    absolute: TreeEnsemble
    squared: TreeEnsemble
    rows: int
    reference: ErrorSpread
    data: str = "training"
    learner: str = "hist_gradient_boosting"

    def __post_init__(self) -> None:
        if self.data not in LOSS_MODEL_DATA:
            raise InvalidArgumentError(f"loss model data must be one of {list(LOSS_MODEL_DATA)}; got {self.data!r}")
        inputs = len(self.features) + 1
        for trees in (self.absolute, self.squared):
            if any(f >= inputs for f in trees.feature):
                raise InvalidArgumentError(f"a loss model's tree splits on input {max(trees.feature)} of {inputs}")
            for node in trees.categories:
                f = trees.feature[node]
                if f < 0 or f >= len(self.features) or self.features[f].levels is None:
                    raise InvalidArgumentError(f"a loss model's categorical split at node {node} is on a number")

    @property
    def names(self) -> Sequence[str]:
        return [f.name for f in self.features]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "direct_loss_estimation",
            "learner": self.learner,
            "data": self.data,
            "rows": self.rows,
            "features": [f.to_dict() for f in self.features],
            "reference": self.reference.to_dict(),
            "absolute": self.absolute.to_dict(),
            "squared": self.squared.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LossModel:
        if data.get("kind") != "direct_loss_estimation":
            raise InvalidArgumentError(
                f"unknown loss model kind {data.get('kind')!r}; expected 'direct_loss_estimation'"
            )
        try:
            return cls(
                features=tuple(LossFeature.from_dict(f) for f in data["features"]),
                absolute=TreeEnsemble.from_dict(data["absolute"]),
                squared=TreeEnsemble.from_dict(data["squared"]),
                rows=int(data["rows"]),
                reference=ErrorSpread.from_dict(data["reference"]),
                data=str(data.get("data", "training")),
                learner=str(data.get("learner", "hist_gradient_boosting")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"a stored loss model is malformed: {type(exc).__name__}: {exc}") from exc
