"""Turn caller input into exactly what a model takes, or a SignatureError naming feature and row.

An ``InputAdapter`` is built once per loaded model; the checks it makes are chosen then, so each call
does only the work its input needs: a well-formed numeric matrix passes through with a shape and a
missing-value check, and the careful per-value path runs only to explain what is wrong.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.signature import FeatureSpec, FeatureType, Signature
from shipyard.errors import SignatureError


class InputLayout(StrEnum):
    """How a model wants its rows: a DataFrame with named columns, or a matrix in feature order."""

    FRAME = "frame"
    ARRAY = "array"


_NUMERIC_KINDS = frozenset("fiub")


class InputAdapter:
    """Validate and convert one batch of rows against a signature."""

    def __init__(self, signature: Signature, *, layout: InputLayout, label: str, strict: bool = False) -> None:
        self.signature = signature
        self.layout = layout
        self.label = label
        self.strict = strict
        self.names = signature.names
        self._index = {name: i for i, name in enumerate(self.names)}
        self._specs = signature.features
        self._all_numeric = signature.all_numeric
        required = [i for i, f in enumerate(self._specs) if not f.nullable]
        self._required_idx = np.asarray(required, dtype=np.intp)
        self._all_required = len(required) == len(self._specs)

    def __call__(self, data: Any) -> pd.DataFrame | np.ndarray:
        if isinstance(data, np.ndarray):
            return self._from_array(data)
        if isinstance(data, pd.DataFrame):
            return self._from_frame(data)
        if isinstance(data, Mapping):
            return self._from_columns(data)
        if isinstance(data, Sequence) and not isinstance(data, str | bytes):
            if not data:
                raise SignatureError("input has no rows; send at least one row")
            if isinstance(data[0], Mapping):
                return self._from_rows(data)
            return self._from_array(np.asarray(data, dtype=object if not _is_flat_numeric(data) else None))
        raise SignatureError(
            f"input must be a pandas DataFrame, a dict of columns, a list of row objects or a 2-D "
            f"array; got {type(data).__name__}"
        )

    # -- entry points per input kind -------------------------------------------------------

    def _from_array(self, array: np.ndarray) -> pd.DataFrame | np.ndarray:
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2:
            raise SignatureError(f"input must be 2-D (rows x features); got an array of shape {array.shape}")
        if array.shape[0] == 0:
            raise SignatureError("input has no rows; send at least one row")
        width = len(self.names)
        if array.shape[1] != width:
            raise SignatureError(
                f"input has {array.shape[1]} features, but {self.label} expects {width}: {_listing(self.names)}"
            )
        if self.layout is InputLayout.ARRAY and self._all_numeric and array.dtype.kind in _NUMERIC_KINDS:
            if array.dtype.kind == "f":
                self._check_no_nan(array)
            return array
        columns = {name: array[:, i] for i, name in enumerate(self.names)}
        return self._finish(self._checked_columns(columns, array.shape[0]))

    def _from_frame(self, frame: pd.DataFrame) -> pd.DataFrame | np.ndarray:
        if len(frame) == 0:
            raise SignatureError("input has no rows; send at least one row")
        self._check_names([str(c) for c in frame.columns])
        columns: dict[str, Any] = {}
        for spec in self._specs:
            column = frame[spec.name]
            columns[spec.name] = self._check_series(spec, column)
        if self.layout is InputLayout.FRAME:
            return pd.DataFrame(columns, index=frame.index)
        return self._matrix(columns)

    def _from_columns(self, data: Mapping[str, Any]) -> pd.DataFrame | np.ndarray:
        keys = [str(k) for k in data]
        self._check_names(keys)
        values = [data[name] for name in self.names]
        if values and all(_is_scalar(v) for v in values):
            values = [[v] for v in values]
        lengths = {len(v) if isinstance(v, Sequence | np.ndarray) and not isinstance(v, str) else -1 for v in values}
        if -1 in lengths:
            bad = next(n for n, v in zip(self.names, values, strict=True) if not _is_column(v))
            raise SignatureError(f"feature {bad!r} must be a list of values, one per row")
        if len(lengths) != 1:
            sizes = {n: len(v) for n, v in zip(self.names, values, strict=True)}
            raise SignatureError(f"columns have different lengths: {sizes}; every feature needs one value per row")
        rows = lengths.pop()
        if rows == 0:
            raise SignatureError("input has no rows; send at least one row")
        if self.layout is InputLayout.ARRAY and self._all_numeric:
            fast = self._fast_matrix(values, transpose=True)
            if fast is not None:
                return fast
        return self._finish(self._checked_columns(dict(zip(self.names, values, strict=True)), rows))

    def _from_rows(self, rows: Sequence[Any]) -> pd.DataFrame | np.ndarray:
        names = self.names
        if self.layout is InputLayout.ARRAY and self._all_numeric:
            try:
                table = [[row[n] for n in names] for row in rows]
            except (KeyError, TypeError):
                table = None
            if table is not None:
                fast = self._fast_matrix(table, transpose=False)
                if fast is not None:
                    self._check_extras_in_rows(rows)
                    return fast
        columns: dict[str, list[Any]] = {n: [] for n in names}
        for r, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise SignatureError(f"row {r}: expected an object of feature values, got {describe_value(row)}")
            for name in names:
                if name not in row:
                    raise SignatureError(
                        f"row {r}: feature {name!r} is missing; {self.label} expects {_listing(names)}"
                    )
                columns[name].append(row[name])
        self._check_extras_in_rows(rows)
        return self._finish(self._checked_columns(columns, len(rows)))

    # -- shared checks ---------------------------------------------------------------------

    def _fast_matrix(self, table: Any, *, transpose: bool) -> np.ndarray | None:
        """A numeric table straight to float64; None sends the caller to the explaining path."""
        try:
            array = np.asarray(table)
        except (ValueError, TypeError):
            return None
        if array.dtype.kind not in _NUMERIC_KINDS or array.ndim != 2:
            return None
        matrix = np.ascontiguousarray(array.T if transpose else array, dtype=np.float64)
        self._check_no_nan(matrix)
        return matrix

    def _check_no_nan(self, matrix: np.ndarray) -> None:
        if not self._required_idx.size:
            return
        view = matrix if self._all_required else matrix[:, self._required_idx]
        if np.isnan(view).any():
            rows, cols = np.nonzero(np.isnan(view))
            col = int(cols[0]) if self._all_required else int(self._required_idx[cols[0]])
            raise SignatureError(self._null_message(int(rows[0]), self.names[col]), feature=self.names[col])

    def _check_names(self, given: Sequence[str]) -> None:
        present = set(given)
        missing = [n for n in self.names if n not in present]
        if missing:
            raise SignatureError(
                f"input is missing feature{'s' if len(missing) > 1 else ''} {_listing(missing)}; "
                f"{self.label} expects {_listing(self.names)}"
            )
        if self.strict:
            extra = [n for n in given if n not in self._index]
            if extra:
                raise SignatureError(
                    f"input has unexpected feature{'s' if len(extra) > 1 else ''} {_listing(extra)}; "
                    f"{self.label} takes only {_listing(self.names)}"
                )

    def _check_extras_in_rows(self, rows: Sequence[Any]) -> None:
        if not self.strict:
            return
        for r, row in enumerate(rows):
            extra = [k for k in row if k not in self._index]
            if extra:
                raise SignatureError(
                    f"row {r}: unexpected feature{'s' if len(extra) > 1 else ''} {_listing(extra)}; "
                    f"{self.label} takes only {_listing(self.names)}"
                )

    def _checked_columns(self, columns: Mapping[str, Any], rows: int) -> dict[str, np.ndarray]:
        return {spec.name: self._check_values(spec, columns[spec.name]) for spec in self._specs}

    def _finish(self, columns: dict[str, np.ndarray]) -> pd.DataFrame | np.ndarray:
        if self.layout is InputLayout.FRAME:
            return pd.DataFrame(columns)
        return self._matrix(columns)

    def _matrix(self, columns: Mapping[str, Any]) -> np.ndarray:
        if not self._all_numeric:
            return np.column_stack([np.asarray(columns[n], dtype=object) for n in self.names])
        return np.column_stack([np.asarray(columns[n], dtype=np.float64) for n in self.names])

    def _null_message(self, row: int, name: str) -> str:
        return f"row {row}: feature {name!r} is missing (null), but {self.label} does not allow missing values for it"

    def _check_series(self, spec: FeatureSpec, column: pd.Series) -> Any:
        """Validate a DataFrame column, keeping its dtype when it is already right."""
        dtype = column.dtype
        if spec.type.is_numeric and pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            if not spec.nullable and column.isna().any():
                raise SignatureError(self._null_message(_first_true(column.isna()), spec.name), feature=spec.name)
            return column
        if spec.type is FeatureType.STRING and _is_textual(dtype):
            mask = column.isna()
            if not spec.nullable and mask.any():
                raise SignatureError(self._null_message(_first_true(mask), spec.name), feature=spec.name)
            values = column[~mask]
            bad = ~values.map(lambda v: isinstance(v, str)).astype(bool)
            if bad.any():
                position = column.index.get_loc(values.index[_first_true(bad)])
                raise SignatureError(self._type_message(int(position), spec, values[bad].iloc[0]), feature=spec.name)
            return column
        if spec.type is FeatureType.BOOLEAN and pd.api.types.is_bool_dtype(dtype):
            return column
        return pd.Series(self._check_values(spec, column.to_numpy(dtype=object)), index=column.index)

    def _check_values(self, spec: FeatureSpec, values: Any) -> np.ndarray:
        """Per-value check of one column from JSON-like input; returns a typed array."""
        # fromiter keeps one element per row: np.asarray would turn nested lists into extra dimensions.
        array = values if isinstance(values, np.ndarray) else np.fromiter(values, dtype=object, count=len(values))
        if spec.type.is_numeric and array.dtype.kind in "fiu":
            if array.dtype.kind == "f" and not spec.nullable and np.isnan(array).any():
                raise SignatureError(self._null_message(_first_true(np.isnan(array)), spec.name), feature=spec.name)
            return array
        out = np.empty(len(array), dtype=np.float64 if spec.type.is_numeric else object)
        for r, value in enumerate(array):
            if _is_missing(value):
                if not spec.nullable:
                    raise SignatureError(self._null_message(r, spec.name), feature=spec.name)
                out[r] = np.nan
            elif _accepts(spec.type, value):
                out[r] = value
            else:
                raise SignatureError(self._type_message(r, spec, value), feature=spec.name)
        if spec.type is FeatureType.INTEGER and not spec.nullable:
            as_float = out.astype(np.float64)
            if np.all(as_float == np.round(as_float)):
                return as_float.astype(np.int64)
        if spec.type is FeatureType.BOOLEAN and not spec.nullable:
            return out.astype(bool)
        return out

    def _type_message(self, row: int, spec: FeatureSpec, value: Any) -> str:
        wanted = {
            FeatureType.INTEGER: "a number",
            FeatureType.FLOAT: "a number",
            FeatureType.BOOLEAN: "true or false",
            FeatureType.STRING: "a string",
            FeatureType.DATETIME: "a date-time",
        }[spec.type]
        return f"row {row}: feature {spec.name!r} expects {wanted}, got {describe_value(value)}"


def _accepts(ftype: FeatureType, value: Any) -> bool:
    if ftype.is_numeric:
        return isinstance(value, int | float | np.integer | np.floating | np.bool_)
    if ftype is FeatureType.BOOLEAN:
        return isinstance(value, bool | np.bool_) or (isinstance(value, int | np.integer) and value in (0, 1))
    if ftype is FeatureType.STRING:
        return isinstance(value, str)
    if ftype is FeatureType.DATETIME:
        if isinstance(value, pd.Timestamp | np.datetime64):
            return True
        if isinstance(value, str):
            try:
                pd.Timestamp(value)
            except (ValueError, TypeError):
                return False
            return True
    return False


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bytes | int | float | bool | np.generic)


def _is_column(value: Any) -> bool:
    return isinstance(value, Sequence | np.ndarray) and not isinstance(value, str)


def _is_flat_numeric(data: Sequence[Any]) -> bool:
    first = data[0]
    return isinstance(first, Sequence | np.ndarray) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in first
    )


def _is_textual(dtype: Any) -> bool:
    textual: bool = pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)  # pandas is untyped
    return textual


def _first_true(mask: Any) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


# Messages show what the caller sent, but a value from the wire may nest a thousand lists deep or hold a
# million items: the plain repr would recurse past the interpreter's limit or build megabytes to cut to 40.
def _short_repr() -> reprlib.Repr:
    short = reprlib.Repr()  # Python 3.11's Repr takes no keyword arguments
    short.maxlevel, short.maxlist, short.maxdict, short.maxtuple, short.maxset = 3, 4, 4, 4, 4
    short.maxstring = short.maxother = short.maxlong = 40
    return short


_SHORT_REPR = _short_repr()


def describe_value(value: Any) -> str:
    """A caller's value for an error message: at most 40 characters and a few levels, never recursing far."""
    text = _SHORT_REPR.repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{text} ({type(value).__name__})"


def _listing(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    more = f", … ({len(names) - limit} more)" if len(names) > limit else ""
    return f"[{shown}{more}]"
