"""Bounds checks for the fitted structures scikit-learn and SciPy index without checking.

A decision tree's children and features, the histogram-boosting predictor's nodes, a KD/ball tree's
index arrays, a sparse matrix's indices and a B-spline's knots are read in compiled code without
bounds checks: a crafted file cannot run code through them, but could crash the process or read
memory it should not (skops flags the trees for that reason). ``skops_trust`` lets such a file load
without trust only once every structure in the loaded model passed these checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from shipyard.errors import UntrustedArtifactError

# How deep the walk follows attributes; fitted models nest a few levels (pipeline, ensemble, tree).
_MAX_DEPTH = 64
_TREE_LEAF = -1


def check_structures(model: Any) -> None:
    """Raise ``UntrustedArtifactError`` naming the first structure whose indices are out of range."""
    import scipy.sparse
    from scipy.interpolate import BSpline
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.neighbors import BallTree, KDTree
    from sklearn.tree._tree import Tree

    for obj, width in _walk(model):
        if isinstance(obj, Tree):
            _check_tree(obj, width)
        elif isinstance(obj, TreePredictor):
            _check_tree_predictor(obj, width)
        elif isinstance(obj, KDTree | BallTree):
            _check_binary_tree(obj)
        elif scipy.sparse.issparse(obj):
            _check_sparse(obj)
        elif isinstance(obj, BSpline):
            _check_bspline(obj)
        elif hasattr(obj, "estimators_") and hasattr(obj, "n_features_in_"):
            _check_ensemble_widths(obj)


def _walk(root: Any) -> Iterator[tuple[Any, int | None]]:
    """Every object reachable through attributes and containers, with the nearest ``n_features_in_``.

    The width is that of the closest enclosing estimator: a tree's own estimator (``DecisionTree*``
    holding ``tree_``) or the histogram-boosting model holding its predictors.
    """
    seen: set[int] = set()
    stack: list[tuple[Any, int | None, int]] = [(root, None, 0)]
    while stack:
        obj, width, depth = stack.pop()
        if id(obj) in seen or depth > _MAX_DEPTH or isinstance(obj, str | bytes | int | float | bool | type(None)):
            continue
        seen.add(id(obj))
        own = getattr(obj, "n_features_in_", None) if not isinstance(obj, type) else None
        if isinstance(own, int | np.integer):
            width = int(own)
        yield obj, width
        for child in _children(obj):
            stack.append((child, width, depth + 1))


def _children(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return list(obj.values())
    if isinstance(obj, list | tuple | set | frozenset):
        return list(obj)
    if isinstance(obj, np.ndarray):
        return list(obj.ravel()) if obj.dtype == object else []
    state = getattr(obj, "__dict__", None)
    return list(state.values()) if isinstance(state, dict) else []


def _refuse(what: str, problem: str) -> UntrustedArtifactError:
    return UntrustedArtifactError(
        f"its {what} {problem}, which scikit-learn would read out of bounds; load it with trusted=True "
        "(CLI: --trusted) only if you trust where it came from"
    )


def _check_tree(tree: Any, width: int | None) -> None:
    state = tree.__getstate__()
    nodes = state["nodes"]
    count = int(state["node_count"])
    n_features = int(tree.n_features)
    if len(nodes) != count or count < 1:
        raise _refuse("decision tree", f"has {len(nodes)} nodes but says {count}")
    if width is not None and n_features > width:
        raise _refuse("decision tree", f"reads {n_features} features but its estimator takes {width}")
    left, right, feature = nodes["left_child"], nodes["right_child"], nodes["feature"]
    if np.any((left == _TREE_LEAF) != (right == _TREE_LEAF)):
        raise _refuse("decision tree", "has a node with one child")
    _check_children("decision tree", left, right, leaf=left == _TREE_LEAF)
    inner = left != _TREE_LEAF
    if np.any((feature[inner] < 0) | (feature[inner] >= n_features)):
        raise _refuse("decision tree", f"splits on a feature outside 0..{n_features - 1}")
    values = state["values"]
    if values.ndim != 3 or values.shape[0] != count:
        raise _refuse("decision tree", f"has values of shape {values.shape} for {count} nodes")


def _check_children(what: str, left: np.ndarray, right: np.ndarray, *, leaf: np.ndarray) -> None:
    """Inner nodes point at two later nodes of the same array (so walking down always ends)."""
    count = len(left)
    index = np.arange(count)
    inner = ~leaf
    for child in (left[inner], right[inner]):
        if np.any((child <= index[inner]) | (child >= count)):
            raise _refuse(what, f"has a child index outside its {count} nodes")


def _check_tree_predictor(predictor: Any, width: int | None) -> None:
    nodes = predictor.nodes
    leaf = nodes["is_leaf"].astype(bool)
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    _check_children("boosting tree", left, right, leaf=leaf)
    inner = ~leaf
    feature = nodes["feature_idx"][inner]
    if width is None or np.any((feature < 0) | (feature >= width)):
        raise _refuse("boosting tree", f"splits on a feature outside the model's {width} features")
    categorical = inner & nodes["is_categorical"].astype(bool)
    bitsets = len(predictor.raw_left_cat_bitsets)
    if len(predictor.binned_left_cat_bitsets) != bitsets or np.any(nodes["bitset_idx"][categorical] >= bitsets):
        raise _refuse("boosting tree", f"points at a category bitset outside its {bitsets}")


def _check_binary_tree(tree: Any) -> None:
    """A KD or ball tree must be exactly what scikit-learn builds from the data it holds."""
    state = tree.__getstate__()
    data, leaf_size, metric, sample_weight = np.asarray(state[0]), state[4], state[11], state[12]
    try:
        rebuilt = type(tree)(data, leaf_size=leaf_size, metric=metric, sample_weight=sample_weight)
    except Exception as exc:
        raise _refuse(type(tree).__name__, f"cannot be rebuilt from its data ({exc})") from exc
    same = all(np.array_equal(a, b) for a, b in zip(tree.get_arrays(), rebuilt.get_arrays(), strict=True))
    if not same or tuple(state[4:7]) != tuple(rebuilt.__getstate__()[4:7]):
        raise _refuse(type(tree).__name__, "differs from the tree its own data builds")


def _check_sparse(matrix: Any) -> None:
    check = getattr(matrix, "check_format", None)
    if check is None:
        return  # COO checks its indices when built; DIA/DOK/LIL hold no index arrays read unchecked
    try:
        check(full_check=True)
    except ValueError as exc:
        raise _refuse(f"sparse {matrix.format} matrix", f"is malformed ({exc})") from exc


def _check_bspline(spline: Any) -> None:
    """The constructor checks knots, coefficients and degree; construct_fast, used on load, does not."""
    from scipy.interpolate import BSpline

    try:
        BSpline(spline.t, spline.c, spline.k, extrapolate=spline.extrapolate, axis=spline.axis)
    except Exception as exc:
        raise _refuse("B-spline", f"is malformed ({exc})") from exc


def _check_ensemble_widths(ensemble: Any) -> None:
    """Forests call their trees without re-checking the input width, so each tree must take the full width."""
    members = ensemble.estimators_
    members = list(members.ravel()) if isinstance(members, np.ndarray) else list(members)
    subsets = getattr(ensemble, "estimators_features_", None)
    for i, member in enumerate(members):
        if not hasattr(member, "tree_"):
            continue
        expected = len(subsets[i]) if subsets is not None and i < len(subsets) else int(ensemble.n_features_in_)
        if getattr(member, "n_features_in_", None) != expected:
            raise _refuse("tree ensemble", f"holds a tree taking {member.n_features_in_} features, not {expected}")
