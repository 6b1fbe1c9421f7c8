"""Batch scoring with real models and real CSV / Parquet files, in-process and through the ``shipyard`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard.config import Settings
from shipyard.errors import InvalidArgumentError, InvalidRefError, ModelNotFoundError, PredictionError
from shipyard.flavors.loaded import LoadedModel
from shipyard.services.batch import resolve_model, score_file
from shipyard.workspace import Workspace
from tests.models import churn_frame, churn_pipeline, iris

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]
CHURN_COLUMNS = ["tenure_months", "monthly_charges", "plan", "region"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def ws(home: Path) -> Iterator[Workspace]:
    """A store the CLI subprocess shares (SHIPYARD_HOME), holding churn:1, iris:1 and endpoint churn-api."""
    workspace = Workspace(Settings(home=home))
    frame, _ = churn_frame()
    workspace.registry.register(churn_pipeline(), name="churn", sample_input=frame)
    workspace.registry.register(iris()[2], name="iris", sample_input=iris()[0])
    workspace.endpoints.create("churn-api", model="churn:1")
    try:
        yield workspace
    finally:
        workspace.close()


@pytest.fixture
def churn(ws: Workspace) -> LoadedModel:
    return ws.registry.load("churn:1")


def run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHIPYARD_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([*SHIPYARD, *args], capture_output=True, text=True, env=env, timeout=180)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def churn_rows(rows: int) -> pd.DataFrame:
    """The churn table repeated to ``rows`` rows, with an id column the model does not use."""
    frame, _ = churn_frame()
    repeated = pd.concat([frame] * (rows // len(frame) + 1), ignore_index=True).iloc[:rows]
    return repeated.assign(customer_id=np.arange(rows, dtype=np.int64) + 1000)


def with_bad_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, str]]:
    """A string in a numeric column and nulls in non-nullable columns; returns rows and the feature at fault."""
    bad = frame.astype({"monthly_charges": object, "plan": object})
    bad.loc[5, "monthly_charges"] = "abc"
    bad.loc[7, "plan"] = None
    bad.loc[9, "monthly_charges"] = None
    return bad, {5: "monthly_charges", 7: "plan", 9: "monthly_charges"}


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        # Parquet keeps types, so a mixed column is stored as text: the "string in a numeric column" case.
        mixed = {
            c: frame[c].map(lambda v: None if v is None or v != v else str(v))
            for c in frame
            if frame[c].dtype == object
        }
        pq.write_table(pa.Table.from_pandas(frame.assign(**mixed), preserve_index=False), path, row_group_size=3_000)
    return path


# -- what the output holds -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_output_holds_input_columns_and_the_models_own_predictions_and_probabilities(
    churn: LoadedModel, tmp_path: Path, suffix: str
) -> None:
    frame = churn_rows(1_000)
    source = write(frame, tmp_path / f"in{suffix}")

    summary = score_file(churn, source, tmp_path / "out.parquet", chunk_rows=300)

    out = pd.read_parquet(summary.output_path)
    assert list(out.columns) == [*CHURN_COLUMNS, "customer_id", "prediction", "proba_0", "proba_1"]
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (1_000, 1_000, 0)
    assert summary.rejects_path is None and not (tmp_path / "out.rejects.parquet").exists()
    assert summary.rows_per_s > 0
    features = frame[CHURN_COLUMNS]
    np.testing.assert_array_equal(out["prediction"].to_numpy(), churn.predict(features))
    np.testing.assert_allclose(out[["proba_0", "proba_1"]].to_numpy(), churn.predict_proba(features), rtol=1e-12)
    np.testing.assert_allclose(out["monthly_charges"].to_numpy(), frame["monthly_charges"].to_numpy())
    assert out["plan"].tolist() == frame["plan"].tolist()
    if suffix == ".parquet":  # Parquet keeps its types; a CSV's untyped extra columns stay text
        assert out["customer_id"].tolist() == frame["customer_id"].tolist()
    else:
        assert out["customer_id"].tolist() == [str(v) for v in frame["customer_id"]]


def test_array_layout_classifier_gets_one_probability_column_per_class(ws: Workspace, tmp_path: Path) -> None:
    x, _, model = iris()
    source = tmp_path / "iris.csv"
    pd.DataFrame(x, columns=["f0", "f1", "f2", "f3"]).to_csv(source, index=False)

    summary = score_file(resolve_model(ws, "iris"), source, tmp_path / "iris.parquet", chunk_rows=40)

    out = pd.read_parquet(summary.output_path)
    assert list(out.columns) == ["f0", "f1", "f2", "f3", "prediction", "proba_0", "proba_1", "proba_2"]
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(x))
    np.testing.assert_allclose(out[["proba_0", "proba_1", "proba_2"]].to_numpy(), model.predict_proba(x), rtol=1e-9)


# -- rejects -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_rows_that_break_the_signature_go_to_rejects_with_row_and_reason_and_the_rest_are_scored(
    churn: LoadedModel, tmp_path: Path, suffix: str
) -> None:
    frame = churn_rows(300)
    bad, faults = with_bad_rows(frame)
    source = write(bad, tmp_path / f"in{suffix}")

    summary = score_file(churn, source, tmp_path / "out.parquet", chunk_rows=8)

    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (300, 297, 3)
    assert summary.rejects_path == tmp_path / "out.rejects.parquet"
    rejects = pd.read_parquet(summary.rejects_path)
    assert list(rejects.columns) == [*CHURN_COLUMNS, "customer_id", "row", "reason"]
    assert rejects["row"].tolist() == sorted(faults)
    for row, reason in zip(rejects["row"], rejects["reason"], strict=True):
        assert repr(faults[row]) in reason and not reason.startswith("row ")
    assert "expects a number, got 'abc'" in rejects["reason"][0]
    assert "is missing (null)" in rejects["reason"][1]
    assert rejects["customer_id"].tolist() == [str(frame["customer_id"][r]) for r in sorted(faults)]
    assert rejects["monthly_charges"][0] == "abc"

    out = pd.read_parquet(summary.output_path)
    good = frame.drop(index=list(faults))
    assert out["customer_id"].astype(np.int64).tolist() == good["customer_id"].tolist()
    np.testing.assert_array_equal(out["prediction"].to_numpy(), churn.predict(good[CHURN_COLUMNS]))


def write_picky_model(ws: Workspace, tmp_path: Path) -> None:
    """A pyfunc that raises on negative input, as a model with a bug on some rows would."""
    module = tmp_path / "picky.py"
    module.write_text(
        textwrap.dedent(
            """
            import numpy as np

            class Picky:
                def predict(self, x):
                    a = np.asarray(x["a"], dtype=float)
                    if (a < 0).any():
                        raise ValueError("a must not be negative")
                    return a * 2
            """
        )
    )
    ws.registry.register_file(
        f"{module}:Picky", name="picky", sample_input=pd.DataFrame({"a": [1.0, 2.0]}), trusted=True
    )


def test_rows_the_model_fails_on_are_rejected_with_its_error_and_the_rest_scored(ws: Workspace, tmp_path: Path) -> None:
    write_picky_model(ws, tmp_path)
    a = np.arange(2_000, dtype=np.float64)
    a[[3, 1_500, 1_999]] = -1.0
    source = tmp_path / "a.parquet"
    pd.DataFrame({"a": a}).to_parquet(source)

    summary = score_file(resolve_model(ws, "picky"), source, tmp_path / "out.parquet", chunk_rows=512)

    rejects = pd.read_parquet(summary.rejects_path)
    assert rejects["row"].tolist() == [3, 1_500, 1_999]
    assert all("picky:1 raised ValueError: a must not be negative" in r for r in rejects["reason"])
    out = pd.read_parquet(summary.output_path)
    np.testing.assert_array_equal(out["prediction"].to_numpy(), np.delete(a, [3, 1_500, 1_999]) * 2)


def test_a_model_that_fails_on_every_row_stops_the_job_and_leaves_no_output(ws: Workspace, tmp_path: Path) -> None:
    write_picky_model(ws, tmp_path)
    source = tmp_path / "a.csv"
    pd.DataFrame({"a": -np.arange(1.0, 50.0)}).to_csv(source, index=False)
    output = tmp_path / "out.parquet"
    output.write_bytes(b"an earlier run's output")

    with pytest.raises(PredictionError, match="failed on every row of the first chunk"):
        score_file(resolve_model(ws, "picky"), source, output, chunk_rows=10)

    assert output.read_bytes() == b"an earlier run's output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "home", "out.parquet", "picky.py"]


def test_a_rerun_without_rejects_removes_the_stale_rejects_file(churn: LoadedModel, tmp_path: Path) -> None:
    frame = churn_rows(100)
    bad, _ = with_bad_rows(frame)
    output = tmp_path / "out.parquet"
    assert score_file(churn, write(bad, tmp_path / "bad.csv"), output).rejects_path is not None

    summary = score_file(churn, write(frame, tmp_path / "good.csv"), output)

    assert summary.rejects_path is None and not (tmp_path / "out.rejects.parquet").exists()


def test_header_only_csv_gives_an_empty_typed_output(churn: LoadedModel, tmp_path: Path) -> None:
    source = tmp_path / "empty.csv"
    source.write_text(",".join(CHURN_COLUMNS) + "\n")

    summary = score_file(churn, source, tmp_path / "out.parquet")

    table = pq.read_table(summary.output_path)
    assert (summary.rows_in, table.num_rows) == (0, 0)
    assert table.schema.names == [*CHURN_COLUMNS, "prediction", "proba_0", "proba_1"]
    assert table.schema.field("prediction").type == pa.int64()


# -- chunking ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_many_small_chunks_give_exactly_what_one_chunk_gives(churn: LoadedModel, tmp_path: Path, suffix: str) -> None:
    frame = churn_rows(10_000)
    bad = frame.astype({"monthly_charges": object})
    bad_rows = [0, 999, 1_000, 4_321, 9_999]
    bad.loc[bad_rows, "monthly_charges"] = "n/a?"
    source = write(bad, tmp_path / f"in{suffix}")
    seen: list[int] = []

    many = score_file(churn, source, tmp_path / "many.parquet", chunk_rows=1_000, progress=seen.append)
    one = score_file(churn, source, tmp_path / "one.parquet", chunk_rows=20_000)

    assert seen == [1_000] * 10
    assert pq.read_table(many.output_path).equals(pq.read_table(one.output_path))
    assert pq.ParquetFile(many.output_path).metadata.num_row_groups == 10
    many_rejects = pd.read_parquet(many.rejects_path)
    pd.testing.assert_frame_equal(many_rejects, pd.read_parquet(one.rejects_path))
    assert many_rejects["row"].tolist() == bad_rows


# -- resolution ----------------------------------------------------------------------------------------


def test_an_endpoint_name_scores_with_the_version_it_serves(ws: Workspace) -> None:
    frame, target = churn_frame()
    ws.registry.register(
        LogisticRegression(C=0.01, max_iter=500).fit(pd.get_dummies(frame), target),
        name="churn",
        sample_input=pd.get_dummies(frame),
    )

    assert resolve_model(ws, "churn-api").ref == "churn:1"
    assert resolve_model(ws, "churn").ref == "churn:2"
    assert resolve_model(ws, "churn:1").ref == "churn:1"


def test_a_name_that_is_neither_an_endpoint_nor_a_model_says_so(ws: Workspace) -> None:
    with pytest.raises(ModelNotFoundError, match="no endpoint or model named 'fraud'"):
        resolve_model(ws, "fraud")
    with pytest.raises(InvalidRefError, match="neither an endpoint name nor a model reference"):
        resolve_model(ws, "not a name!")


# -- the command ---------------------------------------------------------------------------------------


def test_command_scores_a_csv_by_endpoint_name_and_prints_a_summary(ws: Workspace, home: Path, tmp_path: Path) -> None:
    bad, _ = with_bad_rows(churn_rows(300))
    source = write(bad, tmp_path / "in.csv")

    result = run(["batch", "churn-api", str(source), "-o", str(tmp_path / "out.parquet"), "--chunk-rows", "50"], home)
    assert result.returncode == 0, result.stderr
    for expected in ("churn:1", "rows in", "300", "scored", "297", "rejected", "out.rejects.parquet"):
        assert expected in result.stdout
    assert result.stderr == ""  # no terminal, so no progress bar

    as_json = run(["batch", "churn", str(source), "-o", str(tmp_path / "again.parquet"), "--json"], home)
    summary = json.loads(as_json.stdout)
    assert {k: summary[k] for k in ("model", "rows_in", "rows_scored", "rows_rejected")} == {
        "model": "churn:1",
        "rows_in": 300,
        "rows_scored": 297,
        "rows_rejected": 3,
    }
    assert summary["rejects"] == str(tmp_path / "again.rejects.parquet")


def test_command_errors_are_one_line_and_leave_no_output(ws: Workspace, home: Path, tmp_path: Path) -> None:
    churn_rows(10).drop(columns=["plan", "region"]).to_csv(tmp_path / "narrow.csv", index=False)
    (tmp_path / "rows.json").write_text("[]")
    output = str(tmp_path / "out.parquet")

    missing_column = run(["batch", "churn-api", str(tmp_path / "narrow.csv"), "-o", output], home)
    assert_one_line_error(missing_column, "lacks columns 'plan', 'region' that churn:1 needs")
    missing_file = run(["batch", "churn", str(tmp_path / "nope.csv"), "-o", output], home)
    assert_one_line_error(missing_file, "nope.csv does not exist")
    bad_extension = run(["batch", "churn", str(tmp_path / "rows.json"), "-o", output], home)
    assert_one_line_error(bad_extension, "must be .csv or .parquet")

    assert not Path(output).exists()
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_output_paths_are_checked_before_any_work(churn: LoadedModel, tmp_path: Path) -> None:
    source = write(churn_rows(10), tmp_path / "in.csv")

    with pytest.raises(InvalidArgumentError, match="does not exist; create"):
        score_file(churn, source, tmp_path / "no" / "out.parquet")
    with pytest.raises(InvalidArgumentError, match=r"must end in \.parquet or \.csv"):
        score_file(churn, source, tmp_path / "out.json")
    (tmp_path / "taken.csv").mkdir()
    with pytest.raises(InvalidArgumentError, match="is a directory"):
        score_file(churn, source, tmp_path / "taken.csv")
    (tmp_path / "taken.csv").rmdir()
    parquet = write(churn_rows(10), tmp_path / "in.parquet")
    with pytest.raises(InvalidArgumentError, match="is the input file"):
        score_file(churn, parquet, parquet)
    with pytest.raises(InvalidArgumentError, match="rejects file and the output are both"):
        score_file(churn, source, tmp_path / "out.parquet", rejects_path=tmp_path / "out.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "in.csv", "in.parquet"]


def test_unreadable_input_is_a_clear_error(churn: LoadedModel, tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(",".join(CHURN_COLUMNS) + "\n1,2.0,basic,north\n3,4.0,plus,south,extra\n")
    not_parquet = tmp_path / "fake.parquet"
    not_parquet.write_text("not parquet")

    with pytest.raises(InvalidArgumentError, match=r"cannot read input file .*ragged.csv: .*Expected 4 columns, got 5"):
        score_file(churn, ragged, tmp_path / "out.parquet")
    with pytest.raises(InvalidArgumentError, match=r"cannot read input file .*fake.parquet"):
        score_file(churn, not_parquet, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


# -- bounded memory ------------------------------------------------------------------------------------

WIDE = [f"f{i}" for i in range(10)]


def write_wide(path: Path, rows: int) -> None:
    """Random float64 rows written in pieces, so the test itself never holds the whole file."""
    rng = np.random.default_rng(0)
    schema = pa.schema([pa.field(name, pa.float64()) for name in WIDE])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, 250_000):
            n = min(250_000, rows - start)
            writer.write_table(pa.table({name: rng.normal(size=n) for name in WIDE}, schema=schema))


def peak_rss_mb(args: list[str], home: Path, tmp_path: Path) -> float:
    """Run the command and return its own peak resident memory (os.wait4 reports just that child)."""
    env = {**os.environ, "SHIPYARD_HOME": str(home)}
    with (tmp_path / "stdout").open("w") as out, (tmp_path / "stderr").open("w") as err:
        process = subprocess.Popen([*SHIPYARD, *args], stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen would think it still runs
    assert os.waitstatus_to_exitcode(status) == 0, (tmp_path / "stderr").read_text()
    return usage.ru_maxrss / 1024  # KiB on Linux


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss units and wait4 as on Linux")
def test_memory_follows_the_chunk_size_not_the_file_size(ws: Workspace, home: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    sample = pd.DataFrame(rng.normal(size=(500, 10)), columns=WIDE)
    ws.registry.register(LogisticRegression().fit(sample, sample["f0"] > 0), name="wide", sample_input=sample)
    big_rows, small_rows = 2_000_000, 200_000
    write_wide(tmp_path / "big.parquet", big_rows)
    write_wide(tmp_path / "small.parquet", small_rows)
    in_memory_mb = big_rows * len(WIDE) * 8 / 2**20  # ~153 MiB of float64

    args = ["batch", "wide", "--chunk-rows", "50000", "-o"]
    try:
        small = peak_rss_mb([*args, str(tmp_path / "s.parquet"), str(tmp_path / "small.parquet")], home, tmp_path)
        big = peak_rss_mb([*args, str(tmp_path / "b.parquet"), str(tmp_path / "big.parquet")], home, tmp_path)
        assert pq.ParquetFile(tmp_path / "b.parquet").metadata.num_rows == big_rows
    finally:  # ~450 MB of files; pytest keeps recent temp folders around
        for name in ("big.parquet", "small.parquet", "b.parquet", "s.parquet"):
            (tmp_path / name).unlink(missing_ok=True)
    # Ten times the rows must not mean more memory: a reader that held the file would add ~140 MiB here.
    assert big - small < 0.25 * in_memory_mb, (big, small)
    print(f"peak RSS: {small:.0f} MiB for {small_rows:,} rows, {big:.0f} MiB for {big_rows:,} ({in_memory_mb:.0f} MiB)")


# -- CSV output ----------------------------------------------------------------------------------------


def test_a_csv_output_holds_the_same_columns_and_values_as_the_parquet_output(
    churn: LoadedModel, tmp_path: Path
) -> None:
    frame = churn_rows(500)
    bad, faults = with_bad_rows(frame)
    source = write(bad, tmp_path / "in.parquet")

    parquet = score_file(churn, source, tmp_path / "out.parquet", chunk_rows=120)
    csv = score_file(churn, source, tmp_path / "out.csv", chunk_rows=120)

    assert csv.output_path == tmp_path / "out.csv" and csv.rejects_path == tmp_path / "out.rejects.csv"
    as_parquet, as_csv = pd.read_parquet(parquet.output_path), pd.read_csv(csv.output_path)
    assert list(as_csv.columns) == list(as_parquet.columns)
    assert list(as_csv.columns) == [*CHURN_COLUMNS, "customer_id", "prediction", "proba_0", "proba_1"]
    assert len(as_csv) == 500 - len(faults)
    np.testing.assert_array_equal(as_csv["prediction"].to_numpy(), as_parquet["prediction"].to_numpy())
    # Probabilities, one column per class, written with full precision.
    np.testing.assert_allclose(as_csv[["proba_0", "proba_1"]].to_numpy(), as_parquet[["proba_0", "proba_1"]].to_numpy())
    assert as_csv["plan"].tolist() == as_parquet["plan"].tolist()
    rejects = pd.read_csv(csv.rejects_path)
    assert list(rejects.columns) == [*CHURN_COLUMNS, "customer_id", "row", "reason"]
    assert rejects["row"].tolist() == sorted(faults)
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_command_writes_csv_when_the_output_is_named_csv(ws: Workspace, home: Path, tmp_path: Path) -> None:
    source = write(churn_rows(40), tmp_path / "in.csv")

    result = run(["batch", "churn-api", str(source), "-o", str(tmp_path / "scores.csv"), "--json"], home)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["output"] == str(tmp_path / "scores.csv")
    header = (tmp_path / "scores.csv").read_text().splitlines()[0]
    assert header == '"tenure_months","monthly_charges","plan","region","customer_id","prediction","proba_0","proba_1"'
    assert len(pd.read_csv(tmp_path / "scores.csv")) == 40
