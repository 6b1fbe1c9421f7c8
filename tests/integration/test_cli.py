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


# -- usage errors, help, version -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["models", "register", "--bogus"],
            "error: no such option: --bogus (see `shipyard models register --help`)",
        ),
        (["models", "register"], "error: missing argument 'path' (see `shipyard models register --help`)"),
        (
            ["serve", "--port", "99999"],
            "error: invalid value for '--port': 99999 is not a TCP port; use 1 to 65535 (see `shipyard serve --help`)",
        ),
        (["demo", "--port", "0"], "error: invalid value for '--port': 0 is not a TCP port; use 1 to 65535"),
        (["serve", "--port", "eighty"], "error: invalid value for '--port'"),
        (["modles", "list"], "error: no such command 'modles'. Did you mean 'models'? (see `shipyard --help`)"),
    ],
)
def test_usage_errors_are_one_line_with_the_help_to_read_and_exit_2(tmp_path: Path, args: list[str], line: str) -> None:
    result = run(args, tmp_path / "home", ok=False)

    assert result.returncode == 2
    assert_one_line_error(result, line)
    assert result.stdout == ""


@pytest.mark.parametrize("group", [[], ["models"], ["endpoints"], ["rollout"], ["feedback"], ["db"]])
def test_every_group_has_help_with_an_example_and_a_bare_group_shows_it(tmp_path: Path, group: list[str]) -> None:
    assert "Example: shipyard" in run([*group, "--help"], tmp_path).stdout
    bare = run(group, tmp_path)
    assert bare.stdout.startswith("Usage: shipyard") and bare.stderr == ""


def test_version_is_printed(tmp_path: Path) -> None:
    assert run(["--version"], tmp_path).stdout == "shipyard 0.1.0\n"


# -- listings and the model card -------------------------------------------------------------------------


