"""ONNX conversion of registered scikit-learn versions: kept only when outputs match the original.

The most common models (a linear model, a forest, gradient boosting, pipelines with and without a
ColumnTransformer), each fitted on a DataFrame and on an array, are converted, registered as the next
version, served by a real server, and must answer over REST with the labels of the scikit-learn original.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.semi_supervised import LabelSpreading

import shipyard
from shipyard.config import Settings
from shipyard.errors import ConversionError, InvalidArgumentError, UnsupportedModelError
from shipyard.flavors.onnx import PROBABILITY_ATOL, PROBABILITY_RTOL, _check_agreement
from shipyard.services.convert import convert_model, convert_version
from shipyard.workspace import Workspace
from tests.models import churn_frame, churn_pipeline, iris
from tests.serving_support import running_server

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]
ROWS = 600


def _numeric() -> tuple[pd.DataFrame, np.ndarray]:
    x, y = make_classification(ROWS, 5, n_informative=3, n_redundant=1, random_state=0)
    return pd.DataFrame(x, columns=[f"f{i}" for i in range(5)]), y


def _coded_churn() -> tuple[np.ndarray, np.ndarray]:
    """The churn table as one numeric matrix: the plan as an integer code next to the numbers."""
    frame, target = churn_frame()
    plan = frame["plan"].map({"basic": 0, "plus": 1, "premium": 2}).to_numpy()
    return np.column_stack([plan, frame["tenure_months"], frame["monthly_charges"]]).astype(float), target


def _coded_pipeline() -> Pipeline:
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), [0]), ("num", StandardScaler(), [1, 2])])
    return Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=500))])


# name -> (estimator factory, data) ; every kind fitted on a DataFrame and on an array
MODELS: dict[str, tuple[Callable[[], Any], str]] = {
    "logistic-frame": (lambda: LogisticRegression(max_iter=500), "frame"),
    "logistic-array": (lambda: LogisticRegression(max_iter=500), "array"),
    "forest-frame": (lambda: RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0), "frame"),
    "forest-array": (lambda: RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0), "array"),
    "boosting-frame": (lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0), "frame"),
    "boosting-array": (lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0), "array"),
    "scaled-frame": (lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), "frame"),
    "scaled-array": (lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), "array"),
    "columns-frame": (lambda: clone(churn_pipeline()), "churn"),
    "columns-array": (_coded_pipeline, "coded"),
}


def _data(kind: str) -> tuple[Any, np.ndarray]:
    if kind == "churn":
        return churn_frame()
    if kind == "coded":
        return _coded_churn()
    frame, target = _numeric()
    return (frame if kind == "frame" else frame.to_numpy()), target


def _rows(x: Any, names: list[str], count: int) -> list[dict[str, Any]]:
    frame = x if isinstance(x, pd.DataFrame) else pd.DataFrame(x, columns=names)
    return frame.head(count).to_dict(orient="records")


def test_common_models_convert_to_onnx_versions_that_serve_the_same_labels_over_rest(
    settings: Settings, workspace: Workspace
) -> None:
    fitted: dict[str, tuple[Any, Any]] = {}
    for name, (factory, kind) in MODELS.items():
        x, y = _data(kind)
        model = factory().fit(x, y)
        source = workspace.registry.register(model, name=name, sample_input=x[:20], training_data=x, training_target=y)
        converted = convert_version(workspace.registry, f"{name}:1")
        assert (converted.version, converted.flavor, converted.parent_version) == (2, "onnx", 1), name
        assert converted.signature == source.signature and converted.tags["converted_from"] == f"{name}:1"
        assert converted.confidence_calibrator == source.confidence_calibrator is not None
        # all-numeric inputs: one float tensor, columns in signature order; a ColumnTransformer over a
        # DataFrame picks columns by name, so it keeps one input per column
        assert converted.flavor_options["input"] == ("frame" if name == "columns-frame" else "array"), name
        workspace.endpoints.create(name, model=f"{name}:2")
        fitted[name] = (model, x)

    with running_server(settings, workspace) as url, httpx.Client(timeout=60) as client:
        for name, (model, x) in fitted.items():
            names = list(workspace.registry.get(f"{name}:2").signature.names)
            rows = _rows(x, names, 200)
            response = client.post(f"{url}/v1/endpoints/{name}/predict", json={"instances": rows})
            assert response.status_code == 200, (name, response.text)
            body = response.json()
            assert (body["model"], body["version"]) == (name, 2), body
            expected = x[:200] if not isinstance(x, pd.DataFrame) else x.head(200)
            assert body["predictions"] == model.predict(expected).tolist(), name
            np.testing.assert_allclose(
                body["probabilities"], model.predict_proba(expected), atol=PROBABILITY_ATOL, rtol=PROBABILITY_RTOL
            )


def test_array_model_converts_to_a_new_onnx_version_with_the_same_predictions(
    sqlite_workspace: Workspace,
) -> None:
    x, y, model = iris()
    source = sqlite_workspace.registry.register(
        model, name="iris", sample_input=x[:30], training_data=x, training_target=y
    )
    converted = convert_version(sqlite_workspace.registry, "iris:1")
    assert (converted.version, converted.flavor, converted.parent_version) == (2, "onnx", 1)
    assert converted.signature == source.signature
    assert converted.reference_profile == source.reference_profile
    assert converted.tags["converted_from"] == "iris:1"
    loaded = sqlite_workspace.registry.load("iris:2")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x), atol=1e-4)


def test_dataframe_pipeline_converts_with_one_input_per_column(sqlite_workspace: Workspace) -> None:
    frame, _ = churn_frame()
    model = churn_pipeline()
    sqlite_workspace.registry.register(model, name="churn", sample_input=frame.head(40))
    convert_version(sqlite_workspace.registry, "churn")
    loaded = sqlite_workspace.registry.load("churn:2")
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


def test_live_model_converts_to_a_checked_onnx_model() -> None:
    x, _, model = iris()
    proto = convert_model(model, sample_input=x[:20])
    assert type(proto).__name__ == "ModelProto"


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (LabelSpreading(), "skl2onnx cannot convert LabelSpreading to ONNX: it has no converter for it"),
        (
            make_pipeline(StandardScaler(), NearestCentroid()),
            "skl2onnx cannot convert NearestCentroid (in Pipeline(StandardScaler -> NearestCentroid)) to ONNX",
        ),
    ],
)
def test_an_estimator_skl2onnx_cannot_convert_is_named_in_one_line_and_nothing_is_registered(
    sqlite_workspace: Workspace, model: Any, message: str
) -> None:
    x, y = _numeric()
    model.fit(x, y)
    sqlite_workspace.registry.register(model, name="m", sample_input=x[:20])
    with pytest.raises(ConversionError) as raised:
        convert_version(sqlite_workspace.registry, "m:1")
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert str(raised.value).endswith("register the model with the sklearn flavor instead")
    assert [v.version for v in sqlite_workspace.registry.list_versions("m")] == [1]


def test_a_converted_model_that_answers_differently_is_refused() -> None:
    x, y = _numeric()
    model = LogisticRegression(max_iter=500).fit(x, y)
    other = LogisticRegression(C=0.001).fit(x, y)  # same inputs and classes, other probabilities
    proto = convert_model(other, sample_input=x[:20])
    with pytest.raises(ConversionError, match=r"disagrees with the original's probabilities .* allowed 0.0001"):
        _check_agreement(model, proto, x[:20])


def test_conversion_refuses_unsupported_targets_and_flavors(sqlite_workspace: Workspace) -> None:
    x, _, model = iris()
    sqlite_workspace.registry.register(model, name="iris", sample_input=x[:30])
    with pytest.raises(InvalidArgumentError, match="'tflite' is not supported"):
        convert_version(sqlite_workspace.registry, "iris:1", to="tflite")
    convert_version(sqlite_workspace.registry, "iris:1")
    with pytest.raises(UnsupportedModelError, match="iris:2 is a onnx model"):
        convert_version(sqlite_workspace.registry, "iris:2")
    assert len(sqlite_workspace.registry.list_versions("iris")) == 2


def test_top_level_convert_uses_the_default_workspace(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "h"))
    x, _, model = iris()
    shipyard.register(model, "iris", sample_input=x[:20])
    version = shipyard.convert("iris:1", to="onnx")
    assert version.ref == "iris:2"
    np.testing.assert_array_equal(shipyard.load("iris:2").predict(x[:5]), model.predict(x[:5]))


def test_cli_models_convert_registers_the_onnx_version_or_names_what_cannot_convert(tmp_path: Path) -> None:
    x, y = _numeric()
    (tmp_path / "lr.skops").write_bytes(skops.io.dumps(LogisticRegression(max_iter=500).fit(x, y)))
    (tmp_path / "ls.skops").write_bytes(skops.io.dumps(LabelSpreading().fit(x, y)))
    x.assign(label=y).to_csv(tmp_path / "train.csv", index=False)
    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path / "home"), "COLUMNS": "200"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*SHIPYARD, *args], capture_output=True, text=True, env=env, timeout=180)

    for name in ("lr", "ls"):
        sample = ["--sample", str(tmp_path / "train.csv"), "--target", "label"]
        assert cli("models", "register", str(tmp_path / f"{name}.skops"), "--name", name, *sample).returncode == 0
    done = cli("models", "convert", "lr:1", "--to", "onnx")
    assert done.returncode == 0, done.stderr
    assert "converted to lr:2 (onnx), outputs match the original" in done.stdout
    card = json.loads(cli("models", "show", "lr:2", "--json").stdout)
    assert card["flavor"] == "onnx" and card["flavor_options"]["input"] == "array" and card["parent_version"] == 1
    refused = cli("models", "convert", "ls:1", "--to", "onnx")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().count("\n") == 0
    assert "skl2onnx cannot convert LabelSpreading to ONNX" in refused.stderr
