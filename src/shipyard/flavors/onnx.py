"""ONNX models, run by onnxruntime on the CPU; loading one runs no Python code from the artifact.

A graph takes either one ``[N, F]`` matrix (layout "array") or one ``[N, 1]`` input per feature, named
as the features (layout "frame", what skl2onnx makes of a ColumnTransformer over a DataFrame).
``to_onnx`` converts a scikit-learn model into such a graph and checks that it agrees with the original.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.inputs import InputLayout
from shipyard.errors import ConversionError, ModelLoadError, missing_dependency
from shipyard.flavors.base import Predictor, SavedModel, jsonable_params

# ONNX tensor element types (as onnxruntime spells them) and the NumPy dtype each is fed as.
_ELEMENT_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
    "tensor(string)": object,
}
_FLOAT_OUTPUTS = ("tensor(float)", "tensor(double)", "tensor(float16)")
# Written by ``to_onnx`` into the model's metadata: whether the second output holds probabilities.
PROBABILITIES_KEY = "shipyard.has_probabilities"
_CLASS_LABEL_ATTRIBUTES = ("classlabels_int64s", "classlabels_ints", "classlabels_strings")


class OnnxPredictor:
    """Feeds rows to an onnxruntime session in the graph's own input layout and element types."""

    def __init__(self, session: Any, *, classes: Sequence[Any] | None, probabilities: bool = True) -> None:
        self.session = session
        self.classes: tuple[Any, ...] | None = tuple(classes) if classes is not None else None
        inputs = session.get_inputs()
        self._inputs = [(i.name, _ELEMENT_DTYPES.get(i.type, np.float32), len(i.shape)) for i in inputs]
        self._matrix = _is_matrix_graph([len(i.shape) for i in inputs])
        outputs = session.get_outputs()
        self._label = outputs[0].name
        self._proba: str | None = None
        self._zipmap = False
        for out in outputs[1:] if probabilities else ():
            if out.type in _FLOAT_OUTPUTS and len(out.shape) == 2:
                self._proba = out.name
                break
            if out.type.startswith("seq(map("):  # skl2onnx's ZipMap: one {class: probability} per row
                self._proba, self._zipmap = out.name, True
                break

    def predict(self, x: Any) -> np.ndarray:
        (labels,) = self.session.run([self._label], self._feed(x))
        labels = np.asarray(labels)
        return labels.ravel() if labels.ndim == 2 and labels.shape[1] == 1 else labels

    def predict_proba(self, x: Any) -> np.ndarray | None:
        if self._proba is None or self.classes is None:
            return None
        (proba,) = self.session.run([self._proba], self._feed(x))
        if self._zipmap:
            return np.asarray([[row[c] for c in self.classes] for row in proba], dtype=np.float32)
        return np.asarray(proba)

    def _feed(self, x: Any) -> dict[str, np.ndarray]:
        if self._matrix:
            name, dtype, _ = self._inputs[0]
            matrix = x.to_numpy() if isinstance(x, pd.DataFrame) else np.asarray(x)
            return {name: _as_element_type(matrix, dtype)}
        feed: dict[str, np.ndarray] = {}
        for position, (name, dtype, rank) in enumerate(self._inputs):
            if isinstance(x, pd.DataFrame):
                column = x[name].to_numpy(dtype=object if dtype is object else None)
            else:
                column = np.asarray(x)[:, position]
            column = _as_element_type(column, dtype)
            feed[name] = column.reshape(-1, 1) if rank == 2 else column
        return feed


