"""Importing model directories laid out exactly as MLflow 2.x saves them, with MLflow not installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

from shipyard.core.signature import FeatureType, OutputKind
from shipyard.errors import (
    InvalidArgumentError,
    SignatureInferenceError,
    UnsupportedModelError,
    UntrustedArtifactError,
)
from shipyard.services.mlflow_import import import_mlflow_model
from shipyard.workspace import Workspace

SHIPYARD = Path(sys.executable).with_name("shipyard")
RUN_ID = "3f2a9c4e1b7d4e0fa6c2d1e8b5a47c90"
MODEL_UUID = "7b0c1d2e3f4a4b5c8d9e0f1a2b3c4d5e"

# The MLmodel file of an iris LogisticRegression as mlflow.sklearn.log_model (2.10) writes it, long
# JSON strings folded the way PyYAML folds them.
SKLEARN_MLMODEL = f"""artifact_path: model
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    predict_fn: predict
    python_version: 3.11.7
  sklearn:
    code: null
    pickled_model: model.pkl
    serialization_format: cloudpickle
    sklearn_version: 1.4.0
mlflow_version: 2.10.2
model_size_bytes: 1067
model_uuid: {MODEL_UUID}
run_id: {RUN_ID}
saved_input_example_info:
  artifact_path: input_example.json
  pandas_orient: split
  type: dataframe
signature:
  inputs: '[{{"type": "double", "name": "sepal length (cm)", "required": true}}, {{"type":
    "double", "name": "sepal width (cm)", "required": true}}, {{"type": "double", "name":
    "petal length (cm)", "required": true}}, {{"type": "double", "name": "petal width (cm)",
    "required": true}}]'
  outputs: '[{{"type": "long", "required": true}}]'
  params: null
utc_time_created: '2024-02-20 10:11:12.123456'
"""


def iris_frame() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_iris(as_frame=True)
    return data.data, data.target.to_numpy()


def write_mlflow_dir(
    directory: Path,
    *,
    flavor: str,
    section: dict[str, Any],
    loader: str,
    data: str,
    inputs: list[dict[str, Any]] | None,
    outputs: list[dict[str, Any]] | None,
    example: Any = None,
    example_type: str = "dataframe",
) -> Path:
    """An MLmodel as MLflow 2.x's ``Model.save`` writes it (yaml.safe_dump of ``Model.to_dict()``)."""
    directory.mkdir(parents=True, exist_ok=True)
    content: dict[str, Any] = {
        "artifact_path": "model",
        "flavors": {
            "python_function": {
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": loader,
                "data": data,
                "python_version": "3.11.7",
            },
            flavor: section,
        },
        "mlflow_version": "2.10.2",
        "model_size_bytes": 2048,
        "model_uuid": MODEL_UUID,
        "run_id": RUN_ID,
        "utc_time_created": "2024-02-20 10:11:12.123456",
    }
    if inputs is not None:
        content["signature"] = {
            "inputs": json.dumps(inputs),
            "outputs": json.dumps(outputs) if outputs is not None else None,
            "params": None,
        }
    if example is not None:
        if example_type == "dataframe":
            content["saved_input_example_info"] = {
                "artifact_path": "input_example.json",
                "pandas_orient": "split",
                "type": "dataframe",
            }
            payload = {"columns": list(example.columns), "data": example.to_numpy().tolist()}
        else:
            content["saved_input_example_info"] = {
                "artifact_path": "input_example.json",
                "format": "tf-serving",
                "type": "ndarray",
            }
            payload = {"inputs": np.asarray(example).tolist()}
        (directory / "input_example.json").write_text(json.dumps(payload))
    (directory / "MLmodel").write_text(yaml.safe_dump(content, default_flow_style=False))
    return directory


def double_columns(names: list[str]) -> list[dict[str, Any]]:
    return [{"type": "double", "name": n, "required": True} for n in names]


def sklearn_dir(tmp_path: Path) -> tuple[Path, LogisticRegression, pd.DataFrame]:
    x, y = iris_frame()
    model = LogisticRegression(max_iter=500).fit(x, y)
    directory = tmp_path / "mlruns" / "0" / RUN_ID / "artifacts" / "model"
    directory.mkdir(parents=True)
    (directory / "MLmodel").write_text(SKLEARN_MLMODEL)
    with (directory / "model.pkl").open("wb") as f:
        cloudpickle.dump(model, f)
    example = x.head(5)
    payload = {"columns": list(example.columns), "data": example.to_numpy().tolist()}
    (directory / "input_example.json").write_text(json.dumps(payload))
    return directory, model, x


