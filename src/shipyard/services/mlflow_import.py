"""Register a model directory saved by MLflow, without MLflow installed, keeping MLflow's signature.

MLflow writes an ``MLmodel`` YAML file beside the model's files: the flavors it was saved with and the
file each one reads, the signature (inputs and outputs as JSON strings) and an optional input example.
The model is read back with its own library into a live object, which the registry then saves in
Shipyard's format; feature names and types come from MLflow's signature, ranges from the example.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from shipyard.core.inputs import InputAdapter
from shipyard.core.signature import FeatureSpec, OutputKind, OutputSpec, Signature
from shipyard.core.versions import ModelVersion
from shipyard.errors import (
    InvalidArgumentError,
    MissingDependencyError,
    ModelLoadError,
    ShipyardError,
    SignatureError,
    SignatureInferenceError,
    UnsupportedModelError,
    UntrustedArtifactError,
    missing_dependency,
)
from shipyard.flavors.base import Predictor, layout_option
from shipyard.flavors.registry import detect_flavor, get_flavor
from shipyard.services.mlflow_signature import (
    example_input,
    example_payload,
    features_from_mlflow,
    in_model_order,
    output_type_from_mlflow,
    spec_list,
    with_ranges,
)
from shipyard.services.registration import RegistrationOptions
from shipyard.services.registry import RegistryService

# Framework formats come before the generic scikit-learn pickle: when an MLmodel lists several
# flavors, the one that loads without unpickling (and so without trust) is the one read.
SUPPORTED_FLAVORS = ("xgboost", "lightgbm", "onnx", "sklearn")
_DATA_KEYS = {"sklearn": "pickled_model", "xgboost": "data", "lightgbm": "data", "onnx": "data"}
_XGBOOST_CLASSES = (
    "Booster",
    "XGBClassifier",
    "XGBRegressor",
    "XGBRFClassifier",
    "XGBRFRegressor",
    "XGBRanker",
)
_LIGHTGBM_PICKLED = ("LGBMClassifier", "LGBMRegressor", "LGBMRanker", "LGBMModel")


def import_mlflow_model(registry: RegistryService, path: str, *, name: str, trusted: bool = False) -> ModelVersion:
    """Register an MLflow model directory as the next version of ``name``; nothing is stored on failure."""
    directory = _model_directory(path)
    mlmodel = _read_mlmodel(directory)
    kind, section = _choose_flavor(mlmodel, directory)
    data_file = _data_file(directory, kind, section)
    block = mlmodel.get("signature") or {}
    if not isinstance(block, Mapping):
        raise InvalidArgumentError(f"the signature in {directory / 'MLmodel'} is not a mapping")
    features = features_from_mlflow(spec_list(block.get("inputs"), directory, "inputs"))
    output_type = output_type_from_mlflow(spec_list(block.get("outputs"), directory, "outputs"))
    example = _read_example(directory, mlmodel.get("saved_input_example_info"))
    if features is None and example is None:
        raise SignatureInferenceError(
            f"the MLflow model at {directory} has no signature and no input example, so its inputs are "
            "unknown; nothing was registered. Log it again with a signature (mlflow.models.infer_signature) "
            "or an input_example, or register the model file with `shipyard models register --sample`"
        )
    model = _load_model(data_file, kind, section, trusted=trusted)
    sample = example_input(example, features) if example is not None else None
    signature = None
    if features is not None:
        signature = _signature(model, features, output_type, sample, name=name, trusted=trusted, where=directory)
    options = RegistrationOptions(
        name=name,
        sample_input=sample,
        signature=signature,
        trusted=trusted,
        source=f"mlflow:{directory}",
        tags=_tags(mlmodel, kind),
    )
    return registry.register(model, options)


# -- the MLmodel file ----------------------------------------------------------------------------


def _model_directory(path: str) -> Path:
    directory = Path(path).expanduser().resolve()
    if not directory.is_dir():
        what = "does not exist" if not directory.exists() else "is not a directory"
        raise InvalidArgumentError(
            f"{path} {what}; give the directory MLflow saved the model to (the one holding its MLmodel file)"
        )
    if not (directory / "MLmodel").is_file():
        # An MLflow run keeps its model a few levels down (<run>/artifacts/model); point at the nearest.
        below = [f.parent for depth in range(1, 4) for f in sorted(directory.glob("*/" * depth + "MLmodel"))]
        hint = f"; did you mean {below[0]}?" if below else ""
        raise InvalidArgumentError(
            f"{directory} has no MLmodel file, so it is not a model directory saved by MLflow{hint}"
        )
    return directory


def _read_mlmodel(directory: Path) -> Mapping[str, Any]:
    file = directory / "MLmodel"
    try:
        content = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problem = " ".join(str(exc).split())
        raise InvalidArgumentError(f"{file} is not valid YAML: {problem}") from exc
    if not isinstance(content, Mapping):
        raise InvalidArgumentError(f"{file} does not hold a YAML mapping; it is not an MLflow MLmodel file")
    flavors = content.get("flavors")
    if not isinstance(flavors, Mapping) or not flavors:
        raise InvalidArgumentError(f"{file} has no 'flavors' section; it is not an MLflow MLmodel file")
    return content


def _choose_flavor(mlmodel: Mapping[str, Any], directory: Path) -> tuple[str, Mapping[str, Any]]:
    flavors = mlmodel["flavors"]
    for kind in SUPPORTED_FLAVORS:
        section = flavors.get(kind)
        if section is not None:
            if not isinstance(section, Mapping):
                raise InvalidArgumentError(f"the {kind} flavor in {directory / 'MLmodel'} is not a mapping")
            return kind, section
    found = ", ".join(str(f) for f in flavors)
    raise UnsupportedModelError(
        f"the MLflow model at {directory} has flavors {found}, none of which Shipyard can import; supported "
        f"MLflow flavors: {', '.join(sorted(SUPPORTED_FLAVORS))}"
    )


def _data_file(directory: Path, kind: str, section: Mapping[str, Any]) -> Path:
    key = _DATA_KEYS[kind]
    relative = section.get(key)
    where = f"the {kind} flavor in {directory / 'MLmodel'}"
    if not isinstance(relative, str) or not relative:
        raise InvalidArgumentError(f"{where} names no model file ({key!r})")
    file = (directory / relative).resolve()
    if not file.is_relative_to(directory):
        raise InvalidArgumentError(f"{where} names {relative!r}, which is outside the model directory")
    if not file.is_file():
        raise InvalidArgumentError(f"{where} names model file {relative!r}, but {directory} has no such file")
    return file


def _tags(mlmodel: Mapping[str, Any], kind: str) -> dict[str, str]:
    tags = {"mlflow_flavor": kind}
    for key, tag in (
        ("run_id", "mlflow_run_id"),
        ("model_uuid", "mlflow_model_uuid"),
        ("mlflow_version", "mlflow_version"),
        ("artifact_path", "mlflow_artifact_path"),
    ):
        value = mlmodel.get(key)
        if value not in (None, ""):
            tags[tag] = str(value)
    return tags


# -- loading the model -----------------------------------------------------------------------------


def _load_model(file: Path, kind: str, section: Mapping[str, Any], *, trusted: bool) -> Any:
    try:
        if kind == "sklearn":
            return _load_sklearn(file, section, trusted=trusted)
        if kind == "xgboost":
            return _load_xgboost(file, section)
        if kind == "lightgbm":
            return _load_lightgbm(file, section, trusted=trusted)
        return get_flavor("onnx").read_file(str(file))
    except ShipyardError:
        raise
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        raise ModelLoadError(
            f"cannot read the MLflow {kind} model {file}: {type(exc).__name__}: {lines[0] if lines else ''}"
        ) from exc


def _load_sklearn(file: Path, section: Mapping[str, Any], *, trusted: bool) -> Any:
    fmt = str(section.get("serialization_format", "cloudpickle"))
    if fmt == "skops":
        return get_flavor("sklearn").read_file(str(file), trusted=trusted)
    if fmt not in ("pickle", "cloudpickle"):
        raise UnsupportedModelError(
            f"the sklearn flavor of {file.parent} uses serialization_format {fmt!r}; Shipyard reads "
            "cloudpickle, pickle and skops"
        )
    _require_trust(file, f"sklearn flavor, serialization_format {fmt}", trusted=trusted)
    return _unpickle(file, section)


def _load_xgboost(file: Path, section: Mapping[str, Any]) -> Any:
    model_class = str(section.get("model_class", "xgboost.core.Booster"))
    module, _, class_name = model_class.rpartition(".")
    if module.split(".")[0] != "xgboost" or class_name not in _XGBOOST_CLASSES:
        raise UnsupportedModelError(
            f"the xgboost flavor of {file.parent} has model_class {model_class!r}; Shipyard rebuilds "
            f"xgboost.{', xgboost.'.join(_XGBOOST_CLASSES)}"
        )
    try:
        import xgboost
    except ImportError as exc:
        raise missing_dependency("xgboost", "xgboost", "importing an MLflow xgboost model") from exc
    model = getattr(xgboost, class_name)()
    # From bytes, XGBoost tells JSON from UBJSON by content; from a path it guesses by the extension
    # (and warns about MLflow's ``.xgb``).
    model.load_model(bytearray(file.read_bytes()))
    return model


def _load_lightgbm(file: Path, section: Mapping[str, Any], *, trusted: bool) -> Any:
    model_class = str(section.get("model_class", "lightgbm.basic.Booster"))
    module, _, class_name = model_class.rpartition(".")
    if module.split(".")[0] == "lightgbm" and class_name == "Booster":
        return get_flavor("lightgbm").read_file(str(file))
    if module.split(".")[0] == "lightgbm" and class_name in _LIGHTGBM_PICKLED:
        # MLflow saves the scikit-learn API models with cloudpickle, not in LightGBM's text format.
        _require_trust(file, f"lightgbm flavor, model_class {model_class}", trusted=trusted)
        return _unpickle(file, section)
    raise UnsupportedModelError(
        f"the lightgbm flavor of {file.parent} has model_class {model_class!r}; Shipyard reads "
        f"lightgbm.Booster and lightgbm.{', lightgbm.'.join(_LIGHTGBM_PICKLED)}"
    )


def _require_trust(file: Path, how: str, *, trusted: bool) -> None:
    if not trusted:
        raise UntrustedArtifactError(
            f"MLflow pickled the model in {file} ({how}), and loading a pickle can run arbitrary code; pass "
            "--trusted (trusted=True) only if you trust where it came from"
        )


def _unpickle(file: Path, section: Mapping[str, Any]) -> Any:
    try:
        with file.open("rb") as stream:
            return pickle.load(stream)
    except ModuleNotFoundError as exc:
        module = exc.name or str(exc)
        if module.split(".")[0] == "cloudpickle":
            raise MissingDependencyError(
                f"the model in {file} was pickled by cloudpickle with objects only cloudpickle can rebuild, "
                "and cloudpickle is not installed: pip install cloudpickle"
            ) from exc
        code = section.get("code")
        hint = f"; MLflow kept the model's own code in {file.parent / str(code)}" if code else ""
        raise ModelLoadError(
            f"the pickled model in {file} needs the Python module {module!r}, which is not installed here; "
            f"install the libraries it was trained with{hint}"
        ) from exc


# -- the signature ---------------------------------------------------------------------------------


def _signature(
    model: Any,
    features: tuple[FeatureSpec, ...],
    output_type: tuple[str, tuple[int, ...]] | None,
    sample: pd.DataFrame | None,
    *,
    name: str,
    trusted: bool,
    where: Path,
) -> Signature:
    """MLflow's features, in the order the model takes them, and an output described by the loaded model."""
    flavor = detect_flavor(model)
    saved = flavor.save(model, trusted=trusted)
    try:
        predictor = flavor.load(saved.data, saved.options, trusted=True)
    except ShipyardError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"the {flavor.name} model could not be loaded back: {type(exc).__name__}: {exc}") from exc
    features = in_model_order(features, flavor.feature_names(model), where)
    x = None
    if sample is not None:
        features = with_ranges(features, sample)
        provisional = Signature(features, OutputSpec(OutputKind.TENSOR, "float64"))
        try:
            x = InputAdapter(provisional, layout=layout_option(saved.options), label=name)(sample)
        except SignatureError as exc:
            raise SignatureInferenceError(f"the MLflow input example does not fit MLflow's signature: {exc}") from exc
    return Signature(features, _output(output_type, predictor, model, x))


