"""Infer a signature from sample rows and a model's outputs, refusing loudly when it cannot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.signature import FeatureSpec, FeatureType, OutputKind, OutputSpec, Signature
from shipyard.core.versions import ModelVersion
from shipyard.errors import SignatureInferenceError

# A string column with at most this many distinct values is treated as categorical and its levels kept.
MAX_CATEGORIES = 200


def default_feature_names(n: int) -> tuple[str, ...]:
    """Names for the columns of a bare matrix, matching the order the model receives them in."""
    return tuple(f"f{i}" for i in range(n))


def as_frame(data: Any, *, feature_names: Sequence[str] | None = None, what: str = "sample_input") -> pd.DataFrame:
    """Turn any supported tabular input into a DataFrame, for inference and profiling (not serving)."""
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise SignatureInferenceError(f"{what} must be 2-D (rows x features); got an array of shape {data.shape}")
        names = tuple(feature_names) if feature_names is not None else default_feature_names(data.shape[1])
        if len(names) != data.shape[1]:
            raise SignatureInferenceError(
                f"{what} has {data.shape[1]} columns, but the model expects {len(names)} features"
            )
        frame = pd.DataFrame(data, columns=list(names))
    elif isinstance(data, Mapping):
        try:
            frame = pd.DataFrame({str(k): list(v) for k, v in data.items()})
        except (TypeError, ValueError) as exc:
            raise SignatureInferenceError(
                f"{what} as a dict must map feature names to equal-length lists of values: {exc}"
            ) from exc
    elif isinstance(data, Sequence) and not isinstance(data, str) and data and isinstance(data[0], Mapping):
        frame = pd.DataFrame.from_records(list(data))
    elif isinstance(data, Sequence) and not isinstance(data, str):
        return as_frame(np.asarray(data), feature_names=feature_names, what=what)
    else:
        raise SignatureInferenceError(
            f"{what} must be a pandas DataFrame, a dict of columns, a list of row dicts or a 2-D "
            f"NumPy array; got {type(data).__name__}"
        )
    if len(frame) == 0:
        raise SignatureInferenceError(f"{what} has no rows; give at least one example row")
    if frame.columns.has_duplicates:
        dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise SignatureInferenceError(f"{what} has duplicate columns: {dupes}")
    return frame


def infer_features(frame: pd.DataFrame) -> tuple[FeatureSpec, ...]:
    """One FeatureSpec per column: type, nullability, levels and ranges seen."""
    return tuple(_infer_feature(str(name), frame[name]) for name in frame.columns)


def _infer_feature(name: str, column: pd.Series) -> FeatureSpec:
    missing = int(column.isna().sum())
    rows = len(column)
    missing_rate = missing / rows if rows else 0.0
    nullable = missing > 0
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        levels = tuple(_plain(v) for v in dtype.categories)
        ftype = _type_of_values(name, list(dtype.categories))
        return FeatureSpec(name, ftype, nullable, categories=levels, missing_rate=missing_rate)
    if pd.api.types.is_bool_dtype(dtype):
        return FeatureSpec(name, FeatureType.BOOLEAN, nullable, missing_rate=missing_rate)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return FeatureSpec(name, FeatureType.DATETIME, nullable, missing_rate=missing_rate)
    if pd.api.types.is_numeric_dtype(dtype):
        ftype = FeatureType.INTEGER if pd.api.types.is_integer_dtype(dtype) else FeatureType.FLOAT
        return _numeric_spec(name, ftype, column, nullable, missing_rate)
    values = column.dropna().tolist()
    if not values:
        raise SignatureInferenceError(
            f"cannot infer the type of feature {name!r}: every value in the sample is missing; "
            "give a sample with at least one value in it"
        )
    ftype = _type_of_values(name, values)
    if ftype is FeatureType.STRING:
        distinct = sorted(set(values))
        categories = tuple(distinct) if len(distinct) <= MAX_CATEGORIES else None
        return FeatureSpec(name, ftype, nullable, categories=categories, missing_rate=missing_rate)
    if ftype.is_numeric:
        return _numeric_spec(name, ftype, pd.to_numeric(column), nullable, missing_rate)
    return FeatureSpec(name, ftype, nullable, missing_rate=missing_rate)


def _numeric_spec(name: str, ftype: FeatureType, column: pd.Series, nullable: bool, missing_rate: float) -> FeatureSpec:
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = values[np.isfinite(values)]
    low = float(finite.min()) if finite.size else None
    high = float(finite.max()) if finite.size else None
    return FeatureSpec(name, ftype, nullable, min=low, max=high, missing_rate=missing_rate)


def _type_of_values(name: str, values: list[Any]) -> FeatureType:
    kinds = {_kind(v) for v in values}
    if len(kinds) == 1:
        return kinds.pop()
    if kinds == {FeatureType.INTEGER, FeatureType.FLOAT}:
        return FeatureType.FLOAT
    seen = ", ".join(sorted(k.value for k in kinds))
    raise SignatureInferenceError(
        f"cannot infer the type of feature {name!r}: its sample values mix {seen}; cast the column "
        "to one type before registering"
    )


def _kind(value: Any) -> FeatureType:
    if isinstance(value, bool | np.bool_):
        return FeatureType.BOOLEAN
    if isinstance(value, int | np.integer):
        return FeatureType.INTEGER
    if isinstance(value, float | np.floating):
        return FeatureType.FLOAT
    if isinstance(value, str):
        return FeatureType.STRING
    if isinstance(value, pd.Timestamp | np.datetime64):
        return FeatureType.DATETIME
    raise SignatureInferenceError(
        f"cannot infer a feature type for values of type {type(value).__name__} ({value!r}); "
        "features must be numbers, booleans, strings or datetimes"
    )


def _plain(value: Any) -> Any:
    """NumPy scalars become Python ones, so a signature stores as JSON."""
    return value.item() if isinstance(value, np.generic) else value


def example_rows(frame: pd.DataFrame, limit: int = 20) -> tuple[dict[str, Any], ...]:
    """The first rows as JSON objects (missing values as null), to keep with the version."""
    rows = []
    for record in frame.head(limit).to_dict(orient="records"):
        rows.append({str(k): _json_value(v) for k, v in record.items()})
    return tuple(rows)


def _json_value(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    value = _plain(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def infer_output(predictions: Any, *, classes: Sequence[Any] | None, has_probabilities: bool) -> OutputSpec:
    """Describe what the model returned on the sample, so callers and monitors know what to expect."""
    array = np.asarray(predictions)
    if array.ndim == 0:
        raise SignatureInferenceError("the model returned a scalar for a batch; expected one output per row")
    shape = tuple(int(d) for d in array.shape[1:])
    dtype = "string" if array.dtype.kind in "OUS" else str(array.dtype)
    if classes is not None:
        plain = tuple(_plain(c) for c in classes)
        return OutputSpec(OutputKind.CLASSIFICATION, dtype, shape, plain, has_probabilities)
    if array.dtype.kind == "f" and shape in ((), (1,)):
        return OutputSpec(OutputKind.REGRESSION, dtype, shape)
    return OutputSpec(OutputKind.TENSOR, dtype, shape)


def warm_rows(version: ModelVersion, count: int = 4) -> list[dict[str, Any]]:
    """Rows to warm a model with: its stored input example, else values made from its signature."""
    if version.input_example:
        return [dict(r) for r in version.input_example[:count]]
    return [_synthetic_row(version.signature, i) for i in range(count)]


def _synthetic_row(signature: Signature, i: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for f in signature.features:
        if f.categories:
            row[f.name] = f.categories[i % len(f.categories)]
        elif f.type.is_numeric:
            low = f.min if f.min is not None else 0.0
            high = f.max if f.max is not None else low
            value = low + (high - low) * (i + 1) / 5
            row[f.name] = round(value) if f.type is FeatureType.INTEGER else value
        elif f.type is FeatureType.BOOLEAN:
            row[f.name] = bool(i % 2)
        elif f.type is FeatureType.DATETIME:
            row[f.name] = "2024-01-01T00:00:00"
        else:
            row[f.name] = "x"
    return row
