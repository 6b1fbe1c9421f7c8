"""Label drift as served: the training target's class shares against the labels posted as feedback to a real
server, with the prior-probability shift read over HTTP, by ``shipyard monitor`` and in the HTML report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard.config import Settings
from shipyard.workspace import Workspace
from tests.serving_support import running_server

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]


def _rows(n: int, seed: int) -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(seed).normal(size=(n, 3)), columns=["a", "b", "c"])


def _send_and_label(url: str, endpoint: str, frame: pd.DataFrame, labels: list[int]) -> None:
    """One row per request, then each request's label as feedback."""
    ids = []
    with httpx.Client(timeout=30) as client:
        for row in frame.to_dict(orient="records"):
            response = client.post(f"{url}/v1/endpoints/{endpoint}/predict", json={"instances": [row]})
            assert response.status_code == 200, response.text
            ids.append(response.json()["request_id"])
        items = [{"request_id": rid, "label": y} for rid, y in zip(ids, labels, strict=True)]
        assert client.post(f"{url}/v1/endpoints/{endpoint}/feedback", json={"items": items}).status_code == 200


def _version(url: str, endpoint: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/v1/endpoints/{endpoint}/monitoring", params={"window": "1h"}, timeout=60)
    assert response.status_code == 200, response.text
    (version,) = response.json()["versions"]
    return dict(version)


def _cli(args: list[str], home: Path) -> str:
    env = {**os.environ, "SHIPYARD_HOME": str(home), "COLUMNS": "250"}
    done = subprocess.run([*SHIPYARD, *args], capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())


def test_feedback_whose_class_balance_moved_is_flagged_with_its_prior_shift(
    settings: Settings, workspace: Workspace, tmp_path: Path
) -> None:
    train = _rows(2000, seed=0)
    target = (np.random.default_rng(1).random(2000) < 0.2).astype(int)  # a fifth positive in training
    model = LogisticRegression().fit(train, target)
    version = workspace.registry.register(
        model, name="churn", sample_input=train[:20], training_data=train, training_target=target
    )
    assert version.reference_profile is not None and version.reference_profile.target is not None
    assert version.reference_profile.target.to_dict()["kind"] == "categorical"
    for name in ("moved", "steady", "single"):
        workspace.endpoints.create(name, model="churn:1")
    fast = settings.model_copy(update={"poll_interval_s": 0.2, "log_flush_s": 0.2, "monitor_flush_s": 0.3})

    with running_server(fast, workspace) as url:
        _send_and_label(url, "moved", _rows(200, seed=2), [1] * 100 + [0] * 100)  # half positive now
        steady_labels = (np.random.default_rng(3).random(200) < 0.2).astype(int).tolist()
        _send_and_label(url, "steady", _rows(200, seed=4), steady_labels)
        _send_and_label(url, "single", _rows(40, seed=5), [0] * 40)
        moved, steady, single = _version(url, "moved"), _version(url, "steady"), _version(url, "single")
        monitor = _cli(["monitor", "moved", "--url", url], tmp_path / "cli")
        _cli(["report", "moved", "-o", str(tmp_path / "moved.html"), "--url", url], tmp_path / "cli")

    labels = moved["label_drift"]
    assert labels["drifted"] is True and labels["test"] == "chi2" and labels["labelled"] == 200
    assert labels["drift"]["p_value"] < 1e-10
    priors = {p["label"]: p for p in labels["priors"]}
    assert priors["1"]["labelled"] == pytest.approx(0.5)
    assert priors["1"]["reference"] == pytest.approx(target.mean())
    assert priors["1"]["shift"] == pytest.approx(0.5 - target.mean())
    # The model predicts over every served row: its predicted shares are there beside the labels'.
    assert sum(p["predicted"] for p in labels["priors"]) == pytest.approx(1.0)
    assert steady["label_drift"]["drifted"] is False and steady["label_drift"]["drift"]["p_value"] > 0.05
    assert single["label_drift"]["drift"] is None and single["label_drift"]["drifted"] is False
    assert "every label in this range is '0' (40 labels)" in single["label_drift"]["note"]
    assert "labels: drifted (chi2 p=" in monitor
    assert f"1 {target.mean():.1%}->50.0%" in monitor
    html = (tmp_path / "moved.html").read_text()
    assert "Label drift" in html and "prior-table" in html


def test_a_regressors_labels_are_tested_as_values(settings: Settings, workspace: Workspace) -> None:
    train = _rows(1500, seed=6)
    target = train["a"].to_numpy() * 3 + 1
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(train, target)
    workspace.registry.register(
        model, name="price", sample_input=train[:20], training_data=train, training_target=target
    )
    workspace.endpoints.create("price", model="price:1")
    with running_server(settings, workspace) as url:
        live = _rows(150, seed=7)
        _send_and_label(url, "price", live, [float(v) for v in live["a"].to_numpy() * 3 + 4])  # shifted by 3
        labels = _version(url, "price")["label_drift"]
    assert labels["kind"] == "regression" and labels["drifted"] is True and labels["test"] == "ks"
    assert labels["priors"] == []
