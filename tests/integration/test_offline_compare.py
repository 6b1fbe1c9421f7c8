"""Offline comparisons on real CSV and Parquet files: ``shipyard drift``, ``shipyard report --model`` and
``shipyard.compare``.

The files are seeded: the current data moves one feature by one standard deviation, flips the correlation of
two others (their marginals unchanged), repeats rows, holds a constant column, drops one column, adds one and
turns one from numbers into text. Every figure the report gives is checked against what pandas, NumPy or
scikit-learn compute on the same rows; every bad input is a report that says why, or one line and exit 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

import shipyard
from shipyard.workspace import Workspace

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]
N = 4000


def _data(seed: int, *, current: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shift = 1.0 if current else 0.0
    a = rng.normal(size=N)
    sign = -1.0 if current else 1.0
    frame = pd.DataFrame(
        {
            "amount": rng.normal(loc=shift, size=N),
            "a": a,
            "b": sign * 0.9 * a + 0.44 * rng.normal(size=N),
            "plan": rng.choice(np.array(["free", "pro", "team"], dtype=object), N, p=(0.6, 0.3, 0.1)),
            "tenure": rng.integers(0, 60, N).astype(np.float64),
            "code": rng.integers(0, 5, N),
        }
    )
    frame["label"] = (frame["a"] + rng.normal(scale=0.5, size=N) > 0).astype(int)
    frame["score"] = np.where(rng.random(N) < 0.85, frame["label"], 1 - frame["label"])
    if current:
        frame.loc[N - 300 :, :] = frame.iloc[:300].to_numpy()  # 300 exact repeats of earlier rows
        frame["tenure"] = 12.0  # a broken feed: one value
        frame = frame.drop(columns=["code"]).assign(region="eu")  # one column gone, one new
        frame["plan"] = frame["plan"].map({"free": 0, "pro": 1, "team": 2})  # words became numbers
    return frame


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame, pd.DataFrame]:
    reference, current = _data(1, current=False), _data(2, current=True)
    ref_path, cur_path = tmp_path / "reference.csv", tmp_path / "current.parquet"
    reference.to_csv(ref_path, index=False)
    current.to_parquet(cur_path, index=False)
    return ref_path, cur_path, reference, current


def _cli(args: list[str], home: Path, workspace: Workspace | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process; given a workspace, on that workspace's store (SQLite or PostgreSQL)."""
    env = {**os.environ, "SHIPYARD_HOME": str(home), "COLUMNS": "250"}
    if workspace is not None:
        env["SHIPYARD_DATABASE_URL"] = workspace.settings.database_url
        env["SHIPYARD_ARTIFACT_URI"] = workspace.settings.artifact_uri
    return subprocess.run([*SHIPYARD, *args], capture_output=True, text=True, env=env, timeout=300, cwd=home)