class OnnxFlavor:
    """``onnx.ModelProto`` objects and ``.onnx`` files."""

    name = "onnx"

    def handles(self, model: Any) -> bool:
        cls = type(model)
        return cls.__name__ == "ModelProto" and cls.__module__.split(".")[0] == "onnx"

    def save(self, model: Any, *, trusted: bool = False) -> SavedModel:
        names = self.feature_names(model)
        options: dict[str, Any] = {
            "format": "onnx",
            "input": (InputLayout.FRAME if names is not None else InputLayout.ARRAY).value,
        }
        classes = graph_classes(model)
        if classes is not None:
            options["classes"] = list(classes)
        marks = {prop.key: prop.value for prop in model.metadata_props}
        if PROBABILITIES_KEY in marks:
            options["probabilities"] = marks[PROBABILITIES_KEY] == "true"
        return SavedModel(model.SerializeToString(), options)

    def load(self, data: bytes, options: Mapping[str, Any], *, trusted: bool = False) -> Predictor:
        try:
            import onnxruntime
        except ImportError as exc:
            raise missing_dependency("onnxruntime", "onnx", "the onnx flavor") from exc
        try:
            session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's InvalidProtobuf, Fail, InvalidGraph, …
            raise ModelLoadError(f"onnxruntime could not load the model: {exc}") from exc
        classes = options.get("classes")
        if classes is None:
            classes = _classes_from_bytes(data)
        return OnnxPredictor(session, classes=classes, probabilities=bool(options.get("probabilities", True)))

    def hyperparameters(self, model: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "producer_name": model.producer_name,
            "producer_version": model.producer_version,
            "ir_version": model.ir_version,
        }
        for opset in model.opset_import:
            params[f"opset.{opset.domain or 'ai.onnx'}"] = opset.version
        for prop in model.metadata_props:
            params[f"metadata.{prop.key}"] = prop.value
        return jsonable_params(params)

    def feature_names(self, model: Any) -> tuple[str, ...] | None:
        inputs = _graph_inputs(model)
        ranks = [len(i.type.tensor_type.shape.dim) for i in inputs]
        return None if _is_matrix_graph(ranks) else tuple(i.name for i in inputs)

    def read_file(self, path: str, *, trusted: bool = False) -> Any:
        onnx = _require_onnx()
        file = Path(path)
        try:
            return onnx.load(str(file))
        except Exception as exc:  # DecodeError and friends
            raise ModelLoadError(f"{file.name} is not a readable ONNX model: {exc}") from exc


def graph_classes(model: Any) -> tuple[Any, ...] | None:
    """Class labels written in the graph's ONNX-ML classifier (or ZipMap) node, if it has one."""
    found = None
    for node in model.graph.node:
        if node.domain != "ai.onnx.ml" or not (node.op_type.endswith("Classifier") or node.op_type == "ZipMap"):
            continue
        for attribute in node.attribute:
            if attribute.name in _CLASS_LABEL_ATTRIBUTES:
                labels = attribute.strings or attribute.ints
                values = tuple(v.decode("utf-8") if isinstance(v, bytes) else int(v) for v in labels)
                if node.op_type != "ZipMap":
                    return values
                found = values
    return found


def to_onnx(model: Any, sample: Any, *, feature_names: Sequence[str], all_numeric: bool) -> Any:
    """Convert a scikit-learn model with skl2onnx, shaped to how Shipyard feeds it rows.

    A model whose inputs are all numeric gets one float ``[N, F]`` input named "input", the columns in
    signature order: that is what skl2onnx's estimators take (a linear model or a forest accepts one
    tensor, not one per column). A model with a ``ColumnTransformer`` fitted on a DataFrame picks its
    columns by name, so it keeps one ``[N, 1]`` input per column, typed as the column (mixed types
    survive). Classifiers output a probability matrix, not a ZipMap. The result is kept only when it
    answers like the original on ``sample`` (see ``_check_agreement``).
    """
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
    except ImportError as exc:
        raise missing_dependency("skl2onnx", "onnx", "converting a model to ONNX") from exc
    from shipyard.core.inference import as_frame

    frame = as_frame(sample, feature_names=None if isinstance(sample, pd.DataFrame) else feature_names)
    names = [str(n) for n in feature_names]
    named_inputs = hasattr(model, "feature_names_in_") and (_selects_columns(model) or not all_numeric)
    if named_inputs:
        initial_types: list[tuple[str, Any]] = []
        for name in names:
            dtype = frame[name].dtype
            if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
                initial_types.append((name, Int64TensorType([None, 1])))
            elif pd.api.types.is_numeric_dtype(dtype):
                initial_types.append((name, FloatTensorType([None, 1])))
            else:
                initial_types.append((name, StringTensorType([None, 1])))
    elif all_numeric:
        initial_types = [("input", FloatTensorType([None, len(names)]))]
    else:
        raise ConversionError(
            f"cannot convert {type(model).__name__} to ONNX: it was fitted on a matrix with non-numeric "
            "columns, which ONNX cannot type as one tensor; fit it on a pandas DataFrame instead"
        )
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    has_probabilities = _is_classifier(final) and hasattr(final, "predict_proba")
    options = {id(final): {"zipmap": False}} if has_probabilities else None
    try:
        onnx_model = convert_sklearn(
            model, initial_types=initial_types, options=options, custom_conversion_functions=_converters()
        )
    except Exception as exc:  # skl2onnx raises RuntimeError/NotImplementedError/MissingShapeCalculator
        raise ConversionError(_unsupported(model, exc)) from exc
    # skl2onnx names a classifier's second output "probabilities" even when it holds decision scores
    # (LinearSVC, SVC without probability=True); the mark tells the flavor which it is.
    if _is_classifier(final):
        mark = onnx_model.metadata_props.add()
        mark.key, mark.value = PROBABILITIES_KEY, "true" if has_probabilities else "false"
    _check_agreement(model, onnx_model, frame if hasattr(model, "feature_names_in_") else frame.to_numpy())
    return onnx_model


