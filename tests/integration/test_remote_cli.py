"""Remote mode: the CLI with SHIPYARD_URL and a key drives a real server through its HTTP API, with no store of its own.

Each CLI run is a subprocess whose SHIPYARD_HOME is an empty directory of its own (the "laptop"): afterwards it
holds no shipyard.db, so nothing was read from or written to a local store. The model is uploaded
(``POST /v1/models/{name}/versions``), checked against its SHA-256 and registered by the server.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression

from shipyard.config import Settings
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_support import ServerUrl, running_server

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]
UPLOAD_LIMIT = 256 * 1024
FEATURES = ["f0", "f1", "f2", "f3"]


@dataclass(frozen=True, slots=True)
class Remote:
    url: ServerUrl
    workspace: Workspace
    laptop: Path
    files: Path
    keys: dict[str, str]

    def cli(self, *args: str, key: str | None = "admin-a") -> subprocess.CompletedProcess[str]:
        """``shipyard ARGS`` on the laptop: SHIPYARD_URL and a key, an empty SHIPYARD_HOME, no database URL."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
        env.update({"SHIPYARD_HOME": str(self.laptop), "SHIPYARD_URL": self.url, "COLUMNS": "200"})
        if key is not None:
            env["SHIPYARD_API_KEY"] = self.keys[key]
        return subprocess.run([*SHIPYARD, *args], capture_output=True, text=True, env=env, cwd=self.files, timeout=120)

    def ok(self, *args: str, key: str | None = "admin-a") -> str:
        result = self.cli(*args, key=key)
        assert result.returncode == 0, f"shipyard {' '.join(args)}: {result.stderr}"
        return result.stdout


@pytest.fixture
def remote(settings: Settings, workspace: Workspace, tmp_path: Path) -> Iterator[Remote]:
    x, y, _ = iris()
    frame = pd.DataFrame(x, columns=FEATURES)
    files = tmp_path / "work"
    files.mkdir()
    skops.io.dump(LogisticRegression(max_iter=500).fit(frame, y), files / "model.skops")
    skops.io.dump(LogisticRegression(max_iter=500, C=0.05).fit(frame, y), files / "candidate.skops")
    frame.assign(label=y).to_csv(files / "train.csv", index=False)
    keys = {
        name: workspace.keys.create(name, role=role)[1]
        for name, role in (("admin-a", "admin"), ("admin-b", "admin"), ("ops", "operator"))
    }
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    with running_server(settings.model_copy(update={"max_upload_bytes": UPLOAD_LIMIT}), workspace) as url:
        yield Remote(url, workspace, laptop, files, keys)
    assert not (laptop / "shipyard.db").exists(), "a remote command opened a local store"
    assert list(laptop.iterdir()) == [], "a remote command wrote into its SHIPYARD_HOME"


def test_the_cli_registers_serves_rolls_out_approves_and_audits_through_the_server(remote: Remote) -> None:
    out = remote.ok(
        "models", "register", "model.skops", "--name", "fraud", "--sample", "train.csv", "--target", "label"
    )
    assert "registered fraud:1" in out
    out = remote.ok(
        "models", "register", "candidate.skops", "--name", "fraud", "--sample", "train.csv",
        "--training-data", "train.csv", "--target", "label", "--metric", "auc=0.93", "--tag", "team=risk", "--json",
    )  # fmt: skip
    card = json.loads(out)
    assert card["ref"] == "fraud:2" and card["metrics"] == {"auc": 0.93} and card["tags"] == {"team": "risk"}
    assert card["registered_by"] == "key:admin-a" and card["source"] == "upload:candidate.skops"
    stored = remote.workspace.registry.get("fraud:2")
    assert stored.sha256 == card["sha256"] and stored.reference_profile is not None  # profiled from the upload
    assert stored.training_data_hash is not None

    listed = json.loads(remote.ok("models", "list", "--json"))
    assert [(m["name"], m["latest_version"]) for m in listed] == [("fraud", 2)]
    assert [v["ref"] for v in json.loads(remote.ok("models", "list", "fraud", "--json"))] == ["fraud:1", "fraud:2"]
    assert "fraud:1" in remote.ok("models", "show", "fraud:1")
    assert json.loads(remote.ok("models", "show", "fraud:2", "--json"))["sha256"] == card["sha256"]

    assert "fraud@champion -> fraud:1" in remote.ok("models", "alias", "fraud:1", "champion")
    assert "endpoint fraud -> fraud@champion (now fraud:1)" in remote.ok(
        "endpoints", "create", "fraud", "--model", "fraud@champion"
    )
    assert [e["version"] for e in json.loads(remote.ok("endpoints", "list", "--json"))] == ["fraud:1"]
    assert json.loads(remote.ok("endpoints", "show", "fraud", "--json"))["model"] == "fraud@champion"
    row = json.dumps([dict(zip(FEATURES, [5.1, 3.5, 1.4, 0.2], strict=True))])
    _wait_serving(remote.url, remote.keys["admin-a"])
    predicted = json.loads(remote.ok("predict", "fraud", "--data", row))
    assert predicted["version"] == 1

    started = json.loads(remote.ok("rollout", "start", "fraud", "--to", "fraud:2", "--strategy", "canary", "--json"))
    assert started["spec"]["candidate"] == "fraud:2" and started["stable"] == "fraud:1"
    assert "canary" in remote.ok("rollout", "status", "fraud")
    assert "aborted" in remote.ok("rollout", "abort", "fraud", "--reason", "remote test")

    # Four-eyes: the key that registered fraud:2 cannot approve it; another admin key can.
    refused = remote.cli("models", "approve", "fraud:2", "--reason", "mine")
    assert refused.returncode == 1 and "four-eyes" in refused.stderr and "Traceback" not in refused.stderr
    assert "fraud:2 is approved by key:admin-b" in remote.ok(
        "models", "approve", "fraud:2", "--reason", "AUC 0.93", key="admin-b"
    )
    assert "removed fraud@champion" in remote.ok("models", "alias", "fraud:1", "champion", "--remove", key="ops")
    remote.ok("endpoints", "set", "fraud", "--model", "fraud:2", key="ops")
    assert "fraud:1 is archived" in remote.ok("models", "archive", "fraud:1", key="ops")

    made = json.loads(remote.ok("keys", "create", "--name", "ci", "--role", "predictor", "--expires", "30d", "--json"))
    assert made["secret"].startswith("shy_") and made["created_by"] == "key:admin-a"
    assert "ci" in remote.ok("keys", "list")
    assert "revoked" in remote.ok("keys", "revoke", "ci")
    assert next(k for k in remote.workspace.keys.list() if k.name == "ci").revoked_at is not None

    events = json.loads(remote.ok("audit", "list", "--json", "--limit", "1000"))
    seen = {(e["action"], e["actor"]) for e in events}
    for wanted in (
        ("model.register", "key:admin-a"),
        ("model.approve", "key:admin-b"),
        ("model.alias.delete", "key:ops"),
        ("model.archive", "key:ops"),
        ("endpoint.create", "key:admin-a"),
        ("key.create", "key:admin-a"),
        ("key.revoke", "key:admin-a"),
    ):
        assert wanted in seen, wanted
    assert "chain intact" in remote.ok("audit", "verify")
    assert "deleted endpoint fraud" in remote.ok("endpoints", "delete", "fraud", key="ops")
    assert remote.workspace.endpoints.list() == []


