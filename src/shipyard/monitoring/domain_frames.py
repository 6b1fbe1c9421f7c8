"""Two frames made into one matrix for the domain classifier: shared columns, bounded sample, one encoding.

Kept apart from the test itself (``monitoring.multivariate``) because most of the care is here: frames that
disagree on columns or types, empty frames, all-missing columns, text with thousands of levels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

CATEGORY_CODES = 250
"""Most frequent levels of a text column kept as their own code (HistGradientBoosting takes < 256 bins);
the rest share one code."""


@dataclass(frozen=True, slots=True)
class SideBySide:
    """Rows of both frames as one float matrix; ``side`` is 1 for the current rows, 0 for the reference's.

    ``categorical`` marks the columns holding category codes. ``note`` says why nothing can be compared.
    """

    x: np.ndarray
    side: np.ndarray
    categorical: np.ndarray
    features: tuple[str, ...]
    reference_rows: int
    current_rows: int
    left_out: Mapping[str, str] = field(default_factory=dict)
    note: str | None = None


def side_by_side(
    reference: pd.DataFrame, current: pd.DataFrame, *, per_side: int, rng: np.random.Generator
) -> SideBySide:
    """Both frames' shared columns, at most ``per_side`` seeded rows of each, numbers as floats (NaN kept:
    the classifier handles missing values) and text as codes over both sides' levels."""
    import pandas as pd

    from shipyard.core.profile import _is_numeric

    left_out: dict[str, str] = {}
    for name in reference.columns:
        if name not in current.columns:
            left_out[str(name)] = "only in the reference"
    for name in current.columns:
        if name not in reference.columns:
            left_out[str(name)] = "only in the current data"
    ref = _sample(reference, per_side, rng)
    cur = _sample(current, per_side, rng)
    shared = [name for name in reference.columns if name in current.columns]
    columns: list[np.ndarray] = []
    categorical: list[bool] = []
    features: list[str] = []
    for name in shared:
        a, b = ref[name], cur[name]
        if a.isna().all() and b.isna().all():
            left_out[str(name)] = "all missing on both sides"
            continue
        numeric_a, numeric_b = _is_numeric(a), _is_numeric(b)
        if numeric_a and numeric_b:
            values = np.concatenate([_floats(a), _floats(b)])
            categorical.append(False)
        else:
            if numeric_a != numeric_b:
                left_out[str(name)] = "numeric on one side, text on the other: compared as text"
            values = _codes(pd.concat([a, b], ignore_index=True))
            categorical.append(True)
        columns.append(values)
        features.append(str(name))
    side = np.concatenate([np.zeros(len(ref), dtype=np.int64), np.ones(len(cur), dtype=np.int64)])
    x = np.column_stack(columns) if columns else np.empty((len(side), 0))
    note = None
    if len(ref) == 0 or len(cur) == 0:
        note = "the reference has no rows" if len(ref) == 0 else "the current data has no rows"
    elif not features:
        note = "the two frames share no column with values to compare"
    return SideBySide(
        x=x,
        side=side,
        categorical=np.asarray(categorical, dtype=bool),
        features=tuple(features),
        reference_rows=len(ref),
        current_rows=len(cur),
        left_out=left_out,
        note=note,
    )


def _sample(frame: pd.DataFrame, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    chosen = np.sort(rng.choice(len(frame), rows, replace=False))
    return frame.iloc[chosen].reset_index(drop=True)


def _floats(column: Any) -> np.ndarray:
    from shipyard.core.profile import _as_float

    values: np.ndarray = _as_float(column)
    return np.where(np.isfinite(values), values, np.nan)


def _codes(column: Any) -> np.ndarray:
    """Levels as codes 0..CATEGORY_CODES (the rarest share the last one); missing stays NaN."""
    text = column.astype(str).where(column.notna(), None)
    ranked = text.value_counts()
    keep = {level: i for i, level in enumerate(ranked.index[:CATEGORY_CODES])}
    rest = float(len(keep))
    return np.asarray(
        [np.nan if v is None else float(keep.get(v, rest)) for v in text.tolist()],
        dtype=np.float64,
    )
