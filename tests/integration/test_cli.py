"""The ``shipyard`` command as users run it: a real process, real files, real store."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import skops.io

from tests.models import churn_frame, churn_pipeline, iris

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]


def run(
    args: list[str], home: Path, *, ok: bool = True, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHIPYARD_HOME": str(home), "COLUMNS": "200", **(extra_env or {})}
    result = subprocess.run([*SHIPYARD, *args], capture_output=True, text=True, env=env, timeout=180)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    frame, target = churn_frame()
    model_path = tmp_path / "churn.skops"
    model_path.write_bytes(skops.io.dumps(churn_pipeline()))
    train = frame.assign(churned=target)
    csv = tmp_path / "train.csv"
    train.to_csv(csv, index=False)
    parquet = tmp_path / "train.parquet"
    train.to_parquet(parquet)
    pkl = tmp_path / "iris.pkl"
    pkl.write_bytes(pickle.dumps(iris()[2]))
    sample = tmp_path / "iris.csv"
    pd.DataFrame(iris()[0][:20], columns=["f0", "f1", "f2", "f3"]).to_csv(sample, index=False)
    return {"model": model_path, "csv": csv, "parquet": parquet, "pkl": pkl, "iris_sample": sample}


def test_register_list_show_alias_archive(tmp_path: Path, files: dict[str, Path]) -> None:
    home = tmp_path / "home"
    out = run(
        [
            "models",
            "register",
            str(files["model"]),
            "--name",
            "churn",
            "--sample",
            str(files["csv"]),
            "--training-data",
            str(files["parquet"]),
            "--target",
            "churned",
            "--metric",
            "auc=0.81",
            "--tag",
            "team=growth",
            "--notes",
            "baseline",
        ],
        home,
    )
    assert "registered churn:1" in out.stdout
    run(
        [
            "models",
            "register",
            str(files["model"]),
            "--name",
            "churn",
            "--sample",
            str(files["csv"]),
            "--target",
            "churned",
        ],
        home,
    )

    listing = json.loads(run(["models", "list", "--json"], home).stdout)
    assert [(m["name"], m["latest_version"], m["versions"]) for m in listing] == [("churn", 2, 2)]
    versions = json.loads(run(["models", "list", "churn", "--json"], home).stdout)
    assert [v["version"] for v in versions] == [1, 2]

    card = json.loads(run(["models", "show", "churn:1", "--json"], home).stdout)
    assert card["metrics"] == {"auc": 0.81} and card["tags"] == {"team": "growth"}
    assert [f["name"] for f in card["signature"]["inputs"]] == [
        "tenure_months",
        "monthly_charges",
        "plan",
        "region",
    ]
    assert card["reference_profile"]["rows"] == 300 and card["reference_profile"]["target"] is not None
    assert card["source"].startswith("file:") and card["training_data_hash"]

    text = run(["models", "show", "churn:1"], home).stdout
    for expected in (
        "churn:1",
        "sha256",
        "signature",
        "plan",
        "reference profile",
        "hyperparameters",
        "auc=0.81",
    ):
        assert expected in text

    assert "churn@champion -> churn:2" in run(["models", "alias", "churn:2", "champion"], home).stdout
    assert json.loads(run(["models", "show", "churn@champion", "--json"], home).stdout)["version"] == 2
    assert_one_line_error(run(["models", "archive", "churn:2"], home, ok=False), "churn@champion")
    assert "churn:1 is archived" in run(["models", "archive", "churn:1"], home).stdout
    assert "churn:2 is approved" in run(["models", "approve", "churn:2"], home).stdout
    human = run(["models", "list"], home).stdout
    assert "churn" in human and "@champion" in human


def test_pickle_needs_trusted_on_the_command_line(tmp_path: Path, files: dict[str, Path]) -> None:
    home = tmp_path / "home"
    refused = run(
        ["models", "register", str(files["pkl"]), "--name", "iris", "--sample", str(files["iris_sample"])],
        home,
        ok=False,
    )
    assert_one_line_error(refused, "pickle", "--trusted")
    assert json.loads(run(["models", "list", "--json"], home).stdout) == []
    run(
        [
            "models",
            "register",
            str(files["pkl"]),
            "--name",
            "iris",
            "--sample",
            str(files["iris_sample"]),
            "--trusted",
        ],
        home,
    )
    assert json.loads(run(["models", "show", "iris", "--json"], home).stdout)["flavor_options"]["format"] == "skops"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["models", "show", "nope:1"], ["no model named 'nope'"]),
        (["models", "show", "bad ref"], ["invalid model reference"]),
        (["models", "register", "missing.skops", "--name", "x"], ["no model file at missing.skops"]),
        (["models", "register", "{model}", "--name", "x"], ["without sample_input", "--sample"]),
        (
            ["models", "register", "{model}", "--name", "x", "--sample", "nope.csv"],
            ["sample file nope.csv does not exist"],
        ),
        (["models", "register", "{model}", "--name", "x", "--flavor", "keras"], ["unknown flavor 'keras'"]),
        (["models", "list", "nope"], ["no model named 'nope'"]),
        (["models", "alias", "nope:1", "champion"], ["no model named 'nope'"]),
    ],
)
def test_errors_are_one_line_and_a_non_zero_exit(
    tmp_path: Path, files: dict[str, Path], args: list[str], fragments: list[str]
) -> None:
    args = [a.replace("{model}", str(files["model"])) for a in args]
    assert_one_line_error(run(args, tmp_path / "home", ok=False), *fragments)


def test_bad_settings_and_unreachable_store_are_one_line(tmp_path: Path) -> None:
    result = run(
        ["models", "list"],
        tmp_path,
        ok=False,
        extra_env={"SHIPYARD_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
    )
    assert_one_line_error(result, "cannot reach the control-plane store")
    result = run(["models", "list"], tmp_path, ok=False, extra_env={"SHIPYARD_DATABASE_URL": "mysql://x/y"})
    assert_one_line_error(result, "not supported")


def test_every_command_has_help_with_an_example(tmp_path: Path) -> None:
    for command in (
        ["models", "register"],
        ["models", "list"],
        ["models", "show"],
        ["models", "alias"],
        ["models", "archive"],
        ["models", "approve"],
        ["models", "import-mlflow"],
        ["models", "convert"],
        ["db", "upgrade"],
        ["demo"],
    ):
        out = run([*command, "--help"], tmp_path).stdout
        assert "Example:" in out, command


def test_db_upgrade_and_demo(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert "schema revision" in run(["db", "upgrade"], home).stdout
    out = run(["demo", "--no-serve"], home).stdout
    assert "registered demo:1" in out and "demo@champion" in out and "curl -s -X POST" in out
    card = json.loads(run(["models", "show", "demo@champion", "--json"], home).stdout)
    assert card["reference_profile"]["rows"] > 100 and card["metrics"]["accuracy"] > 0.9
    assert card["signature"]["output"]["classes"] == ["setosa", "versicolor", "virginica"]
    assert json.loads(run(["endpoints", "show", "demo", "--json"], home).stdout)["version"] == "demo:1"
