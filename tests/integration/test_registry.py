"""The registry on real SQLite and PostgreSQL stores and real artifact files."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

from shipyard.artifacts.base import SweepableStore
from shipyard.core.versions import VersionStatus
from shipyard.errors import (
    AliasNotFoundError,
    ArtifactIntegrityError,
    ConflictError,
    InvalidArgumentError,
    InvalidRefError,
    ModelLoadError,
    ModelNotFoundError,
    SignatureError,
    SignatureInferenceError,
    UnsupportedModelError,
    UntrustedArtifactError,
    VersionNotFoundError,
)
from shipyard.services.lineage import code_info
from shipyard.services.registration import RegistrationOptions
from shipyard.workspace import Workspace
from tests.models import churn_frame, churn_pipeline, iris, regression


def test_register_records_every_field_of_the_model_card(workspace: Workspace) -> None:
    x, y, model = iris()
    mv = workspace.registry.register(
        model,
        name="iris",
        sample_input=x[:30],
        training_data=x,
        training_target=y,
        metrics={"accuracy": 0.97},
        tags={"team": "risk"},
        notes="first cut",
    )
    assert (mv.name, mv.version, mv.flavor, mv.status) == ("iris", 1, "sklearn", VersionStatus.REGISTERED)
    assert len(mv.sha256) == 64 and mv.size_bytes > 0
    assert mv.signature.names == ("f0", "f1", "f2", "f3")
    assert mv.signature.output.classes == (0, 1, 2) and mv.signature.output.has_probabilities
    assert mv.signature.features[0].min == pytest.approx(x[:30, 0].min())
    assert mv.hyperparameters["max_iter"] == 500
    assert mv.training_data_hash and len(mv.training_data_hash) == 64
    assert mv.reference_profile is not None and mv.reference_profile.rows == 150
    assert sum(mv.reference_profile.prediction.counts.values()) == 150  # type: ignore[union-attr]
    assert mv.reference_profile.target is not None
    assert mv.owner and mv.parent_version is None
    stored = workspace.registry.get("iris:1")
    assert stored.to_dict() == mv.to_dict()


def test_versions_number_upwards_with_parent_and_latest(workspace: Workspace) -> None:
    x, _, model = iris()
    for _ in range(3):
        last = workspace.registry.register(model, name="iris", sample_input=x[:10])
    assert last.version == 3 and last.parent_version == 2
    assert workspace.registry.get("iris").version == 3
    assert workspace.registry.get("iris:latest").version == 3
    explicit = workspace.registry.register(model, name="iris", sample_input=x[:10], parent_version=1)
    assert explicit.parent_version == 1
    with pytest.raises(VersionNotFoundError, match="parent version iris:9"):
        workspace.registry.register(model, name="iris", sample_input=x[:10], parent_version=9)
    assert [v.version for v in workspace.registry.list_versions("iris")] == [1, 2, 3, 4]
    # The failed registration took a number inside its transaction and gave it back: no gap.
    assert workspace.registry.register(model, name="iris", sample_input=x[:10]).version == 5


def test_dataframe_pipeline_round_trips_with_identical_predictions(workspace: Workspace) -> None:
    frame, target = churn_frame()
    model = churn_pipeline()
    mv = workspace.registry.register(
        model, name="churn", sample_input=frame.head(50), training_data=frame, training_target=target
    )
    plan = mv.signature.feature("plan")
    assert plan.type.value == "string" and set(plan.categories or ()) == {"basic", "plus", "premium"}
    assert mv.signature.feature("tenure_months").type.value == "integer"
    loaded = workspace.registry.load("churn:1")
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    np.testing.assert_allclose(loaded.predict_proba(frame), model.predict_proba(frame))
    rows = frame.head(5).to_dict(orient="records")
    np.testing.assert_array_equal(loaded.predict(rows), model.predict(frame.head(5)))
    columns = {k: list(v) for k, v in frame.head(5).to_dict(orient="list").items()}
    np.testing.assert_array_equal(loaded.predict(columns), model.predict(frame.head(5)))


def test_load_accepts_every_input_form_and_matches_the_estimator(sqlite_workspace: Workspace) -> None:
    x, _, model = regression()
    sqlite_workspace.registry.register(model, name="reg", sample_input=x[:20])
    loaded = sqlite_workspace.registry.load("reg")
    expected = model.predict(x[:4])
    frame = pd.DataFrame(x[:4], columns=["f0", "f1", "f2"])
    for form in (x[:4], frame, frame.to_dict(orient="records"), frame.to_dict(orient="list"), x[:4].tolist()):
        np.testing.assert_array_equal(loaded.predict(form), expected)


def test_bad_input_to_a_loaded_model_names_the_feature_and_row(sqlite_workspace: Workspace) -> None:
    frame, _ = churn_frame()
    sqlite_workspace.registry.register(churn_pipeline(), name="churn", sample_input=frame.head(50))
    loaded = sqlite_workspace.registry.load("churn")
    good = frame.head(3).to_dict(orient="records")
    wrong_type = [dict(r) for r in good]
    wrong_type[2]["monthly_charges"] = "lots"
    with pytest.raises(SignatureError, match=r"row 2: feature 'monthly_charges' expects a number, got 'lots'"):
        loaded.predict(wrong_type)
    missing = [dict(r) for r in good]
    del missing[1]["plan"]
    with pytest.raises(SignatureError, match=r"row 1: feature 'plan' is missing"):
        loaded.predict(missing)
    null = [dict(r) for r in good]
    null[0]["region"] = None
    with pytest.raises(SignatureError, match=r"row 0: feature 'region' is missing \(null\)"):
        loaded.predict(null)
    number_for_string = [dict(r) for r in good]
    number_for_string[1]["plan"] = 3
    with pytest.raises(SignatureError, match=r"row 1: feature 'plan' expects a string, got 3"):
        loaded.predict(number_for_string)


def test_aliases_move_atomically_and_resolve(workspace: Workspace) -> None:
    x, _, model = iris()
    for _ in range(2):
        workspace.registry.register(model, name="iris", sample_input=x[:10])
    workspace.registry.set_alias("iris:1", "champion")
    assert workspace.registry.get("iris@champion").version == 1
    moved = workspace.registry.set_alias("iris:2", "champion")
    assert moved.aliases == ("champion",)
    assert workspace.registry.get("iris@champion").version == 2
    assert workspace.registry.get("iris:1").aliases == ()
    with pytest.raises(AliasNotFoundError, match="no alias 'staging'.*champion"):
        workspace.registry.get("iris@staging")
    workspace.registry.remove_alias("iris", "champion")
    with pytest.raises(AliasNotFoundError):
        workspace.registry.get("iris@champion")
    with pytest.raises(InvalidArgumentError, match="reserved"):
        workspace.registry.set_alias("iris:1", "latest")


def test_archive_is_refused_while_an_alias_points_at_the_version(workspace: Workspace) -> None:
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:10])
    workspace.registry.register(model, name="iris", sample_input=x[:10])
    workspace.registry.set_alias("iris:2", "champion")
    with pytest.raises(ConflictError, match="iris@champion"):
        workspace.registry.archive("iris:2")
    assert workspace.registry.approve("iris:2").status is VersionStatus.APPROVED
    assert workspace.registry.archive("iris:1").status is VersionStatus.ARCHIVED
    with pytest.raises(ConflictError, match="archived"):
        workspace.registry.set_alias("iris:1", "old")
    # "latest" skips archived versions only when they are the newest; an explicit version still loads.
    workspace.registry.remove_alias("iris", "champion")
    workspace.registry.archive("iris:2")
    with pytest.raises(VersionNotFoundError, match="no version that is not archived"):
        workspace.registry.get("iris")
    assert workspace.registry.load("iris:1").predict(x[:2]).shape == (2,)


def test_archive_is_refused_while_an_endpoint_serves_the_version(workspace: Workspace) -> None:
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:10])
    workspace.registry.register(model, name="iris", sample_input=x[:10])
    workspace.endpoints.create("flowers", model="iris:1")
    with pytest.raises(ConflictError, match="served by endpoint\\(s\\) flowers"):
        workspace.registry.archive("iris:1")
    assert workspace.registry.get("iris:1").status is VersionStatus.REGISTERED
    workspace.endpoints.set_model("flowers", model="iris:2")
    assert workspace.registry.archive("iris:1").status is VersionStatus.ARCHIVED


def test_unknown_model_version_alias_and_malformed_refs(workspace: Workspace) -> None:
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:10])
    with pytest.raises(ModelNotFoundError, match="no model named 'fraud'"):
        workspace.registry.get("fraud:1")
    with pytest.raises(VersionNotFoundError, match=r"no version 7 \(latest: iris:1\)"):
        workspace.registry.get("iris:7")
    for bad in ("iris:x", "iris:0", "iris@", "iris@3", "", "a b", "iris:1:2"):
        with pytest.raises(InvalidRefError):
            workspace.registry.get(bad)


def test_tampered_artifact_is_refused_naming_version_and_both_hashes(workspace: Workspace) -> None:
    x, _, model = iris()
    mv = workspace.registry.register(model, name="iris", sample_input=x[:10])
    path = Path(workspace.artifacts.location(mv.sha256))
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError) as caught:
        workspace.registry.load("iris:1")
    message = str(caught.value)
    assert "iris:1" in message and mv.sha256 in message
    assert len([w for w in message.replace(",", " ").split() if len(w) == 64]) == 2


def test_registration_refuses_without_a_signature_and_stores_nothing(workspace: Workspace) -> None:
    x, _, model = iris()
    with pytest.raises(SignatureInferenceError, match="without sample_input"):
        workspace.registry.register(model, name="iris")
    with pytest.raises(SignatureInferenceError, match="mix"):
        workspace.registry.register(
            model,
            name="iris",
            sample_input=pd.DataFrame({"f0": [1, "a"], "f1": [1.0, 2.0], "f2": [1.0, 2.0], "f3": [1.0, 2.0]}),
        )
    with pytest.raises(SignatureInferenceError, match="features"):
        workspace.registry.register(model, name="iris", sample_input=x[:5, :3])
    assert workspace.registry.list_models() == []
    assert not any(Path(workspace.artifacts.uri).rglob("*")) if Path(workspace.artifacts.uri).exists() else True


def test_sample_with_columns_the_model_does_not_know_is_refused(workspace: Workspace) -> None:
    frame, _ = churn_frame()
    with pytest.raises(SignatureInferenceError, match=r"missing: 'region'"):
        workspace.registry.register(churn_pipeline(), name="churn", sample_input=frame.drop(columns=["region"]))
    assert workspace.registry.list_models() == []


def test_unsupported_objects_and_bad_arguments_are_refused(workspace: Workspace) -> None:
    with pytest.raises(UnsupportedModelError, match="builtins.dict"):
        workspace.registry.register({"not": "a model"}, name="thing", sample_input=[[1.0]])
    x, _, model = iris()
    with pytest.raises(InvalidArgumentError, match="invalid model name"):
        workspace.registry.register(model, name="bad name!", sample_input=x[:5])
    with pytest.raises(InvalidArgumentError, match="metric 'auc' must be a number"):
        workspace.registry.register(model, name="iris", sample_input=x[:5], metrics={"auc": "high"})
    assert workspace.registry.list_models() == []


def test_pickle_file_needs_trust_and_is_stored_safely_once_trusted(workspace: Workspace, tmp_path: Path) -> None:
    x, _, model = iris()
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    with pytest.raises(UntrustedArtifactError, match="pickle.*--trusted"):
        workspace.registry.register_file(str(path), name="iris", sample_input=x[:10])
    assert workspace.registry.list_models() == []
    mv = workspace.registry.register_file(str(path), name="iris", sample_input=x[:10], trusted=True)
    assert mv.flavor_options["format"] == "skops" and mv.source.startswith("file:")
    np.testing.assert_array_equal(workspace.registry.load(mv.ref).predict(x), model.predict(x))


def test_git_commit_and_dirty_state_are_captured(tmp_path: Path) -> None:
    repo = tmp_path / "proj"
    repo.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    (repo / "train.py").write_text("print('hi')\n")
    for args in (["init", "-q"], ["add", "train.py"], ["commit", "-qm", "init"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    clean = code_info(repo)
    assert (clean.commit, clean.dirty) == (head, False)
    (repo / "train.py").write_text("print('changed')\n")
    assert code_info(repo).dirty is True
    assert code_info(tmp_path).commit is None


def test_registration_from_a_script_records_its_commit(tmp_path: Path) -> None:
    repo = tmp_path / "proj"
    repo.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "SHIPYARD_HOME": str(tmp_path / "h"),
    }
    script = repo / "train.py"
    script.write_text(
        "import shipyard\n"
        "from sklearn.datasets import load_iris\n"
        "from sklearn.tree import DecisionTreeClassifier\n"
        "x, y = load_iris(return_X_y=True)\n"
        "mv = shipyard.register(DecisionTreeClassifier(max_depth=3).fit(x, y), 'tree', sample_input=x[:10])\n"
        "print(mv.code.commit, mv.code.dirty, mv.hyperparameters['max_depth'])\n"
    )
    for args in (["init", "-q"], ["add", "train.py"], ["commit", "-qm", "init"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
        timeout=120,
    )
    assert out.stdout.split() == [head, "False", "3"]


def test_lightgbm_model_with_spaces_in_column_names_keeps_the_callers_names(sqlite_workspace: Workspace) -> None:
    import lightgbm

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["credit score", "income (k)", "age"])
    target = (frame["credit score"] > 0).astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(frame, target)
    mv = sqlite_workspace.registry.register(model, name="lgb", sample_input=frame.head(20), training_data=frame)
    assert mv.signature.names == ("credit score", "income (k)", "age")
    loaded = sqlite_workspace.registry.load("lgb")
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    shuffled = frame[["age", "credit score", "income (k)"]]
    np.testing.assert_array_equal(loaded.predict(shuffled.to_dict(orient="records")), model.predict(frame))


class ForgetsItsOffset(RegressorMixin, BaseEstimator):
    """Predicts with an attribute it leaves out of what it saves, so its reloaded copy predicts differently."""

    def fit(self, x: np.ndarray, y: object = None) -> ForgetsItsOffset:
        self.offset_ = 1.0
        self.n_features_in_ = np.asarray(x).shape[1]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=float).sum(axis=1) + getattr(self, "offset_", 0.0)

    def __getstate__(self) -> dict[str, object]:
        state = dict(super().__getstate__())
        state.pop("offset_", None)
        return state


class CannotBeRestored(RegressorMixin, BaseEstimator):
    """Saves, but refuses to be rebuilt from what it saved."""

    def fit(self, x: np.ndarray, y: object = None) -> CannotBeRestored:
        self.n_features_in_ = np.asarray(x).shape[1]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=float).sum(axis=1)

    def __setstate__(self, state: dict[str, object]) -> None:
        raise ValueError("this estimator cannot be restored")


def _stored_blobs(workspace: Workspace) -> list[str]:
    assert isinstance(workspace.artifacts, SweepableStore)
    return sorted(item.key for item in workspace.artifacts.stored())


def test_a_model_whose_reloaded_copy_predicts_differently_is_refused_naming_the_predict_step(
    workspace: Workspace,
) -> None:
    x = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ModelLoadError) as caught:
        workspace.registry.register(ForgetsItsOffset().fit(x), name="forgetful", sample_input=x)
    message = str(caught.value)
    assert "'forgetful' failed its sklearn round trip (save, load, predict) at predict" in message
    assert "does not reproduce the model's predictions on sample_input (20 of 20 rows differ; first at row 0" in message
    assert workspace.registry.list_models() == [] and _stored_blobs(workspace) == []


def test_a_model_that_cannot_be_loaded_back_is_refused_naming_the_load_step_and_the_cause(
    workspace: Workspace,
) -> None:
    x = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ModelLoadError) as caught:
        workspace.registry.register(CannotBeRestored().fit(x), name="stuck", sample_input=x)
    message = str(caught.value)
    assert "'stuck' failed its sklearn round trip (save, load, predict) at load" in message
    assert "this estimator cannot be restored" in message
    assert workspace.registry.list_models() == [] and _stored_blobs(workspace) == []


def test_a_reference_profile_with_training_data_is_refused_before_any_work(workspace: Workspace) -> None:
    x, y, model = iris()
    first = workspace.registry.register(model, name="iris", sample_input=x[:10], training_data=x, training_target=y)
    blobs = _stored_blobs(workspace)
    both = {"training_data": x, "reference_profile": first.reference_profile}
    with pytest.raises(InvalidArgumentError, match="both training_data and a precomputed reference_profile"):
        workspace.registry.register(model, name="iris", sample_input=x[:10], **both)
    # Refused before the flavor is even chosen: an object no flavor saves meets the same error.
    with pytest.raises(InvalidArgumentError, match="both training_data and a precomputed reference_profile"):
        workspace.registry.register(object(), name="iris", sample_input=x[:10], **both)
    assert [v.version for v in workspace.registry.list_versions("iris")] == [1]
    assert _stored_blobs(workspace) == blobs
    kept = workspace.registry.register(
        model, name="iris", sample_input=x[:10], reference_profile=first.reference_profile
    )
    assert kept.reference_profile == first.reference_profile and kept.training_data_hash is None


def test_options_come_as_one_record_or_as_keywords_not_both(sqlite_workspace: Workspace) -> None:
    x, _, model = iris()
    options = RegistrationOptions(name="iris", sample_input=x[:10], notes="built once")
    with pytest.raises(TypeError, match="not both; also got notes"):
        sqlite_workspace.registry.register(model, options, notes="which one wins?")
    assert sqlite_workspace.registry.list_models() == []
    built = sqlite_workspace.registry.register(model, options)
    by_keyword = sqlite_workspace.registry.register(model, name="iris", sample_input=x[:10], notes="built once")
    assert (built.notes, built.signature, built.sha256) == (by_keyword.notes, by_keyword.signature, by_keyword.sha256)
