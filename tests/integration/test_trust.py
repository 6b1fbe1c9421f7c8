"""Trust: a skops file runs no code without --trusted; code (pickles, pyfuncs) loads only where vouched for."""

from __future__ import annotations

import builtins
import collections
import copy
import io
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.dummy import DummyRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from shipyard.config import Settings
from shipyard.errors import UntrustedArtifactError
from shipyard.flavors.skops_trust import skops_io
from shipyard.store.tables import model_versions
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_models import Doubler
from tests.serving_support import running_server

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]


def write_shell_payload_model(path: Path, marker: Path) -> None:
    """A Pipeline built only from names the old prefix list trusted, which runs a shell command when called.

    deque(X, maxlen=0) empties the input, max(empty, default=...) yields the attacker's string, and eval
    runs it: no class or function outside builtins, collections and scikit-learn.
    """
    command = f"__import__('os').system('touch {marker}') or [[0.0, 0.0, 0.0, 0.0]]"
    final = DummyRegressor().fit(np.zeros((3, 4)), np.zeros(3))
    pipeline = Pipeline(
        [
            ("empty", FunctionTransformer(func=collections.deque, kw_args={"maxlen": 0})),
            ("payload", FunctionTransformer(func=builtins.max, kw_args={"default": command})),
            ("run", FunctionTransformer(func=builtins.eval)),
            ("model", final),
        ]
    )
    path.write_bytes(skops_io().dumps(pipeline))


def test_skops_file_that_evals_is_refused_at_registration_and_its_payload_never_runs(
    workspace: Workspace, tmp_path: Path
) -> None:
    model_file, marker = tmp_path / "model.skops", tmp_path / "pwned"
    write_shell_payload_model(model_file, marker)

    with pytest.raises(UntrustedArtifactError) as refused:
        workspace.registry.register_file(str(model_file), name="evil", sample_input=iris()[0][:5])

    message = str(refused.value)
    assert "\n" not in message
    assert "builtins.eval, builtins.max, collections.deque" in message
    assert "trusted=True" in message
    assert not marker.exists()
    assert workspace.registry.list_models() == []


def test_cli_refuses_the_payload_file_in_one_line_without_running_it(tmp_path: Path) -> None:
    model_file, marker, sample = tmp_path / "model.skops", tmp_path / "pwned", tmp_path / "sample.csv"
    write_shell_payload_model(model_file, marker)
    pd.DataFrame(iris()[0][:5], columns=["a", "b", "c", "d"]).to_csv(sample, index=False)
    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path / "home"), "COLUMNS": "200"}

    result = subprocess.run(
        [*SHIPYARD, "models", "register", str(model_file), "--name", "evil", "--sample", str(sample)],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "builtins.eval" in lines[0] and "--trusted" in lines[0]
    assert not marker.exists()


def test_pyfunc_registration_needs_trust_because_its_source_runs(workspace: Workspace) -> None:
    sample = pd.DataFrame({"x": [1.0, 2.0]})

    with pytest.raises(UntrustedArtifactError, match=r"source runs whenever it is loaded.*trusted=True"):
        workspace.registry.register(Doubler(), name="svc", sample_input=sample)
    assert workspace.registry.list_models() == []

    version = workspace.registry.register(Doubler(), name="svc", sample_input=sample, trusted=True)
    assert version.trusted and version.runs_code
    stored = workspace.registry.get("svc:1")
    assert stored.trusted and stored.to_dict()["runs_code"] is True
    np.testing.assert_array_equal(workspace.registry.load("svc:1").predict(sample), [2.0, 4.0])


def test_pyfunc_file_is_refused_before_its_module_is_imported(workspace: Workspace, tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    module = tmp_path / "noisy_model.py"
    module.write_text(
        f"open({str(marker)!r}, 'w').close()\n\nclass Model:\n    def predict(self, x):\n        return x\n"
    )

    with pytest.raises(UntrustedArtifactError, match="--trusted"):
        workspace.registry.register_file(f"{module}:Model", name="noisy", sample_input=pd.DataFrame({"x": [1.0]}))

    assert not marker.exists()


def test_code_registered_before_trust_was_recorded_loads_only_for_a_caller_who_vouches(workspace: Workspace) -> None:
    sample = pd.DataFrame({"x": [1.0]})
    workspace.registry.register(Doubler(), name="svc", sample_input=sample, trusted=True)
    # Versions stored before schema 0006 have trusted = false: nobody vouched for their code.
    with workspace.db.write() as conn:
        conn.execute(sa.update(model_versions).values(trusted=False))

    with pytest.raises(UntrustedArtifactError, match=r"cannot load svc:1: it is a pyfunc.*trusted=True"):
        workspace.registry.load("svc:1")
    np.testing.assert_array_equal(workspace.registry.load("svc:1", trusted=True).predict(sample), [2.0])


def test_server_serves_a_pickle_and_a_pyfunc_registered_with_trust(settings: Settings, workspace: Workspace) -> None:
    x, _, model = iris()
    model = copy.deepcopy(model)
    model.audit_log_ = io.BytesIO(b"kept by the user's own code")  # skops cannot store it: a pickle is used
    workspace.registry.register(model, name="iris", sample_input=x[:10], trusted=True)
    workspace.registry.register(Doubler(), name="svc", sample_input=pd.DataFrame({"x": [1.0]}), trusted=True)
    assert workspace.registry.get("iris:1").flavor_options["format"] == "pickle"
    workspace.endpoints.create("iris", model="iris:1")
    workspace.endpoints.create("svc", model="svc:1")
    row = dict(zip(["f0", "f1", "f2", "f3"], x[0].tolist(), strict=True))

    with running_server(settings, workspace) as url:
        iris_answer = httpx.post(f"{url}/v1/endpoints/iris/predict", json={"instances": [row]})
        svc_answer = httpx.post(f"{url}/v1/endpoints/svc/predict", json={"instances": [{"x": 21.0}]})

    assert iris_answer.status_code == 200, iris_answer.text
    assert iris_answer.json()["predictions"] == [int(model.predict(x[:1])[0])]
    assert svc_answer.status_code == 200, svc_answer.text
    assert svc_answer.json()["predictions"] == [42.0]


def test_card_and_version_list_mark_code(tmp_path: Path) -> None:
    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path / "home"), "COLUMNS": "120"}
    module, sample = tmp_path / "scoring.py", tmp_path / "sample.csv"
    module.write_text("class Model:\n    def predict(self, x):\n        return x['x'] * 2\n")
    pd.DataFrame({"x": [1.0, 2.0]}).to_csv(sample, index=False)

    def cli(*args: str) -> str:
        result = subprocess.run([*SHIPYARD, *args], capture_output=True, text=True, env=env, timeout=180)
        assert result.returncode == 0, result.stderr
        return result.stdout

    cli("models", "register", f"{module}:Model", "--name", "scoring", "--sample", str(sample), "--trusted")
    card = cli("models", "show", "scoring:1")
    listing = cli("models", "list", "scoring")

    assert "runs code when loaded (registered with --trusted)" in card
    assert "pyfunc (code)" in listing
