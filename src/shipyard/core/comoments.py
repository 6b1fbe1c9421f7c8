"""Mergeable co-moments of a few numeric features: what a correlation matrix is made of, window by window.

A window keeps, over its rows where every chosen feature is a finite number, the row count, the sums of each
feature and the sums of the products of every pair, all taken about a fixed ``shift`` (the reference's means),
so that large offsets (timestamps, prices in the thousands) cancel before the squares are formed rather than
after. Two windows with the same features and shift merge by adding; Pearson's r of any pair follows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_FEATURES = 10
"""Correlations are tracked between at most this many numeric features: 45 pairs, 55 running products."""

_EINSUM_ROWS = 65_536
# Below this many rows the products are summed with einsum: a BLAS matrix product would start OpenBLAS's
# threads in a serving worker for a few microseconds of work; above it (offline files) BLAS is much faster.


def _triangle(k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(k)


def _at(i: int, j: int, k: int) -> int:
    """Where the product of features i <= j sits in the upper triangle stored row by row."""
    return i * k - i * (i - 1) // 2 + (j - i)


@dataclass(frozen=True, slots=True)
class CoMoments:
    """Row count, sums and pairwise product sums of ``features`` about ``shift``, over complete rows only.

    ``products`` is the upper triangle of the k x k product matrix, row by row (k(k+1)/2 numbers).
    """

    features: tuple[str, ...]
    shift: tuple[float, ...]
    n: int = 0
    sums: tuple[float, ...] = ()
    products: tuple[float, ...] = ()

    @classmethod
    def empty(cls, features: Sequence[str], shift: Sequence[float]) -> CoMoments:
        k = len(features)
        return cls(tuple(features), tuple(float(s) for s in shift), 0, (0.0,) * k, (0.0,) * (k * (k + 1) // 2))

    def like(self) -> CoMoments:
        """An empty window over the same features and shift, ready to merge with this one."""
        return CoMoments.empty(self.features, self.shift)

    def subset(self, names: Sequence[str]) -> CoMoments:
        """The same sums over only ``names`` (kept in this order of features): what is left to compare when
        the other side lacks some of the features."""
        keep = [i for i, name in enumerate(self.features) if name in set(names)]
        k = len(self.features)
        return CoMoments(
            tuple(self.features[i] for i in keep),
            tuple(self.shift[i] for i in keep),
            self.n,
            tuple(self.sums[i] for i in keep),
            tuple(self.products[_at(i, j, k)] for n, i in enumerate(keep) for j in keep[n:]),
        )

    def add(self, columns: Mapping[str, Any]) -> CoMoments:
        """This window plus a batch of rows (columns by name); rows missing any feature are left out."""
        if not self.features:
            return self
        if any(name not in columns for name in self.features):
            return self  # a batch without one of the features has no complete row
        matrix = np.column_stack([_floats(columns[name]) for name in self.features])
        return self.merge(self.of_matrix(matrix))

    def of_matrix(self, matrix: np.ndarray) -> CoMoments:
        """The co-moments of a rows x features float matrix (columns in ``features`` order), about this shift."""
        with np.errstate(invalid="ignore", over="ignore"):
            complete = np.isfinite(matrix).all(axis=1)
            rows = matrix[complete] if not complete.all() else matrix
            centred = rows - np.asarray(self.shift)
            small = centred.shape[0] < _EINSUM_ROWS
            full = np.einsum("ni,nj->ij", centred, centred) if small else centred.T @ centred
            upper = full[_triangle(len(self.features))]
            sums = centred.sum(axis=0)
        return CoMoments(
            self.features,
            self.shift,
            int(rows.shape[0]),
            tuple(float(v) for v in sums),
            tuple(float(v) for v in upper),
        )

    def merge(self, other: CoMoments) -> CoMoments:
        """Two windows over the same features and shift, added; anything else is a programming error."""
        if other.features != self.features or other.shift != self.shift:
            raise ValueError("cannot merge co-moments over different features or shifts")
        return CoMoments(
            self.features,
            self.shift,
            self.n + other.n,
            tuple(a + b for a, b in zip(self.sums, other.sums, strict=True)),
            tuple(a + b for a, b in zip(self.products, other.products, strict=True)),
        )

    def correlation(self, a: str, b: str) -> float | None:
        """Pearson's r of two of the features over the complete rows; None when undefined (fewer than three
        rows, or a feature without spread), never NaN."""
        if self.n < 3 or a not in self.features or b not in self.features:
            return None
        i, j = sorted((self.features.index(a), self.features.index(b)))
        k, n = len(self.features), self.n
        cov = self.products[_at(i, j, k)] - self.sums[i] * self.sums[j] / n
        var_i = self.products[_at(i, i, k)] - self.sums[i] ** 2 / n
        var_j = self.products[_at(j, j, k)] - self.sums[j] ** 2 / n
        # A relative floor: a constant feature leaves rounding residue, not spread.
        scale_i = self.products[_at(i, i, k)] + self.sums[i] ** 2 / n
        scale_j = self.products[_at(j, j, k)] + self.sums[j] ** 2 / n
        if var_i <= 1e-12 * max(scale_i, 1e-300) or var_j <= 1e-12 * max(scale_j, 1e-300):
            return None
        r = cov / math.sqrt(var_i * var_j)
        return max(-1.0, min(1.0, r)) if math.isfinite(r) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "shift": list(self.shift),
            "n": self.n,
            "sums": list(self.sums),
            "products": list(self.products),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CoMoments:
        return cls(
            tuple(str(f) for f in data["features"]),
            tuple(float(v) for v in data["shift"]),
            int(data.get("n", 0)),
            tuple(float(v) for v in data.get("sums", ())),
            tuple(float(v) for v in data.get("products", ())),
        )


def choose_features(
    columns: Mapping[str, Any], *, limit: int = MAX_FEATURES
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The features whose correlations are tracked, and their means (the shift).

    The first ``limit`` numeric columns in column (signature) order that have at least two distinct finite
    values: variance rank would compare variances in different units, and column order is what the user
    chose and can change. Booleans are not numbers here.
    """
    chosen: list[str] = []
    means: list[float] = []
    for name, values in columns.items():
        if len(chosen) == limit:
            break
        array = np.asarray(values)
        if array.dtype.kind not in "fiu":
            continue
        floats = array.astype(np.float64, copy=False)
        finite = floats[np.isfinite(floats)]
        if finite.size < 2 or float(finite.min()) == float(finite.max()):
            continue
        chosen.append(str(name))
        means.append(float(finite.mean()))
    return tuple(chosen), tuple(means)


def _floats(values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "fiu":
        return array.astype(np.float64, copy=False)
    out = np.full(len(array), np.nan)
    for i, value in enumerate(array.tolist()):
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[i] = value
    return out