def test_models_list_fits_80_columns_without_cutting_names_aliases_or_statuses(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    from shipyard.config import Settings
    from shipyard.workspace import Workspace

    home = tmp_path / "home"
    name = "customer-churn-propensity-eu"
    aliases = ["champion", "challenger", "staging", "canary-eu-west", "shadow"]
    x, y, _ = iris()
    workspace = Workspace(Settings(home=home))
    try:
        workspace.registry.register(iris()[2], name=name, sample_input=x, metrics={"auc": 0.91, "log_loss": 0.2334})
        workspace.registry.register(LogisticRegression(C=0.1, max_iter=500).fit(x, y), name=name, sample_input=x)
        workspace.registry.register(iris()[2], name="iris", sample_input=x)
        for alias in aliases:
            workspace.registry.set_alias(f"{name}:2", alias)
        workspace.registry.approve(f"{name}:1")
    finally:
        workspace.close()

    narrow = {"COLUMNS": "80"}
    models = run(["models", "list"], home, extra_env=narrow).stdout
    versions = run(["models", "list", name], home, extra_env=narrow).stdout

    for text in (models, versions):
        assert max(len(line.rstrip()) for line in text.splitlines()) <= 80, text
        assert "…" not in text
    words = models.split()
    assert name in words and "iris" in words
    assert all(f"@{alias}→2" in words for alias in aliases)
    words = versions.split()
    assert all(f"@{alias}" in words for alias in aliases)
    assert {"approved", "registered", "auc=0.91", "log_loss=0.2334"} <= set(words)


def test_models_show_lists_a_pipelines_steps_once_with_their_own_settings(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y, _ = iris()
    model = tmp_path / "pipe.skops"
    model.write_bytes(skops.io.dumps(make_pipeline(StandardScaler(), LogisticRegression(C=0.5)).fit(x, y)))
    sample = tmp_path / "sample.csv"
    pd.DataFrame(x[:30], columns=["f0", "f1", "f2", "f3"]).to_csv(sample, index=False)
    home = tmp_path / "home"
    run(["models", "register", str(model), "--name", "pipe", "--sample", str(sample)], home)

    card = run(["models", "show", "pipe:1"], home).stdout.splitlines()

    start = next(i for i, line in enumerate(card) if line.startswith("hyperparameters"))
    assert card[start].split() == ["hyperparameters", "memory=None,", "transform_input=None,", "verbose=False"]
    assert card[start + 1].split() == ["standardscaler", "StandardScaler()"]
    assert card[start + 2].split() == ["logisticregression", "LogisticRegression(C=0.5)"]
    assert card[start + 3].startswith("reference profile")
    assert not any("logisticregression__" in line or "steps=" in line for line in card)
    stored = json.loads(run(["models", "show", "pipe:1", "--json"], home).stdout)["hyperparameters"]
    assert stored["logisticregression__C"] == 0.5  # everything is still kept, and printed by --json


def test_register_marks_sensitive_features_for_fairness(tmp_path: Path, files: dict[str, Path]) -> None:
    home = tmp_path / "home"
    base = ["models", "register", str(files["model"]), "--name", "churn", "--sample", str(files["csv"])]
    run([*base, "--target", "churned", "--sensitive-feature", "plan", "--sensitive-feature", "region"], home)

    inputs = json.loads(run(["models", "show", "churn:1", "--json"], home).stdout)["signature"]["inputs"]
    assert {f["name"] for f in inputs if f.get("sensitive")} == {"plan", "region"}
    unknown = run([*base, "--target", "churned", "--sensitive-feature", "gender"], home, ok=False)
    assert_one_line_error(unknown, "unknown sensitive features ['gender']", "tenure_months")


# -- user input that used to end in "internal error" ------------------------------------------------------


def test_unwritable_outputs_are_one_line_errors_naming_the_path(tmp_path: Path, files: dict[str, Path]) -> None:
    home = tmp_path / "home"
    (tmp_path / "taken.html").mkdir()
    (tmp_path / "a-file").write_text("x")
    rows = str(files["csv"])

    for args, line in (
        (["report", "demo", "-o", "/proc/x.html"], "error: cannot write /proc/x.html: No such file or directory"),
        (["report", "demo", "-o", str(tmp_path / "taken.html")], "is a directory; name a file inside it"),
        (["report", "demo", "-o", str(tmp_path / "a-file" / "r.html")], f"{tmp_path / 'a-file'} is a file"),
        (["feedback", "export", "demo", "-o", "/proc/x.parquet"], "error: cannot write /proc/x.parquet"),
        (["batch", "demo", rows, "-o", "/proc/scores.csv"], "error: cannot write output file /proc/scores.csv"),
        (["batch", "demo", str(tmp_path), "-o", "out.csv"], f"input file {tmp_path} is a directory"),
    ):
        result = run(args, home, ok=False)
        assert result.returncode == 1
        assert_one_line_error(result, line)


def test_unreadable_inputs_are_one_line_errors_naming_the_file(tmp_path: Path, files: dict[str, Path]) -> None:
    home = tmp_path / "home"
    latin = tmp_path / "row.json"
    latin.write_bytes(b'{"plan": "caf\xe9"}')  # Latin-1, not UTF-8
    latin_csv = tmp_path / "rows.csv"
    latin_csv.write_bytes(b"tenure_months,monthly_charges,plan,region\n3,70.5,caf\xe9,north\n")
    register = ["models", "register", str(files["model"]), "--name", "churn"]

    for args, fragments in (
        (["predict", "demo", "--data", str(latin)], [f"cannot read --data file {latin}", "utf-8"]),
        ([*register, "--sample", str(tmp_path)], [f"sample file {tmp_path} is a directory"]),
        ([*register, "--sample", str(latin_csv)], [f"cannot read sample file {latin_csv}", "utf-8"]),
    ):
        result = run(args, home, ok=False)
        assert result.returncode == 1
        assert_one_line_error(result, *fragments)
    run([*register, "--sample", str(files["csv"]), "--target", "churned"], home)
    scored = run(["batch", "churn", str(latin_csv), "-o", str(tmp_path / "scores.csv")], home, ok=False)
    assert_one_line_error(scored, f"cannot read input file {latin_csv}", "invalid UTF8")
    assert not (tmp_path / "scores.csv").exists()


def test_a_settings_file_nested_thousands_deep_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "deep.toml"
    config.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")

    result = run(["models", "list"], tmp_path / "home", ok=False, extra_env={"SHIPYARD_CONFIG": str(config)})

    assert result.returncode == 1
    assert_one_line_error(result, f"error: cannot read settings file {config}: it is nested too deeply")
