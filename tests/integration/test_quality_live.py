"""Live data quality through a real server on 127.0.0.1: summary statistics beside the reference's, constant
features, duplicate rows within a background batch, and a flipped correlation, in the monitoring JSON, the
terminal report and the HTML report."""

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
from sklearn.linear_model import LinearRegression

from shipyard.config import Settings
from shipyard.monitoring.quality_stats import LIVE_DUPLICATES_METHOD
from shipyard.workspace import Workspace
from tests.serving_support import running_server

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]


def _frame(rows: int, seed: int, *, sign: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=rows)
    return pd.DataFrame(
        {"a": a, "b": sign * 0.9 * a + 0.44 * rng.normal(size=rows), "level": rng.uniform(10, 20, rows)}
    )


def _monitoring(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/v1/endpoints/price/monitoring", params={"window": "1h"}, timeout=60)
    assert response.status_code == 200, response.text
    (version,) = response.json()["versions"]
    return dict(version)


def test_live_quality_shows_summaries_constants_duplicates_and_correlation_changes(
    settings: Settings, workspace: Workspace, tmp_path: Path
) -> None:
    train = _frame(3000, seed=1)
    model = LinearRegression().fit(train, train["a"] * 2 + train["level"])
    version = workspace.registry.register(model, name="price", sample_input=train[:20], training_data=train)
    assert version.reference_profile is not None and version.reference_profile.comoments is not None
    workspace.endpoints.create("price", model=version.ref)
    live = _frame(400, seed=2, sign=-1.0)
    live["level"] = 15.0  # a feed stuck at one value
    body = pd.concat([live, live.iloc[:50]])  # 50 rows sent twice in one request: one background batch
    fast = settings.model_copy(update={"poll_interval_s": 0.2, "log_flush_s": 0.2, "monitor_flush_s": 0.3})
    with running_server(fast, workspace) as url:
        response = httpx.post(
            f"{url}/v1/endpoints/price/predict", json={"instances": body.to_dict(orient="records")}, timeout=60
        )
        assert response.status_code == 200, response.text
        report = _monitoring(url)
        for _ in range(50):  # windows reach the store every monitor_flush_s
            if report["operational"]["rows"] == len(body):
                break
            report = _monitoring(url)
        env = {**os.environ, "SHIPYARD_HOME": str(tmp_path / "cli"), "COLUMNS": "250"}
        page = tmp_path / "price.html"
        done = subprocess.run(
            [*SHIPYARD, "report", "price", "-o", str(page), "--since", "1h", "--url", url],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        monitor = subprocess.run(
            [*SHIPYARD, "monitor", "price", "--since", "1h", "--url", url],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert monitor.returncode == 0, monitor.stderr

    quality = report["quality"]
    assert quality["duplicates"]["duplicates"] == 50 and quality["duplicates"]["rows"] == len(body)
    assert quality["duplicates"]["method"] == LIVE_DUPLICATES_METHOD
    assert quality["constant_features"] == ["level"]
    summaries = {s["feature"]: s for s in quality["summaries"]}
    a = summaries["a"]
    assert a["live"]["count"] == len(body) and a["live"]["mean"] == pytest.approx(body["a"].mean(), rel=1e-9)
    assert a["reference"]["mean"] == pytest.approx(train["a"].mean(), rel=1e-9)
    assert summaries["level"]["live"]["constant"] is True and summaries["level"]["live"]["sd"] == 0.0
    changes = quality["correlations"]
    assert [(c["a"], c["b"]) for c in changes["changed"]] == [("a", "b")]
    assert changes["changed"][0]["live_r"] == pytest.approx(np.corrcoef(body["a"], body["b"])[0, 1], abs=1e-9)
    html = page.read_text(encoding="utf-8")
    assert "Duplicate rows" in html and "Correlation changes" in html and "Summary statistics" in html
    assert "50 duplicate rows" in monitor.stdout and "constant: level" in monitor.stdout