def _selects_columns(model: Any) -> bool:
    """Whether the model (or a step of it) is a ColumnTransformer, which picks DataFrame columns by name."""
    from sklearn.compose import ColumnTransformer

    if isinstance(model, ColumnTransformer):
        return True
    parts = [step for _, step in getattr(model, "steps", [])]
    parts += [step for _, step, *_ in getattr(model, "transformer_list", [])]
    return any(_selects_columns(part) for part in parts)


def _converters() -> dict[type, Any]:
    """Shipyard's converters for estimators whose skl2onnx converter needs help.

    HistGradientBoosting: skl2onnx writes each leaf's "missing values go left" flag as a Python bool into an
    integer attribute, which current protobuf refuses ("Expected an int, got a boolean"), so no such model
    converts; the same converter, with the flags written as 0/1, does.
    """
    try:
        from skl2onnx.operator_converters.random_forest import (
            convert_sklearn_random_forest_classifier,
            convert_sklearn_random_forest_regressor_converter,
        )
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    except ImportError:  # another skl2onnx layout: use its own converters
        return {}

    def classifier(scope: Any, operator: Any, container: Any) -> None:
        convert_sklearn_random_forest_classifier(scope, operator, _IntegerFlags(container))

    def regressor(scope: Any, operator: Any, container: Any) -> None:
        convert_sklearn_random_forest_regressor_converter(scope, operator, _IntegerFlags(container))

    return {HistGradientBoostingClassifier: classifier, HistGradientBoostingRegressor: regressor}


class _IntegerFlags:
    """A skl2onnx container whose ``add_node`` writes booleans in list attributes as the integers ONNX wants."""

    def __init__(self, container: Any) -> None:
        self._container = container

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(self, *args: Any, **attributes: Any) -> Any:
        for key, value in attributes.items():
            if isinstance(value, list) and any(isinstance(v, bool | np.bool_) for v in value):
                attributes[key] = [int(v) if isinstance(v, bool | np.bool_) else v for v in value]
        return self._container.add_node(*args, **attributes)


_UNSUPPORTED_TYPE = re.compile(r"<class '(?:[\w.]+\.)?(\w+)'>")


def _unsupported(model: Any, exc: Exception) -> str:
    """One line naming the estimator skl2onnx could not convert (its own message can run to pages)."""
    described = _describe_estimator(model)
    found = _UNSUPPORTED_TYPE.search(str(exc))
    if found is not None:
        where = f" (in {described})" if found.group(1) != described else ""
        return (
            f"skl2onnx cannot convert {found.group(1)}{where} to ONNX: it has no converter for it; "
            "register the model with the sklearn flavor instead"
        )
    reason = " ".join(str(exc).split())
    reason = reason if len(reason) <= 200 else reason[:200] + "…"
    return f"skl2onnx cannot convert {described} to ONNX: {reason}; register the model with the sklearn flavor instead"


# A converted model answers in float32: probabilities may differ from scikit-learn's float64 by rounding.
PROBABILITY_ATOL = 1e-4
PROBABILITY_RTOL = 1e-4


