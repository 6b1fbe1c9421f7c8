"""The loss model's trees: read out of scikit-learn after fitting, and evaluated with NumPy when serving.

Reading the fitted trees into plain node lists (``core.loss_model.TreeEnsemble``) is what lets a version
store its loss model as JSON; evaluating them here, vectorised over a batch of rows and every tree at once,
is what lets a serving worker apply it without scikit-learn's private predictor. The test suite holds the
evaluation equal to scikit-learn's own ``predict`` (1e-9), missing values and unseen categories included.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from shipyard.core.loss_model import MAX_CATEGORY_CODES, TreeEnsemble
from shipyard.errors import InvalidArgumentError


def ensemble_from_sklearn(model: Any) -> TreeEnsemble:
    """A fitted ``HistGradientBoostingRegressor`` (squared error, one output) as plain node lists."""
    roots: list[int] = []
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    missing_left: list[bool] = []
    value: list[float] = []
    categories: dict[int, tuple[int, ...]] = {}
    column_of, raw_codes = _remapping(model)
    for iteration in model._predictors:  # one predictor per iteration for a single-output regressor
        predictor = iteration[0]
        nodes = predictor.nodes
        offset = len(feature)
        roots.append(offset)
        bitsets = predictor.raw_left_cat_bitsets
        for i, node in enumerate(nodes):
            leaf = bool(node["is_leaf"])
            feature.append(-1 if leaf else int(column_of[int(node["feature_idx"])]))
            cut = float(node["num_threshold"])
            threshold.append(0.0 if leaf or node["is_categorical"] or math.isnan(cut) else cut)
            left.append(offset + i if leaf else offset + int(node["left"]))
            right.append(offset + i if leaf else offset + int(node["right"]))
            missing_left.append(bool(node["missing_go_to_left"]))
            value.append(float(node["value"]) if leaf else 0.0)
            if not leaf and node["is_categorical"]:
                codes = raw_codes[int(node["feature_idx"])]
                categories[offset + i] = tuple(
                    codes[j] for j in _codes(bitsets[int(node["bitset_idx"])]) if j < len(codes)
                )
    return TreeEnsemble(
        baseline=float(np.asarray(model._baseline_prediction).ravel()[0]),
        roots=tuple(roots),
        feature=tuple(feature),
        threshold=tuple(threshold),
        left=tuple(left),
        right=tuple(right),
        missing_left=tuple(missing_left),
        value=tuple(value),
        categories=categories,
    )


def _remapping(model: Any) -> tuple[np.ndarray, dict[int, list[int]]]:
    """Where each tree input comes from, and each categorical input's codes as the caller gave them.

    With categorical features scikit-learn reorders the inputs (categorical ones first) and re-encodes each
    category as its rank among the values seen; the stored trees speak of the caller's columns and codes.
    """
    preprocessor = getattr(model, "_preprocessor", None)
    if preprocessor is None:
        return np.arange(model.n_features_in_), {}
    categorical = np.asarray(model.is_categorical_, dtype=bool)
    column_of = np.concatenate([np.flatnonzero(categorical), np.flatnonzero(~categorical)])
    encoder = preprocessor.named_transformers_["encoder"]
    raw_codes = {i: [int(v) for v in levels if not np.isnan(v)] for i, levels in enumerate(encoder.categories_)}
    return column_of, raw_codes


def _codes(bitset: np.ndarray) -> tuple[int, ...]:
    """The category codes set in one of scikit-learn's 256-bit bitsets (eight 32-bit words)."""
    words = np.asarray(bitset, dtype=np.uint32)
    bits = (words[:, None] >> np.arange(32, dtype=np.uint32)) & 1
    return tuple(int(c) for c in np.flatnonzero(bits.ravel()) if c < MAX_CATEGORY_CODES)


class CompiledTrees:
    """One ``TreeEnsemble`` as NumPy arrays, built once per served version and applied per batch.

    Each step moves every (row, tree) pair not yet on a leaf one level down at once, and drops the pairs
    that reached one; the work is about rows x trees x mean depth element operations in a handful of NumPy
    calls per level, with no Python loop over rows or trees.
    """

    def __init__(self, ensemble: TreeEnsemble) -> None:
        self.baseline = ensemble.baseline
        self.roots = np.asarray(ensemble.roots, dtype=np.intp)
        feature = np.asarray(ensemble.feature, dtype=np.intp)
        self.leaf = feature < 0
        self.feature = np.where(self.leaf, 0, feature)
        self.threshold = np.asarray(ensemble.threshold, dtype=np.float64)
        self.left = np.asarray(ensemble.left, dtype=np.intp)
        self.right = np.asarray(ensemble.right, dtype=np.intp)
        self.missing_left = np.asarray(ensemble.missing_left, dtype=bool)
        self.value = np.asarray(ensemble.value, dtype=np.float64)
        self.children = np.stack([self.right, self.left], axis=1).ravel()
        n = len(feature)
        self.category_row = np.full(n, -1, dtype=np.intp)
        self.category_left = np.zeros((max(1, len(ensemble.categories)), MAX_CATEGORY_CODES), dtype=bool)
        for row, (node, codes) in enumerate(sorted(ensemble.categories.items())):
            self.category_row[node] = row
            self.category_left[row, list(codes)] = True
        self.threshold[self.category_row >= 0] = np.nan  # a numeric comparison never sends a category left
        self.has_categories = bool(ensemble.categories)
        self.inputs = int(feature.max()) + 1 if (feature >= 0).any() else 0

    def _special(self, at: np.ndarray, values: np.ndarray, go_left: np.ndarray) -> None:
        """Missing values and categorical splits, in place (skipped for batches with neither)."""
        missing = np.isnan(values)
        if self.has_categories:
            category = self.category_row[at]
            split = np.flatnonzero((category >= 0) & ~missing)
            if split.size:
                codes = values[split].astype(np.intp)
                known = (codes >= 0) & (codes < MAX_CATEGORY_CODES)
                go_left[split] = self.category_left[category[split], np.where(known, codes, 0)] & known
                # a code outside the levels counts as missing, as scikit-learn treats unknown categories
                missing[split[~known]] = True
        go_left[missing] = self.missing_left[at[missing]]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The ensemble's output per row of ``x`` (rows x inputs, floats; NaN is missing)."""
        if x.ndim != 2 or x.shape[1] < self.inputs:
            raise InvalidArgumentError(f"the loss model needs {self.inputs} inputs per row; got shape {x.shape}")
        n, width = x.shape
        trees = len(self.roots)
        if n == 0:
            return np.empty(0)
        flat = np.ascontiguousarray(x, dtype=np.float64).ravel()
        any_missing = bool(np.isnan(flat).any())
        node = np.tile(self.roots, n)  # pair p is row p // trees, tree p % trees
        base = np.repeat(np.arange(n, dtype=np.intp) * width, trees)
        active = np.flatnonzero(~self.leaf[node])
        while active.size:
            at = node[active]
            values = flat[base[active] + self.feature[at]]
            go_left = values <= self.threshold[at]
            if any_missing or self.has_categories:
                self._special(at, values, go_left)
            after = self.children[2 * at + go_left]  # one gather: [right, left] per node, indexed by the test
            node[active] = after
            active = active[~self.leaf[after]]  # pairs on a leaf are done: each step works on fewer
        out: np.ndarray = self.baseline + self.value[node].reshape(n, trees).sum(axis=1)
        return out