def assert_nothing_stored(workspace: Workspace) -> None:
    assert workspace.registry.list_models() == []
    assert not any(p.is_file() for p in Path(workspace.settings.artifact_uri).rglob("*"))


def test_sklearn_model_keeps_mlflows_signature_and_predicts_as_before(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    directory, model, x = sklearn_dir(tmp_path)
    mv = import_mlflow_model(sqlite_workspace.registry, str(directory), name="iris", trusted=True)
    assert mv.flavor == "sklearn"
    assert mv.source == f"mlflow:{directory.resolve()}"
    assert mv.tags["mlflow_run_id"] == RUN_ID and mv.tags["mlflow_model_uuid"] == MODEL_UUID
    assert mv.signature.names == tuple(x.columns)
    assert {f.type for f in mv.signature.features} == {FeatureType.FLOAT}
    assert not any(f.nullable for f in mv.signature.features)
    assert mv.signature.features[0].min == pytest.approx(x.head(5).iloc[:, 0].min())  # from the example
    out = mv.signature.output
    assert out.kind is OutputKind.CLASSIFICATION and out.dtype == "int64"
    assert out.classes == (0, 1, 2) and out.has_probabilities
    loaded = sqlite_workspace.registry.load(mv.ref)
    rows = x.iloc[::10].to_dict(orient="records")
    np.testing.assert_array_equal(loaded.predict(rows), model.predict(x.iloc[::10]))


def test_pickled_sklearn_model_is_refused_without_trust_and_nothing_is_stored(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    directory, _, _ = sklearn_dir(tmp_path)
    with pytest.raises(UntrustedArtifactError, match=r"MLflow pickled .*can run arbitrary code.*--trusted"):
        import_mlflow_model(sqlite_workspace.registry, str(directory), name="iris")
    assert_nothing_stored(sqlite_workspace)


def test_xgboost_classifier_is_rebuilt_from_its_native_file(sqlite_workspace: Workspace, tmp_path: Path) -> None:
    xgboost = pytest.importorskip("xgboost")
    x, y = iris_frame()
    x.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(x, y)
    directory = write_mlflow_dir(
        tmp_path / "xgb",
        flavor="xgboost",
        section={
            "code": None,
            "data": "model.xgb",
            "model_class": "xgboost.sklearn.XGBClassifier",
            "model_format": "xgb",
            "xgb_version": "2.0.3",
        },
        loader="mlflow.xgboost",
        data="model.xgb",
        inputs=double_columns(list(x.columns)),
        outputs=[{"type": "long", "required": True}],
        example=x.head(4),
    )
    with pytest.warns(UserWarning):  # XGBoost says it guessed UBJSON for the ".xgb" extension
        model.save_model(str(directory / "model.xgb"))
    mv = import_mlflow_model(sqlite_workspace.registry, str(directory), name="flowers")
    assert mv.flavor == "xgboost" and mv.source.startswith("mlflow:")
    assert mv.signature.names == tuple(x.columns)
    assert mv.signature.output.classes == (0, 1, 2)
    loaded = sqlite_workspace.registry.load(mv.ref)
    np.testing.assert_array_equal(loaded.predict(x.to_dict(orient="records")), model.predict(x))


def test_lightgbm_booster_with_a_signature_and_no_example(sqlite_workspace: Workspace, tmp_path: Path) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = x @ np.array([1.0, -2.0, 0.5])
    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1, "num_leaves": 7},
        lightgbm.Dataset(x, y),
        num_boost_round=10,
    )
    directory = write_mlflow_dir(
        tmp_path / "lgb",
        flavor="lightgbm",
        section={
            "code": None,
            "data": "model.lgb",
            "lgb_version": "4.1.0",
            "model_class": "lightgbm.basic.Booster",
        },
        loader="mlflow.lightgbm",
        data="model.lgb",
        inputs=[
            {"type": "double", "name": "a", "required": True},
            {"type": "long", "name": "b", "required": True},
            {"type": "double", "name": "c", "required": False},
        ],
        outputs=[{"type": "double", "required": True}],
    )
    booster.save_model(str(directory / "model.lgb"))
    mv = import_mlflow_model(sqlite_workspace.registry, str(directory), name="lgb")
    assert mv.flavor == "lightgbm"
    assert [(f.name, f.type, f.nullable) for f in mv.signature.features] == [
        ("a", FeatureType.FLOAT, False),
        ("b", FeatureType.INTEGER, False),
        ("c", FeatureType.FLOAT, True),
    ]
    assert mv.signature.output.kind is OutputKind.REGRESSION and mv.signature.output.dtype == "float64"
    rows = [{"a": 0.5, "b": 1, "c": -0.25}, {"a": -1.0, "b": 0, "c": 2.0}]
    expected = booster.predict(np.array([[0.5, 1, -0.25], [-1.0, 0, 2.0]]))
    np.testing.assert_allclose(sqlite_workspace.registry.load(mv.ref).predict(rows), expected)


