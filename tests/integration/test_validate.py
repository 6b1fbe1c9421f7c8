"""Validation gates for CI, end to end: `shipyard validate` on real Parquet/CSV holdouts and real scikit-learn
models registered in a real store; the evidence it stores, and the approvals and rollouts that require it.

Models are fitted on seeded data with a clear signal (logistic regression ~0.9 accuracy); the "worse" candidate
is a depth-1 tree (~0.75), far enough apart that the paired bound decides it on 1,000 holdout rows for any
seed. Latency figures are only checked for presence and order (p50 <= p99), never against a time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from shipyard.config import Settings
from shipyard.monitoring.validation_gates import GateSpec
from shipyard.services.rollouts import RolloutNotFoundError
from shipyard.services.validation_rule import ValidationRequiredError
from shipyard.workspace import Workspace
from tests.serving_support import running_server

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]
FEATURES = [f"f{i}" for i in range(5)]


@cache
def _data() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """A logistic model's data: 2,000 training rows and a labelled holdout of 1,000."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 5))
    y = (rng.random(3000) < 1 / (1 + np.exp(-2 * (x @ np.array([2.0, -1.5, 1.0, 0.5, 0.0]))))).astype(int)
    frame = pd.DataFrame(x, columns=FEATURES)
    holdout = frame.iloc[2000:].reset_index(drop=True).assign(y=y[2000:])
    return frame.iloc[:2000].reset_index(drop=True), y[:2000], holdout


def _register_classifiers(ws: Workspace) -> None:
    """clf:1 the champion (logistic regression), clf:2 a worse stump, clf:3 the champion's twin."""
    train, target, _ = _data()
    good = LogisticRegression(max_iter=500).fit(train, target)
    stump = DecisionTreeClassifier(max_depth=1, random_state=0).fit(train, target)
    for model in (good, stump, good):
        ws.registry.register(model, name="clf", sample_input=train, training_data=train, training_target=target)
    ws.registry.set_alias("clf:1", "champion")


def _cli(args: list[str], settings: Settings, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(settings.home),
        "SHIPYARD_DATABASE_URL": settings.database_url,
        "SHIPYARD_ARTIFACT_URI": settings.artifact_uri,
        "COLUMNS": "200",
    }
    env.pop("SHIPYARD_URL", None)
    return subprocess.run([*SHIPYARD, *args], capture_output=True, text=True, env=env, timeout=300, cwd=cwd)


