"""MLflow's signature and input example translated into Shipyard's features, output type and sample.

MLflow records a model's inputs as column specs (named, typed) or tensor specs (dtype and shape), its
output the same way, and an input example as pandas or tf-serving JSON; Shipyard wants a tuple of typed
features, an output dtype and shape, and a sample frame with the features' names and types. That
translation is pure, on data already read, so it lives here, apart from ``mlflow_import.py``, which reads
the model directory, loads the model with its own library and registers it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.inference import infer_features
from shipyard.core.signature import FeatureSpec, FeatureType
from shipyard.errors import InvalidArgumentError, UnsupportedModelError

# MLflow column types: the Shipyard feature type, and the NumPy dtype MLflow means by it.
_COLUMN_TYPES: dict[str, tuple[FeatureType, str]] = {
    "boolean": (FeatureType.BOOLEAN, "bool"),
    "integer": (FeatureType.INTEGER, "int32"),
    "long": (FeatureType.INTEGER, "int64"),
    "float": (FeatureType.FLOAT, "float32"),
    "double": (FeatureType.FLOAT, "float64"),
    "string": (FeatureType.STRING, "string"),
    "datetime": (FeatureType.DATETIME, "datetime64[ns]"),
}
_TENSOR_KINDS = {
    "f": FeatureType.FLOAT,
    "i": FeatureType.INTEGER,
    "u": FeatureType.INTEGER,
    "b": FeatureType.BOOLEAN,
    "U": FeatureType.STRING,
    "O": FeatureType.STRING,
    "M": FeatureType.DATETIME,
}


# -- the signature ---------------------------------------------------------------------------------


def spec_list(value: Any, directory: Path, what: str) -> list[Mapping[str, Any]] | None:
    """MLflow stores each side of the signature as a JSON string in the YAML."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(
                f"the signature {what} in {directory / 'MLmodel'} are not valid JSON: {exc}"
            ) from exc
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise InvalidArgumentError(
            f"the signature {what} in {directory / 'MLmodel'} must be a JSON list of column or tensor specs"
        )
    return value or None


def features_from_mlflow(specs: list[Mapping[str, Any]] | None) -> tuple[FeatureSpec, ...] | None:
    """Shipyard features for MLflow's input specs (column-based or tensor-based), in MLflow's order."""
    if specs is None:
        return None
    if all(s.get("type") == "tensor" for s in specs):
        return _tensor_features(specs)
    if any(s.get("type") == "tensor" for s in specs):
        raise UnsupportedModelError(
            "the MLflow signature mixes column and tensor inputs; Shipyard takes one or the other"
        )
    named = [s.get("name") is not None for s in specs]
    features = []
    for i, spec in enumerate(specs):
        name = str(spec["name"]) if all(named) else f"f{i}"
        mlflow_type = spec.get("type")
        if mlflow_type not in _COLUMN_TYPES:
            raise UnsupportedModelError(
                f"input column {name!r} has MLflow type {json.dumps(mlflow_type)}; Shipyard features can be "
                f"{', '.join(_COLUMN_TYPES)}"
            )
        nullable = not spec.get("required", True)
        features.append(FeatureSpec(name, _COLUMN_TYPES[mlflow_type][0], nullable=nullable))
    return tuple(features)


def _tensor_features(specs: list[Mapping[str, Any]]) -> tuple[FeatureSpec, ...]:
    widths = [(_tensor_width(s), _tensor_type(s), s.get("name")) for s in specs]
    if len(widths) == 1:
        width, ftype, name = widths[0]
        if width == 1 and name:
            return (FeatureSpec(str(name), ftype),)
        return tuple(FeatureSpec(f"f{i}", ftype) for i in range(width))
    if all(width == 1 and name for width, _, name in widths):
        return tuple(FeatureSpec(str(name), ftype) for _, ftype, name in widths)
    raise UnsupportedModelError(
        f"the MLflow signature has {len(specs)} tensor inputs that are not all one named column each; "
        "Shipyard feeds a model one [rows, features] matrix, or one named column per feature"
    )


def _tensor_width(spec: Mapping[str, Any]) -> int:
    shape = (spec.get("tensor-spec") or {}).get("shape")
    label = repr(spec.get("name") or "input")
    if not isinstance(shape, list) or not 1 <= len(shape) <= 2 or not all(isinstance(d, int) for d in shape):
        raise UnsupportedModelError(
            f"tensor {label} has shape {shape}; Shipyard takes tensors of shape [-1] or [-1, features]"
        )
    width = shape[1] if len(shape) == 2 else 1
    if width < 1:
        raise UnsupportedModelError(f"tensor {label} has shape {shape}; its number of features must be fixed")
    return width