def test_onnx_model_with_a_tensor_signature_gets_positional_features(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    model = LogisticRegression(max_iter=500).fit(x, y)
    onx = skl2onnx.convert_sklearn(
        model, initial_types=[("input", FloatTensorType([None, 4]))], options={id(model): {"zipmap": False}}
    )
    directory = write_mlflow_dir(
        tmp_path / "onnx",
        flavor="onnx",
        section={
            "code": None,
            "data": "model.onnx",
            "onnx_version": "1.15.0",
            "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"],
        },
        loader="mlflow.onnx",
        data="model.onnx",
        inputs=[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}],
        outputs=[
            {"name": "label", "type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}},
            {
                "name": "probabilities",
                "type": "tensor",
                "tensor-spec": {"dtype": "float32", "shape": [-1, 3]},
            },
        ],
        example=x[:3],
        example_type="ndarray",
    )
    (directory / "model.onnx").write_bytes(onx.SerializeToString())
    mv = import_mlflow_model(sqlite_workspace.registry, str(directory), name="iris-onnx")
    assert mv.flavor == "onnx"
    assert mv.signature.names == ("f0", "f1", "f2", "f3")
    assert {f.type for f in mv.signature.features} == {FeatureType.FLOAT}
    assert mv.signature.output.kind is OutputKind.CLASSIFICATION and mv.signature.output.classes == (0, 1, 2)
    np.testing.assert_array_equal(sqlite_workspace.registry.load(mv.ref).predict(x), model.predict(x))


def test_named_single_column_tensors_become_features_by_name(sqlite_workspace: Workspace, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 3))
    model = LinearRegression().fit(x, x @ np.array([1.5, -2.0, 0.5]))
    directory = write_mlflow_dir(
        tmp_path / "tensors",
        flavor="sklearn",
        section={
            "code": None,
            "pickled_model": "model.pkl",
            "serialization_format": "pickle",
            "sklearn_version": "1.4.0",
        },
        loader="mlflow.sklearn",
        data="model.pkl",
        inputs=[{"name": n, "type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}} for n in "abc"],
        outputs=[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}],
    )
    (directory / "model.pkl").write_bytes(cloudpickle.dumps(model))
    mv = import_mlflow_model(sqlite_workspace.registry, str(directory), name="linear", trusted=True)
    assert mv.signature.names == ("a", "b", "c")
    assert mv.signature.output.kind is OutputKind.REGRESSION
    rows = [dict(zip("abc", row, strict=True)) for row in x[:5].tolist()]
    np.testing.assert_allclose(sqlite_workspace.registry.load(mv.ref).predict(rows), model.predict(x[:5]))


def test_pickled_lightgbm_classifier_needs_trust_then_imports_as_lightgbm(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    x, y = iris_frame()
    model = lightgbm.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(x.to_numpy(), y)
    directory = write_mlflow_dir(
        tmp_path / "lgbm",
        flavor="lightgbm",
        section={
            "code": None,
            "data": "model.lgb",
            "lgb_version": "4.1.0",
            "model_class": "lightgbm.sklearn.LGBMClassifier",
        },
        loader="mlflow.lightgbm",
        data="model.lgb",
        inputs=[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}],
        outputs=[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}],
    )
    (directory / "model.lgb").write_bytes(cloudpickle.dumps(model))
    with pytest.raises(UntrustedArtifactError, match=r"model_class lightgbm\.sklearn\.LGBMClassifier"):
        import_mlflow_model(sqlite_workspace.registry, str(directory), name="lgbm")
    assert_nothing_stored(sqlite_workspace)
    mv = import_mlflow_model(sqlite_workspace.registry, str(directory), name="lgbm", trusted=True)
    assert mv.flavor == "lightgbm" and mv.signature.output.classes == (0, 1, 2)
    rows = x.to_numpy()[::15]
    np.testing.assert_array_equal(sqlite_workspace.registry.load(mv.ref).predict(rows), model.predict(rows))