def test_passing_gates_exit_0_write_junit_and_markdown_and_store_the_evidence(
    workspace: Workspace, settings: Settings, tmp_path: Path
) -> None:
    _register_classifiers(workspace)
    _data()[2].to_parquet(tmp_path / "holdout.parquet")
    args = ["validate", "clf:3", "--data", "holdout.parquet", "--target", "y", "--vs", "champion"]
    args += ["--min", "accuracy=0.8", "--min", "roc_auc=0.85", "--max", "ece=0.2", "--max", "p99_ms=5000"]
    args += ["--max-regression", "0.01", "--max-drift", "0.5", "--junit", "gates.xml", "--summary", "gates.md"]
    result = _cli(args, settings, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED" in result.stdout and "paired bootstrap" in result.stdout

    suite = ET.parse(tmp_path / "gates.xml").getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {
        "signature compatible with clf@champion",
        "min accuracy",
        "min roc_auc",
        "max ece",
        "max p99_ms",
        "max drift",
        "max regression vs champion",
    }
    assert suite.get("failures") == "0" and all(c.find("failure") is None for c in cases.values())
    summary = (tmp_path / "gates.md").read_text()
    assert summary.startswith("## Validation of `clf:3`: ✅ passed")
    assert "| min accuracy | pass |" in summary and "McNemar mid-p" in summary

    [run] = workspace.validation.list("clf:3")
    assert run.passed and run.champion == "clf:1" and run.rows == 1000
    assert run.figures["accuracy"] == run.champion_figures["accuracy"]  # the same model on the same rows
    assert run.comparison is not None and run.comparison.interval["upper"] == 0.0
    latency = run.latency
    assert latency is not None and latency.rows_timed == 200 and 0 < latency.p50_ms <= latency.p99_ms
    assert run.figures["drift"] is not None and run.drift is not None and run.drift["tested_features"] == 5
    events = workspace.audit.list(target="model:clf:3")
    assert events[-1].action == "model.validate" and events[-1].after is not None
    assert events[-1].after["passed"] is True and events[-1].after["validation"] == run.id

    shown = _cli(["models", "show", "clf:3"], settings, tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"latest validation  #{run.id} passed: 7/7 gates passed vs clf:1 on 1,000 rows" in shown.stdout


def test_a_worse_candidate_fails_the_regression_gate_on_a_csv_holdout_with_exit_1(
    workspace: Workspace, settings: Settings, tmp_path: Path
) -> None:
    _register_classifiers(workspace)
    _data()[2].to_csv(tmp_path / "holdout.csv", index=False)
    args = ["validate", "clf:2", "-d", "holdout.csv", "-t", "y", "--vs", "clf:1", "--max-regression", "0.01"]
    result = _cli([*args, "--min", "accuracy=0.5", "--junit", "out.xml"], settings, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED" in result.stdout

    cases = {c.get("name"): c for c in ET.parse(tmp_path / "out.xml").getroot().iter("testcase")}
    assert cases["min accuracy"].find("failure") is None
    failure = cases["max regression vs champion"].find("failure")
    assert failure is not None
    run = workspace.validation.list("clf:2")[0]
    gate = next(g for g in run.gates if g.name == "max regression vs champion")
    assert not gate.passed and gate.measured is not None and gate.measured > 0.05
    assert f"measured {gate.measured:.4g}, limit 0.01" in (failure.get("message") or "")
    # the decision is the bound, not the bare difference: the bound is at least the observed accuracy lost
    assert run.comparison is not None and run.comparison.mcnemar is not None
    observed = run.champion_figures["accuracy"] - run.figures["accuracy"]  # type: ignore[operator]
    assert gate.measured >= observed > 0.05
    assert run.comparison.mcnemar["p_mid"] < 1e-6
    assert not run.passed and workspace.validation.latest(workspace.registry.get("clf:2")) == run


@pytest.mark.parametrize(
    ("extra", "holdout", "message"),
    [
        (["--target", "label"], "holdout.parquet", "has no target column 'label'; its columns: f0, f1"),
        (["--target", "y", "--min", "acuracy=0.9"], "holdout.parquet", "unknown figure 'acuracy'; known figures:"),
        (["--target", "y", "--max", "rmse=1"], "holdout.parquet", "rmse is a regression figure"),
        (["--target", "y"], "narrow.parquet", "does not fit clf:1's signature: missing feature(s) ['f4']"),
        (["--target", "y"], "text.csv", "holdout text.csv does not fit clf:1"),
        (["--target", "y", "--vs", "nothing"], "holdout.parquet", "--vs 'nothing' is neither an endpoint nor"),
        (["--target", "y"], "missing.parquet", "holdout file missing.parquet does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_and_stores_nothing(
    workspace: Workspace, settings: Settings, tmp_path: Path, extra: list[str], holdout: str, message: str
) -> None:
    train, target, data = _data()
    workspace.registry.register(
        LogisticRegression(max_iter=500).fit(train, target), name="clf", sample_input=train, training_data=train
    )
    data.to_parquet(tmp_path / "holdout.parquet")
    data.drop(columns=["f4"]).to_parquet(tmp_path / "narrow.parquet")
    data.astype({"f2": object}).assign(f2="high").to_csv(tmp_path / "text.csv", index=False)
    result = _cli(["validate", "clf:1", "--data", holdout, *extra], settings, tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr and workspace.validation.list("clf:1") == []


def test_approval_and_rollout_need_a_passing_validation_where_the_endpoint_requires_it(
    workspace: Workspace, settings: Settings, tmp_path: Path
) -> None:
    _register_classifiers(workspace)
    holdout = _data()[2]
    gates = GateSpec.parse(minimum=["accuracy=0.8"])
    validation = workspace.validation
    with pytest.raises(ValidationRequiredError, match="requires a passing validation, and clf:1 has none"):
        workspace.endpoints.create("clf", model="clf:1", require_validation=True)
    validation.validate("clf:1", holdout, "y", gates=gates)
    workspace.endpoints.create("clf", model="clf:1", require_validation=True)

    # the stump fails its gate: approval and a rollout to it are refused, naming the failed run
    failed = validation.validate("clf:2", holdout, "y", gates=gates)
    assert not failed.passed
    with pytest.raises(ValidationRequiredError, match=r"its last validation failed \(failed: 0/1 gates passed"):
        workspace.registry.approve("clf:2", reason="ship it")
    with pytest.raises(ValidationRequiredError, match="cannot roll out to it until `shipyard validate clf:2"):
        workspace.rollouts.start("clf", to="clf:2", strategy="canary")
    assert not workspace.registry.get("clf:2").approved
    with pytest.raises(RolloutNotFoundError):  # nothing was started
        workspace.rollouts.current("clf")

    # the twin passes: approved, and its rollout starts
    validation.validate("clf:3", holdout, "y", champion="clf", gates=gates)  # "clf": the endpoint's stable
    assert workspace.registry.approve("clf:3", reason="validated").approved
    assert workspace.rollouts.start("clf", to="clf:3", strategy="canary").candidate == "clf:3"

    with running_server(settings, workspace) as url:
        rollout = httpx.post(f"{url}/v1/endpoints/clf/rollouts/current/abort", json={}, timeout=30)
        assert rollout.status_code == 200, rollout.text
        refused = httpx.post(f"{url}/v1/endpoints/clf/rollouts", json={"to": "clf:2", "strategy": "canary"}, timeout=60)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "validation_required"
        runs = httpx.get(f"{url}/v1/models/clf/versions/3/validations", timeout=30).json()["validations"]
        assert [r["passed"] for r in runs] == [True] and runs[0]["champion"] == "clf:1"
        assert runs[0]["champion_source"] == "endpoint clf (stable)"
        assert httpx.get(f"{url}/v1/models/clf/versions/9/validations", timeout=30).status_code == 404


def test_regressor_gates_and_fairness_gaps(workspace: Workspace) -> None:
    rng = np.random.default_rng(5)
    x = pd.DataFrame(rng.normal(size=(1500, 3)), columns=["a", "b", "c"])
    y = x.to_numpy() @ np.array([1.5, -2.0, 0.5]) + rng.normal(0, 0.3, 1500)
    train, holdout = x.iloc[:1000], x.iloc[1000:].assign(y=y[1000:])
    full = LinearRegression().fit(train, y[:1000])
    partial = LinearRegression().fit(train.assign(c=0.0), y[:1000])  # ignores c: its MAE is higher
    for model in (full, partial):
        workspace.registry.register(model, name="reg", sample_input=train, training_data=train)
    gates = GateSpec.parse(minimum=["r2=0.9"], maximum=["mae=1"], max_regression=0.05)
    worse = workspace.validation.validate("reg:2", holdout, "y", champion="reg:1", gates=gates)
    regression = next(g for g in worse.gates if g.name == "max regression vs champion")
    assert worse.task == "regression" and not regression.passed
    mae = worse.champion_figures["mae"]
    assert mae is not None and regression.limit == pytest.approx(0.05 * mae)
    assert "MAE added" in regression.detail and worse.comparison is not None and worse.comparison.mcnemar is None
    same = workspace.validation.validate("reg:1", holdout, "y", champion="reg:1", gates=gates)
    assert same.passed and same.figures["r2"] is not None and same.figures["r2"] > 0.9
    assert same.missing["fairness_gap"] == "fairness gaps are computed for classifiers"

    # a classifier with a sensitive feature: its gap is measured and gated; without one the gate says why
    train_c, target, data = _data()
    train_g = train_c.assign(group=(train_c["f0"] > 0).astype(int))
    data_g = data.assign(group=(data["f0"] > 0).astype(int))
    clf = LogisticRegression(max_iter=500).fit(train_g, target)
    workspace.registry.register(
        clf, name="fair", sample_input=train_g, training_data=train_g, sensitive_features=["group"]
    )
    fair_gates = GateSpec.parse(max_fairness_gap=0.05)
    fair = workspace.validation.validate("fair:1", data_g, "y", gates=fair_gates)
    [section] = fair.fairness
    assert section["feature"] == "group" and [g["group"] for g in section["groups"]] == ["0", "1"]
    assert fair.figures["fairness_gap"] is not None
    gap = fair.gates[0]
    assert gap.name == "max fairness_gap" and gap.measured == fair.figures["fairness_gap"]
    assert gap.passed == (gap.measured <= 0.05)
    workspace.registry.register(clf, name="plain", sample_input=train_g)
    plain = workspace.validation.validate("plain:1", data_g, "y", gates=fair_gates)
    assert not plain.passed and "declares no sensitive features" in plain.gates[0].detail
    assert plain.missing["drift"].startswith("plain:1 has no reference profile")
