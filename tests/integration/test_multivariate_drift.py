"""Multivariate drift as served: the PCA fitted at registration, live rows' reconstruction errors profiled by
the recorder off the request path, the verdict read over HTTP, by ``shipyard monitor`` and in the HTML report.

Two features whose correlation flips sign while both marginals stay put: the per-feature tests see nothing,
the PCA reconstruction error does; the same traffic without the flip flags neither.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

from shipyard.config import Settings
from shipyard.workspace import Workspace
from tests.serving_support import running_server

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]


def correlated(n: int, rho: float, seed: int) -> pd.DataFrame:
    """x and y correlated by ``rho`` with the same marginals whatever its sign, and an independent z."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=n)
    return pd.DataFrame({"x": 10 + 2 * x, "y": -3 + 0.5 * y, "z": rng.normal(size=n)})


def _send(url: str, endpoint: str, frame: pd.DataFrame, batch: int = 100) -> None:
    with httpx.Client(timeout=30) as client:
        for start in range(0, len(frame), batch):
            rows = frame.iloc[start : start + batch].to_dict(orient="records")
            response = client.post(f"{url}/v1/endpoints/{endpoint}/predict", json={"instances": rows})
            assert response.status_code == 200, response.text


def _drift(url: str, endpoint: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/v1/endpoints/{endpoint}/monitoring", params={"window": "1h"}, timeout=60)
    assert response.status_code == 200, response.text
    (version,) = response.json()["versions"]
    return dict(version["drift"])


def _cli(args: list[str], home: Path) -> str:
    env = {**os.environ, "SHIPYARD_HOME": str(home), "COLUMNS": "250"}
    done = subprocess.run([*SHIPYARD, *args], capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())


def test_a_flipped_correlation_is_flagged_by_multivariate_drift_only(
    settings: Settings, workspace: Workspace, tmp_path: Path
) -> None:
    train = correlated(5000, 0.9, seed=0)
    model = LinearRegression().fit(train, train["x"] + train["z"])
    version = workspace.registry.register(model, name="joint", sample_input=train[:20], training_data=train)
    pca = version.reference_profile.multivariate if version.reference_profile is not None else None
    assert pca is not None and pca.columns == ("x", "y", "z") and len(pca.components) == 2
    workspace.endpoints.create("flipped", model="joint:1")
    workspace.endpoints.create("steady", model="joint:1")
    fast = settings.model_copy(update={"poll_interval_s": 0.2, "log_flush_s": 0.2, "monitor_flush_s": 0.3})

    with running_server(fast, workspace) as url:
        _send(url, "flipped", correlated(800, -0.9, seed=1))
        _send(url, "steady", correlated(800, 0.9, seed=2))
        flipped, steady = _drift(url, "flipped"), _drift(url, "steady")
        monitor = _cli(["monitor", "flipped", "--url", url], tmp_path / "cli")
        _cli(["report", "flipped", "-o", str(tmp_path / "flipped.html"), "--url", url], tmp_path / "cli")

    # 800 rows: KS decides, for the features (Holm over three) and for the reconstruction error (alpha 0.05).
    assert flipped["drifted_features"] == [] and flipped["dataset_drifted"] is False
    section = flipped["multivariate"]
    assert section["drifted"] is True and flipped["drifted"] is True
    assert section["test"] == "ks" and section["error"]["p_value"] < 1e-10
    assert section["error"]["rows"] == 800 and section["outside_band"] is True
    assert section["live_mean"] > 1.5 * section["reference_mean"]
    assert steady["drifted"] is False and steady["drifted_features"] == []
    assert steady["multivariate"]["drifted"] is False and steady["multivariate"]["error"]["rows"] == 800
    assert "multivariate: drifted (PCA reconstruction error, ks p=" in monitor
    html = (tmp_path / "flipped.html").read_text()
    assert "Multivariate drift" in html and "PCA reconstruction error over x, y, z" in html


def test_a_version_without_a_pca_says_why(settings: Settings, workspace: Workspace) -> None:
    train = pd.DataFrame({"x": np.linspace(0, 1, 200), "flat": np.ones(200)})
    model = LinearRegression().fit(train, train["x"])
    workspace.registry.register(model, name="single", sample_input=train[:20], training_data=train)
    workspace.endpoints.create("single", model="single:1")
    with running_server(settings, workspace) as url:
        _send(url, "single", train)
        section = _drift(url, "single")["multivariate"]
    assert section["drifted"] is False and section["error"] is None
    assert section["note"].startswith("the training data has 1 feature(s) that vary")