def test_skops_sklearn_model_imports_without_trust(sqlite_workspace: Workspace, tmp_path: Path) -> None:
    import skops.io

    x, y = iris_frame()
    model = LogisticRegression(max_iter=500).fit(x, y)
    directory = write_mlflow_dir(
        tmp_path / "skops",
        flavor="sklearn",
        section={
            "code": None,
            "pickled_model": "model.skops",
            "serialization_format": "skops",
            "sklearn_version": "1.4.0",
        },
        loader="mlflow.sklearn",
        data="model.skops",
        inputs=double_columns(list(x.columns)),
        outputs=[{"type": "long", "required": True}],
    )
    skops.io.dump(model, directory / "model.skops")
    mv = import_mlflow_model(sqlite_workspace.registry, str(directory), name="iris")
    assert mv.flavor == "sklearn" and mv.signature.names == tuple(x.columns)
    np.testing.assert_array_equal(sqlite_workspace.registry.load(mv.ref).predict(x), model.predict(x))


def test_a_directory_without_mlmodel_is_refused(sqlite_workspace: Workspace, tmp_path: Path) -> None:
    (tmp_path / "run" / "model").mkdir(parents=True)
    (tmp_path / "run" / "model" / "MLmodel").write_text("flavors: {}\n")
    with pytest.raises(InvalidArgumentError, match=r"has no MLmodel file.*did you mean .*run/model\?"):
        import_mlflow_model(sqlite_workspace.registry, str(tmp_path / "run"), name="m")
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        import_mlflow_model(sqlite_workspace.registry, str(tmp_path / "nowhere"), name="m")
    assert_nothing_stored(sqlite_workspace)


def test_an_unsupported_flavor_lists_what_it_has_and_what_is_supported(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    directory = write_mlflow_dir(
        tmp_path / "torch",
        flavor="pytorch",
        section={"code": None, "model_data": "data", "pytorch_version": "2.1.0"},
        loader="mlflow.pytorch",
        data="data",
        inputs=double_columns(["x"]),
        outputs=None,
    )
    with pytest.raises(UnsupportedModelError, match=r"flavors python_function, pytorch.*lightgbm, onnx, sklearn"):
        import_mlflow_model(sqlite_workspace.registry, str(directory), name="torch")
    assert_nothing_stored(sqlite_workspace)


def test_no_signature_and_no_example_is_refused(sqlite_workspace: Workspace, tmp_path: Path) -> None:
    directory, _, _ = sklearn_dir(tmp_path)
    mlmodel = yaml.safe_load((directory / "MLmodel").read_text())
    del mlmodel["signature"], mlmodel["saved_input_example_info"]
    (directory / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(SignatureInferenceError, match=r"no signature and no input example.*nothing was registered"):
        import_mlflow_model(sqlite_workspace.registry, str(directory), name="iris", trusted=True)
    assert_nothing_stored(sqlite_workspace)


def test_an_input_example_alone_gives_the_signature(sqlite_workspace: Workspace, tmp_path: Path) -> None:
    directory, _, x = sklearn_dir(tmp_path)
    mlmodel = yaml.safe_load((directory / "MLmodel").read_text())
    del mlmodel["signature"]
    (directory / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    mv = import_mlflow_model(sqlite_workspace.registry, str(directory), name="iris", trusted=True)
    assert mv.signature.names == tuple(x.columns)
    assert mv.signature.output.classes == (0, 1, 2)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("yaml", "is not valid YAML"),
        ("data", "names model file 'model.pkl', but .* has no such file"),
        ("json", "signature inputs .* are not valid JSON"),
    ],
)
def test_a_broken_directory_is_named_in_one_clear_error(
    sqlite_workspace: Workspace, tmp_path: Path, breakage: str, message: str
) -> None:
    directory, _, _ = sklearn_dir(tmp_path)
    if breakage == "yaml":
        (directory / "MLmodel").write_text("flavors:\n  sklearn: [unclosed\n")
    elif breakage == "data":
        (directory / "model.pkl").unlink()
    else:
        text = (directory / "MLmodel").read_text().replace("inputs: '[{", "inputs: '[{{")
        (directory / "MLmodel").write_text(text)
    with pytest.raises(InvalidArgumentError, match=message):
        import_mlflow_model(sqlite_workspace.registry, str(directory), name="iris", trusted=True)
    assert_nothing_stored(sqlite_workspace)


def test_cli_imports_with_trust_and_refuses_without_in_one_line(tmp_path: Path) -> None:
    directory, _, _ = sklearn_dir(tmp_path)
    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path / "home")}
    command = [str(SHIPYARD), "models", "import-mlflow", str(directory), "--name", "iris"]
    refused = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert refused.returncode != 0
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert "--trusted" in refused.stderr
    done = subprocess.run([*command, "--trusted"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "iris:1" in done.stdout
