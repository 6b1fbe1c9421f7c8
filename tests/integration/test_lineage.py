"""Lineage: the commit recorded is the user's repository, whether they register from the CLI or from Python."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from shipyard.flavors.skops_trust import skops_io
from tests.models import iris

# The console script users run: it lives in the environment's bin/, which may be inside another checkout.
SHIPYARD_SCRIPT = Path(sys.executable).parent / "shipyard"
REPO_ROOT = Path(__file__).resolve().parents[2]


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip()


def make_repo(path: Path) -> str:
    """A repository with one committed training script; returns its HEAD."""
    path.mkdir(parents=True)
    git(path, "init", "-q")
    (path / "train.py").write_text("# training code\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "train")
    return git(path, "rev-parse", "HEAD")


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    x, _, model = iris()
    model_file, sample = tmp_path / "model.skops", tmp_path / "sample.csv"
    model_file.write_bytes(skops_io().dumps(model))
    pd.DataFrame(x[:10], columns=["f0", "f1", "f2", "f3"]).to_csv(sample, index=False)
    return {"model": model_file, "sample": sample, "home": tmp_path / "home"}


def cli(files: dict[str, Path], cwd: Path, *args: str) -> dict:
    env = {**os.environ, "SHIPYARD_HOME": str(files["home"])}
    command = [str(SHIPYARD_SCRIPT), "models", "register", str(files["model"]), "--name", "iris"]
    command += ["--sample", str(files["sample"]), "--json", *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=180)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["code"]


def test_cli_records_the_commit_of_the_directory_it_runs_in_not_shipyards(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    assert SHIPYARD_SCRIPT.is_file()
    repo = tmp_path / "user-repo"
    head = make_repo(repo)
    (repo / "src").mkdir()

    clean = cli(files, repo / "src")
    (repo / "train.py").write_text("# training code, edited\n")
    dirty = cli(files, repo)

    assert clean == {"commit": head, "dirty": False, "repository": str(repo.resolve())}
    assert dirty == {"commit": head, "dirty": True, "repository": str(repo.resolve())}
    assert git(REPO_ROOT, "rev-parse", "HEAD") != head


def test_cli_code_dir_overrides_the_working_directory(tmp_path: Path, files: dict[str, Path]) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    make_repo(here)
    there_head = make_repo(there)

    code = cli(files, here, "--code-dir", str(there))

    assert code["commit"] == there_head and code["repository"] == str(there.resolve())


def test_cli_outside_any_repository_records_no_commit(tmp_path: Path, files: dict[str, Path]) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()

    assert cli(files, outside) == {"commit": None, "dirty": None, "repository": None}


def test_cli_refuses_a_code_dir_that_does_not_exist(tmp_path: Path, files: dict[str, Path]) -> None:
    env = {**os.environ, "SHIPYARD_HOME": str(files["home"])}
    command = [str(SHIPYARD_SCRIPT), "models", "register", str(files["model"]), "--name", "iris"]
    command += ["--sample", str(files["sample"]), "--code-dir", str(tmp_path / "missing")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180)

    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0 and "missing" in done.stderr and "--code-dir" in done.stderr


def _run_script(repo: Path, files: dict[str, Path], body: str, *, cwd: Path) -> dict:
    script = repo / "register_model.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json
            import skops.io
            import pandas as pd
            import shipyard

            path = {str(files["model"])!r}
            model = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
            sample = pd.read_csv({str(files["sample"])!r})
            {body}
            print(json.dumps(version.code.to_dict()))
            """
        )
    )
    env = {**os.environ, "SHIPYARD_HOME": str(files["home"]), "PYTHONPATH": str(REPO_ROOT / "src")}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=cwd, timeout=180)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_python_api_from_a_script_agrees_with_the_cli(tmp_path: Path, files: dict[str, Path]) -> None:
    repo = tmp_path / "user-repo"
    head = make_repo(repo)
    (repo / "train.py").write_text("# edited, not committed\n")

    from_api = _run_script(repo, files, 'version = shipyard.register(model, "iris", sample_input=sample)', cwd=repo)
    from_cli = cli(files, repo)

    assert from_api == from_cli == {"commit": head, "dirty": True, "repository": str(repo.resolve())}


def test_python_api_code_dir_overrides_the_script_directory(tmp_path: Path, files: dict[str, Path]) -> None:
    repo, other = tmp_path / "user-repo", tmp_path / "other"
    make_repo(repo)
    other_head = make_repo(other)
    body = f'version = shipyard.register(model, "iris", sample_input=sample, code_dir={str(other)!r})'

    code = _run_script(repo, files, body, cwd=tmp_path)

    assert code["commit"] == other_head and code["repository"] == str(other.resolve())