def _output(output_type: tuple[str, tuple[int, ...]] | None, predictor: Predictor, model: Any, x: Any) -> OutputSpec:
    classes = predictor.classes
    if classes is not None:
        labels = tuple(c.item() if isinstance(c, np.generic) else c for c in classes)
        if output_type is None:
            array = np.asarray(labels)
            output_type = ("string" if array.dtype.kind in "OUS" else str(array.dtype), ())
        dtype, shape = output_type
        proba = _gives_probabilities(predictor, model, x)
        return OutputSpec(OutputKind.CLASSIFICATION, dtype, shape, labels, proba)
    if output_type is None:
        # Unknown until the model answers: with an example the registry infers a TENSOR output from
        # the predictions; without one, every flavor Shipyard imports returns numbers.
        return OutputSpec(OutputKind.TENSOR, "float64")
    dtype, shape = output_type
    regression = dtype.startswith("float") and shape in ((), (1,))
    return OutputSpec(OutputKind.REGRESSION if regression else OutputKind.TENSOR, dtype, shape)


def _gives_probabilities(predictor: Predictor, model: Any, x: Any) -> bool:
    if x is not None:
        try:
            return predictor.predict_proba(x) is not None
        except Exception:
            return False
    # Without an example the live object is asked; an ONNX graph (no predict) carries them when it
    # names its classes.
    return not callable(getattr(model, "predict", None)) or callable(getattr(model, "predict_proba", None))


# -- the input example -------------------------------------------------------------------------------


def _read_example(directory: Path, info: Any) -> pd.DataFrame | np.ndarray | None:
    """MLflow's input example: pandas split/records JSON, a tf-serving ``{"inputs": ...}`` or a .npy."""
    if not isinstance(info, Mapping) or not info.get("artifact_path"):
        return None
    file = (directory / str(info["artifact_path"])).resolve()
    if not file.is_relative_to(directory) or not file.is_file():
        raise InvalidArgumentError(
            f"{directory / 'MLmodel'} names input example {info['artifact_path']!r}, but {directory} has no such file"
        )
    try:
        if file.suffix == ".npy":
            return np.load(file, allow_pickle=False)
        payload = json.loads(file.read_text(encoding="utf-8"))
        return example_payload(payload)
    except (ValueError, TypeError, OSError) as exc:
        raise InvalidArgumentError(f"cannot read the MLflow input example {file}: {exc}") from exc