def _tensor_type(spec: Mapping[str, Any]) -> FeatureType:
    dtype = (spec.get("tensor-spec") or {}).get("dtype")
    try:
        kind: str = np.dtype(str(dtype)).kind
    except TypeError:
        kind = ""
    if kind not in _TENSOR_KINDS:
        raise UnsupportedModelError(
            f"tensor {spec.get('name') or 'input'!r} has dtype {dtype!r}; Shipyard features are numbers, "
            "booleans, strings or datetimes"
        )
    return _TENSOR_KINDS[kind]


def output_type_from_mlflow(specs: list[Mapping[str, Any]] | None) -> tuple[str, tuple[int, ...]] | None:
    """The element dtype and per-row shape of the model's first output, as MLflow recorded them."""
    if specs is None:
        return None
    first = specs[0]
    if first.get("type") == "tensor":
        tensor = first.get("tensor-spec") or {}
        try:
            element = np.dtype(str(tensor.get("dtype")))
        except TypeError:
            return None
        dtype = "string" if element.kind in "OUS" else str(element)
        shape = tuple(int(d) for d in (tensor.get("shape") or [-1])[1:])
        return dtype, shape
    known = _COLUMN_TYPES.get(str(first.get("type")))
    if known is None:
        return None
    return known[1], () if len(specs) == 1 else (len(specs),)


def in_model_order(
    features: tuple[FeatureSpec, ...], known: tuple[str, ...] | None, where: Path
) -> tuple[FeatureSpec, ...]:
    """A model fitted on named columns checks their order, so MLflow's features follow the model's."""
    if known is None:
        return features
    by_name = {f.name: f for f in features}
    if set(by_name) != set(known):
        missing = [n for n in known if n not in by_name]
        extra = [n for n in by_name if n not in known]
        raise InvalidArgumentError(
            f"the MLflow signature of {where} does not name the features the model was fitted on; "
            f"missing from the signature: {missing}; unknown to the model: {extra}"
        )
    return tuple(by_name[n] for n in known)


def with_ranges(features: tuple[FeatureSpec, ...], sample: pd.DataFrame) -> tuple[FeatureSpec, ...]:
    """Ranges and levels seen in the example; names, types and nullability stay MLflow's."""
    seen = {s.name: s for s in infer_features(sample[[f.name for f in features]])}
    merged = []
    for spec in features:
        got = seen[spec.name]
        if spec.type.is_numeric and got.type.is_numeric:
            spec = replace(spec, min=got.min, max=got.max)
        elif spec.type is FeatureType.STRING and got.type is FeatureType.STRING:
            spec = replace(spec, categories=got.categories)
        merged.append(replace(spec, missing_rate=got.missing_rate))
    return tuple(merged)


# -- the input example -------------------------------------------------------------------------------


def example_payload(payload: Any) -> pd.DataFrame | np.ndarray:
    """The example's table or rows out of any of the JSON shapes MLflow saves; a ValueError if none fits."""
    if isinstance(payload, Mapping):
        for key in ("dataframe_split", "dataframe_records", "inputs", "instances"):
            if key in payload:
                return example_payload(payload[key])
        if "columns" in payload and "data" in payload:
            return pd.DataFrame(payload["data"], columns=payload["columns"])
        return pd.DataFrame({str(k): v if isinstance(v, list) else [v] for k, v in payload.items()})
    if isinstance(payload, list) and payload and all(isinstance(row, Mapping) for row in payload):
        return pd.DataFrame.from_records(payload)
    if isinstance(payload, list) and payload:
        return np.asarray(payload)
    raise ValueError("it is neither a table (columns and data, or a list of records) nor a list of rows")


def example_input(example: pd.DataFrame | np.ndarray, features: tuple[FeatureSpec, ...] | None) -> Any:
    """The example as a frame with MLflow's column names and types, for the registry's checks."""
    if features is None:
        return example
    names = [f.name for f in features]
    if isinstance(example, pd.DataFrame):
        columns = [str(c) for c in example.columns]
        if set(names) <= set(columns):
            frame = example.set_axis(columns, axis=1)[names].copy()
        elif len(columns) == len(names):
            frame = example.set_axis(names, axis=1)
        else:
            raise InvalidArgumentError(
                f"the MLflow input example has columns {columns}, but MLflow's signature names {names}"
            )
    else:
        array = example.reshape(-1, 1) if example.ndim == 1 and len(names) == 1 else example
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[1] != len(names):
            raise InvalidArgumentError(
                f"the MLflow input example has shape {list(example.shape)}, but MLflow's signature has "
                f"{len(names)} features"
            )
        frame = pd.DataFrame(array, columns=names)
    for spec in features:
        try:
            if spec.type.is_numeric:
                frame[spec.name] = pd.to_numeric(frame[spec.name])
            elif spec.type is FeatureType.DATETIME:
                frame[spec.name] = pd.to_datetime(frame[spec.name])
        except (ValueError, TypeError) as exc:
            raise InvalidArgumentError(
                f"the MLflow input example's column {spec.name!r} does not hold {spec.type.value} values: {exc}"
            ) from exc
    return frame