def _check_agreement(model: Any, onnx_model: Any, sample: Any) -> None:
    """Refuse a conversion whose labels or probabilities differ from the original's beyond float32 rounding.

    Probabilities must agree within ``PROBABILITY_ATOL + PROBABILITY_RTOL * |p|``; labels must agree on every
    row except where the original's two most probable classes are that close (a tie float32 may break the
    other way).
    """
    described = _describe_estimator(model)
    try:
        predictor = OnnxFlavor().load(onnx_model.SerializeToString(), {})
    except ModelLoadError as exc:  # converted with operators onnxruntime does not run (GaussianProcess: Solve)
        raise ConversionError(
            f"the ONNX model made from {described} does not run in onnxruntime ({' '.join(str(exc).split())}); "
            "register the model with the sklearn flavor instead"
        ) from exc
    x = sample.astype(np.float64) if isinstance(sample, np.ndarray) else sample
    labels, want_labels = np.asarray(predictor.predict(x)), np.asarray(model.predict(x))
    if labels.shape != want_labels.shape:
        raise ConversionError(
            f"the ONNX model made from {described} returns shape {labels.shape}, but the original returns "
            f"{want_labels.shape}; register the model with the sklearn flavor instead"
        )
    proba = predictor.predict_proba(x) if hasattr(model, "predict_proba") else None
    if proba is not None:
        got, want = np.asarray(proba, dtype=np.float64), np.asarray(model.predict_proba(x), dtype=np.float64)
        _check_close(got, want, described, "probabilities")
        ordered = np.sort(want, axis=1)
        margin = ordered[:, -1] - (ordered[:, -2] if want.shape[1] > 1 else 0.0)
        clear = margin > 2 * (PROBABILITY_ATOL + PROBABILITY_RTOL)
        mismatched = int(np.sum((labels.astype(str) != want_labels.astype(str)) & clear))
        if mismatched:
            raise ConversionError(
                f"the ONNX model made from {described} gives other labels than the original on {mismatched} of "
                f"{want_labels.size} sample rows; register the model with the sklearn flavor instead"
            )
        return
    if want_labels.dtype.kind in "fc":
        _check_close(labels.astype(np.float64), want_labels.astype(np.float64), described, "predictions")
        return
    # Labels from a classifier without probabilities: float32 may flip a row on the decision boundary.
    mismatched = int(np.sum(labels.astype(str) != want_labels.astype(str)))
    if mismatched > 0.01 * want_labels.size:
        raise ConversionError(
            f"the ONNX model made from {described} gives other labels than the original on {mismatched} of "
            f"{want_labels.size} sample rows; register the model with the sklearn flavor instead"
        )


def _check_close(got: np.ndarray, want: np.ndarray, described: str, what: str) -> None:
    if got.shape != want.shape:
        raise ConversionError(
            f"the ONNX model made from {described} returns {what} of shape {got.shape}, but the original "
            f"{want.shape}; register the model with the sklearn flavor instead"
        )
    difference = np.abs(got - want)
    if not np.all(difference <= PROBABILITY_ATOL + PROBABILITY_RTOL * np.abs(want)):
        raise ConversionError(
            f"the ONNX model made from {described} disagrees with the original's {what} on the sample (largest "
            f"difference {float(difference.max()):.3g}, allowed {PROBABILITY_ATOL:g} + {PROBABILITY_RTOL:g}·|value|); "
            "register it with the sklearn flavor instead"
        )


def _is_matrix_graph(ranks: Sequence[int]) -> bool:
    """One 2-D input is a feature matrix; anything else is one input per feature."""
    return len(ranks) == 1 and ranks[0] == 2


def _graph_inputs(model: Any) -> list[Any]:
    # Older IR versions list initializers (weights) among the inputs; they are not fed by callers.
    weights = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in weights]


def _as_element_type(values: np.ndarray, dtype: Any) -> np.ndarray:
    if dtype is object:
        return np.asarray([v if isinstance(v, str) else str(v) for v in values.ravel()], dtype=object).reshape(
            values.shape
        )
    return np.ascontiguousarray(values, dtype=dtype)


def _classes_from_bytes(data: bytes) -> tuple[Any, ...] | None:
    try:
        import onnx
    except ImportError:  # serving needs only onnxruntime; without onnx the options must carry classes
        return None
    try:
        return graph_classes(onnx.load_from_string(data))
    except Exception:
        return None


def _is_classifier(estimator: Any) -> bool:
    from sklearn.base import is_classifier

    return bool(is_classifier(estimator))


def _describe_estimator(model: Any) -> str:
    name = type(model).__name__
    if hasattr(model, "steps"):
        return f"{name}({' -> '.join(type(step).__name__ for _, step in model.steps)})"
    return name


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise missing_dependency("onnx", "onnx", "the onnx flavor") from exc
    return onnx