def test_shipyard_drift_writes_the_report_and_one_summary_line(
    files: tuple[Path, Path, pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    ref_path, cur_path, _, current = files
    page, data = tmp_path / "out" / "drift.html", tmp_path / "drift.json"
    done = _cli(
        [
            "drift",
            str(ref_path),
            str(cur_path),
            "--target",
            "label",
            "--prediction",
            "score",
            "-o",
            str(page),
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1
    assert "drift in" in done.stdout and "amount" in done.stdout and "300 duplicate rows" in done.stdout
    html = page.read_text(encoding="utf-8")
    for section in ("columns", "drift", "distributions", "multivariate", "quality", "performance"):
        assert f'<section id="{section}"' in html
    assert "http://" not in html and "https://" not in html  # self-contained

    done = _cli(
        [
            "drift",
            str(ref_path),
            str(cur_path),
            "--target",
            "label",
            "--prediction",
            "score",
            "--no-multivariate",
            "-o",
            str(data),
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(data.read_text(encoding="utf-8"), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    schema = report["schema"]
    assert (schema["missing"], schema["extra"]) == (["code"], ["region"])
    (change,) = schema["changed_types"]  # the kinds named, with the type as read in brackets
    assert change["feature"] == "plan" and change["reference"].startswith("text (")
    assert change["current"] == "number (int64)"
    # The moved feature and the one stuck at a single value; not the pair whose marginals stayed put.
    assert set(report["drift"]["drifted_features"]) == {"amount", "tenure"}
    notes = {f["feature"]: f["note"] for f in report["drift"]["features"]}
    assert "type changed" in notes["plan"] and notes["code"] == "missing from the current data"
    performance = report["performance"]
    assert performance["accuracy"] == pytest.approx(accuracy_score(current["label"], current["score"]), abs=1e-12)
    assert performance["f1"] == pytest.approx(f1_score(current["label"], current["score"]), abs=1e-12)
    assert report["multivariate"] is None and report["multivariate_note"] == "not run (turned off)"


def test_compare_in_python_matches_pandas_and_numpy_on_the_same_rows(
    files: tuple[Path, Path, pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    ref_path, cur_path, reference, current = files
    result = shipyard.compare(reference, cur_path, chunk_rows=1000)  # a frame against a file, in 4 chunks
    quality = result.quality
    # Duplicates are exact: pandas' own count over every column.
    assert quality.duplicates is not None
    assert quality.duplicates.duplicates == int(current.duplicated().sum()) == 300
    assert quality.duplicates.reference_duplicates == int(reference.duplicated().sum())
    assert quality.constant_features == ("tenure",)
    # Summary statistics: moments exact, quantiles read from the reference's fine bins.
    amount = quality.summary("amount")
    assert amount is not None and amount.live is not None
    assert amount.live.mean == pytest.approx(current["amount"].mean(), rel=1e-12)
    assert amount.live.sd == pytest.approx(current["amount"].std(), rel=1e-9)
    assert amount.live.quantiles["p50"] == pytest.approx(current["amount"].median(), abs=0.05)
    # The flipped pair is found; marginals alone would not say so.
    assert quality.correlations is not None
    changed = {(c.a, c.b): c for c in quality.correlations.changed}
    r_ref, r_cur = np.corrcoef(reference["a"], reference["b"])[0, 1], np.corrcoef(current["a"], current["b"])[0, 1]
    assert changed[("a", "b")].reference_r == pytest.approx(r_ref, abs=1e-12)
    assert changed[("a", "b")].live_r == pytest.approx(r_cur, abs=1e-12)
    assert "a" not in result.drift.drifted_features and "b" not in result.drift.drifted_features
    # The domain classifier (on a bounded sample) sees the shift and the flip.
    assert result.multivariate is not None and result.multivariate.drifted and result.multivariate.auc > 0.8
    json.dumps(result.to_dict(), allow_nan=False)
    page = result.save_html(tmp_path / "python.html")
    assert "Correlation changes" in page.read_text(encoding="utf-8")
    # The same files read from disk give the same verdicts.
    again = shipyard.compare(ref_path, cur_path, multivariate=False)
    assert again.drift.drifted_features == result.drift.drifted_features
    assert again.quality.duplicates == quality.duplicates


def test_bad_data_gives_a_report_that_says_why(tmp_path: Path) -> None:
    reference = pd.DataFrame({"x": np.arange(100.0), "y": np.full(100, np.nan), "c": ["k"] * 100})
    current = pd.DataFrame({"x": np.full(50, np.nan), "y": np.full(50, np.nan), "c": ["k"] * 50})
    result = shipyard.compare(reference, current, multivariate=False)
    notes = " | ".join(result.report.notes)
    assert "y: every reference value is missing" in notes and "x: every current value is missing" in notes
    by_name = {f.feature: f for f in result.drift.features}
    assert by_name["x"].test is None and by_name["x"].note == "all 50 live values are missing"
    assert result.quality.constant_features == ("c",)
    summary = result.quality.summary("x")
    assert summary is not None and summary.note == "all 50 values are missing: no statistics"
    json.dumps(result.to_dict(), allow_nan=False)  # nothing undefined shown as a number

    header_only = tmp_path / "empty.csv"
    header_only.write_text("x,y,c\n", encoding="utf-8")
    empty = shipyard.compare(reference, header_only, multivariate=False)
    assert empty.report.current.rows == 0 and not empty.schema.changed
    assert any("has no rows" in n for n in empty.report.notes)
    assert empty.performance is None
    empty.save_html(tmp_path / "empty.html")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.parquet", b"not parquet", "cannot read"),
        ("data.txt", b"x\n1\n", "unknown format '.txt'"),
        ("missing.csv", None, "does not exist"),
    ],
)
def test_unreadable_or_unknown_files_are_one_line_and_exit_1(
    files: tuple[Path, Path, pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
    name: str,
    content: bytes | None,
    message: str,
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    done = _cli(["drift", str(files[0]), str(path)], tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and message in done.stderr and "Traceback" not in done.stderr


def test_report_compares_a_file_with_a_registered_version(
    workspace: Workspace, files: tuple[Path, Path, pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    _, cur_path, reference, _ = files
    features = reference[["amount", "a", "b", "tenure"]]
    model = LogisticRegression().fit(features, reference["label"])
    version = workspace.registry.register(
        model, name="churn", sample_input=features[:20], training_data=features, training_target=reference["label"]
    )
    output = tmp_path / "churn.json"
    done = _cli(
        [
            "report",
            "--model",
            version.ref,
            "--data",
            str(cur_path),
            "--target",
            "label",
            "--prediction",
            "score",
            "-o",
            str(output),
        ],
        workspace.settings.home,
        workspace,
    )
    assert done.returncode == 0, done.stderr
    assert "drift in" in done.stdout
    report = json.loads(output.read_text(encoding="utf-8"))
    assert report["reference"]["name"] == f"{version.ref} (reference profile)"
    assert "amount" in report["drift"]["drifted_features"]
    assert report["schema"]["extra"] == ["plan", "region"]  # the file's columns the version does not take
    assert report["performance"]["kind"] == "classification" and report["performance"]["labelled"] == N
    assert report["multivariate_note"].startswith("a registered version keeps a profile, not rows")
    assert [c["a"] + "~" + c["b"] for c in report["quality"]["correlations"]["changed"]] == ["a~b"]

    half = _cli(["report", "--model", version.ref, "-o", str(tmp_path / "x.html")], workspace.settings.home, workspace)
    assert half.returncode == 1 and "--model REF with --data FILE" in half.stderr