def test_an_upload_whose_digest_does_not_match_is_refused_and_nothing_is_stored(remote: Remote) -> None:
    data = (remote.files / "model.skops").read_bytes()
    response = httpx.post(
        f"{remote.url}/v1/models/fraud/versions",
        headers=_auth(remote, "admin-a") | {"X-Content-SHA256": hashlib.sha256(data + b"x").hexdigest()},
        files={"file": ("model.skops", data)},
        data={"metadata": "{}"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "digest_mismatch"
    assert remote.workspace.registry.list_models() == []
    assert list(Path(remote.workspace.settings.artifact_uri).rglob("*.*")) == []


def test_an_upload_over_the_limit_is_refused_with_413(remote: Remote) -> None:
    big = remote.files / "big.skops"
    big.write_bytes(os.urandom(UPLOAD_LIMIT + 4096))
    response = httpx.post(
        f"{remote.url}/v1/models/fraud/versions",
        headers=_auth(remote, "admin-a") | {"X-Content-SHA256": hashlib.sha256(big.read_bytes()).hexdigest()},
        files={"file": ("big.skops", big.read_bytes())},
    )
    assert response.status_code == 413, response.text
    result = remote.cli("models", "register", "big.skops", "--name", "fraud")
    assert result.returncode == 1 and "limit" in result.stderr and "Traceback" not in result.stderr
    assert remote.workspace.registry.list_models() == []


def test_an_operator_may_not_register_a_trusted_pickle_and_an_admin_vouches_for_one(remote: Remote) -> None:
    x, y, _ = iris()
    with (remote.files / "model.pkl").open("wb") as f:
        pickle.dump(LogisticRegression(max_iter=500).fit(pd.DataFrame(x, columns=FEATURES), y), f)
    refused = remote.cli("models", "register", "model.pkl", "--name", "fraud", "--trusted", key="ops")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "key:ops may not register code" in refused.stderr and "admin" in refused.stderr
    assert remote.workspace.registry.list_models() == []
    card = json.loads(
        remote.ok(
            "models",
            "register",
            "model.pkl",
            "--name",
            "fraud",
            "--trusted",
            "--sample",
            "train.csv",
            "--target",
            "label",
            "--json",
        )
    )
    assert card["trusted"] and card["vouched_by"] == "key:admin-a"


def test_without_a_key_the_cli_says_to_set_shipyard_api_key_in_one_line(remote: Remote) -> None:
    result = remote.cli("models", "list", key=None)
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "SHIPYARD_API_KEY" in result.stderr


def test_a_command_without_a_remote_form_says_so_instead_of_using_a_local_store(remote: Remote) -> None:
    for args in (["gc"], ["db", "upgrade"], ["models", "convert", "fraud:1"]):
        result = remote.cli(*args)
        assert result.returncode == 1, args
        assert "no remote form" in result.stderr and "SHIPYARD_URL" in result.stderr, args


def _auth(remote: Remote, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {remote.keys[key]}", "X-Shipyard-Client": "test"}


def _wait_serving(url: str, key: str, timeout_s: float = 30.0) -> None:
    """A new endpoint is picked up within a poll interval: wait for readiness, not a fixed time."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready = httpx.get(f"{url}/readyz").json()
        if "fraud" in json.dumps(ready) and httpx.get(f"{url}/readyz").status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"endpoint fraud not ready: {ready}")
