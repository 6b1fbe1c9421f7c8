"""ONNX conversion of registered scikit-learn versions: kept only when outputs match the original."""

from __future__ import annotations

import numpy as np
import pytest

import shipyard
from shipyard.errors import InvalidArgumentError, UnsupportedModelError
from shipyard.services.convert import convert_model, convert_version
from shipyard.workspace import Workspace
from tests.models import churn_frame, churn_pipeline, iris


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


def test_conversion_refuses_unsupported_targets_and_flavors(sqlite_workspace: Workspace) -> None:
    x, _, model = iris()
    sqlite_workspace.registry.register(model, name="iris", sample_input=x[:30])
    with pytest.raises(InvalidArgumentError, match="'tflite' is not supported"):
        convert_version(sqlite_workspace.registry, "iris:1", to="tflite")
    convert_version(sqlite_workspace.registry, "iris:1")
    with pytest.raises(UnsupportedModelError, match="iris:2 is a onnx model"):
        convert_version(sqlite_workspace.registry, "iris:2")
    assert len(sqlite_workspace.registry.list_versions("iris")) == 2


def test_top_level_convert_uses_the_default_workspace(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "h"))
    x, _, model = iris()
    shipyard.register(model, "iris", sample_input=x[:20])
    version = shipyard.convert("iris:1", to="onnx")
    assert version.ref == "iris:2"
    np.testing.assert_array_equal(shipyard.load("iris:2").predict(x[:5]), model.predict(x[:5]))
