"""Storage: equal models share one blob; a killed registration leaves no version, and `shipyard gc` cleans up."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from shipyard.artifacts import open_artifact_store
from shipyard.artifacts.base import SweepableStore
from shipyard.config import Settings
from shipyard.store.tables import models
from shipyard.workspace import Workspace
from tests.models import churn_frame, churn_pipeline, iris

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]
REPO_ROOT = Path(__file__).resolve().parents[2]


def cli_env(settings: Settings) -> dict[str, str]:
    """The CLI pointed at the test's own store (SQLite or PostgreSQL) and artifact directory."""
    return {
        **os.environ,
        "SHIPYARD_HOME": str(settings.home),
        "SHIPYARD_DATABASE_URL": settings.database_url,
        "SHIPYARD_ARTIFACT_URI": settings.artifact_uri,
        "PYTHONPATH": str(REPO_ROOT),
        "COLUMNS": "200",
    }


def cli(settings: Settings, *args: str) -> str:
    done = subprocess.run([*SHIPYARD, *args], capture_output=True, text=True, env=cli_env(settings), timeout=180)
    assert done.returncode == 0, done.stderr
    return done.stdout


def blob_files(settings: Settings) -> list[Path]:
    """Every file under the store's sha256/ tree, blobs and temporary files alike."""
    return sorted(p for p in (Path(settings.artifact_uri) / "sha256").glob("*/*") if p.is_file())


def stored_blobs(settings: Settings) -> list[Path]:
    return [p for p in blob_files(settings) if not p.name.startswith(".")]


# -- one blob for equal models -------------------------------------------------------------------


def test_the_same_model_registered_three_times_is_one_blob_and_the_cards_say_so(
    settings: Settings, workspace: Workspace
) -> None:
    frame, _ = churn_frame()
    versions = [workspace.registry.register(churn_pipeline(), name="churn", sample_input=frame[:20]) for _ in range(3)]

    assert len({v.sha256 for v in versions}) == 1
    assert [p.name for p in blob_files(settings)] == [versions[0].sha256]
    assert workspace.registry.identical_versions(versions[1]) == ["churn:1", "churn:3"]
    card = json.loads(cli(settings, "models", "show", "churn:3", "--json"))
    assert card["identical_to"] == ["churn:1", "churn:2"]
    assert card["sha256"] == hashlib.sha256(workspace.registry.read_artifact(versions[2])).hexdigest()
    assert "identical to churn:1, churn:2" in cli(settings, "models", "show", "churn:3")
    loaded = workspace.registry.load("churn:2")
    np.testing.assert_array_equal(loaded.predict(frame[:20]), churn_pipeline().predict(frame[:20]))


def test_a_different_model_is_not_called_identical(workspace: Workspace) -> None:
    x, y, _ = iris()
    from sklearn.linear_model import LogisticRegression

    def fitted(c: float) -> LogisticRegression:
        return LogisticRegression(C=c, max_iter=500).fit(x, y)  # enough iterations to converge on iris

    first = workspace.registry.register(fitted(1.0), name="iris", sample_input=x[:5])
    second = workspace.registry.register(fitted(0.1), name="iris", sample_input=x[:5])

    assert first.sha256 != second.sha256
    assert workspace.registry.identical_versions(second) == []


CANONICAL_SCRIPT = """
import hashlib, json, skops.io
from shipyard.flavors import skops_canonical
from tests.models import churn_pipeline
model = churn_pipeline()
state = {"names": {"alpha", "beta", "gamma", "delta", "epsilon"}, "model": model}
print(json.dumps({
    "raw": hashlib.sha256(skops.io.dumps(model)).hexdigest(),
    "canonical": hashlib.sha256(skops_canonical.dumps(model)).hexdigest(),
    "with_set": hashlib.sha256(skops_canonical.dumps(state)).hexdigest(),
}))
"""


def test_skops_bytes_are_canonical_across_processes_and_hash_seeds() -> None:
    def hashes(seed: str) -> dict[str, str]:
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO_ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", CANONICAL_SCRIPT], capture_output=True, text=True, env=env, timeout=120, check=True
        )
        return json.loads(done.stdout)

    one, two = hashes("1"), hashes("2")

    assert one["raw"] != two["raw"]  # skops alone: object ids and timestamps differ between processes
    assert one["canonical"] == two["canonical"]
    assert one["with_set"] == two["with_set"]


# -- what a killed registration leaves, and gc ------------------------------------------------------

REGISTER_SCRIPT = """
import resource, signal, sys
import numpy as np
from sklearn.neighbors import KNeighborsRegressor
import shipyard

# About 14 MB of training rows, bigger than the size limit below; each mode its own rows (and so its own blob).
x = np.random.default_rng(len(sys.argv[1])).normal(size=(200_000, 8))
model = KNeighborsRegressor(algorithm="brute").fit(x, x[:, 0])
if sys.argv[1] == "die-mid-write":
    # The kernel kills the process the moment a write passes 4 MB: Python ignores SIGXFSZ, so restore it.
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))
shipyard.register(model, "big", sample_input=x[:5])
"""


def _start_registration(settings: Settings, tmp_path: Path, mode: str) -> subprocess.Popen[str]:
    script = tmp_path / "register_big.py"
    script.write_text(textwrap.dedent(REGISTER_SCRIPT))
    command = [sys.executable, str(script), mode]
    return subprocess.Popen(command, env=cli_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(found: Callable[[], bool], proc: subprocess.Popen[str], what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not found():
        if proc.poll() is not None:
            stderr = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"the registration ended (rc {proc.returncode}) before {what}: {stderr}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {what} within {timeout_s}s")
        time.sleep(0.05)


def test_killed_registrations_leave_no_version_and_gc_removes_their_leftovers(
    settings: Settings, workspace: Workspace, tmp_path: Path
) -> None:
    x, _, small = iris()
    kept = workspace.registry.register(small, name="big", sample_input=x[:5])
    kept_blob = Path(workspace.artifacts.location(kept.sha256))

    # 1. Killed with SIGKILL after its blob is stored, while it waits to record the version (we hold the lock).
    with workspace.db.write() as conn:
        conn.execute(sa.select(models.c.id).where(models.c.name == "big").with_for_update())
        with _start_registration(settings, tmp_path, "kill-after-blob") as proc:
            _wait_for(lambda: len(stored_blobs(settings)) == 2, proc, "a second stored blob")
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
    # 2. Killed by the kernel in the middle of writing its blob.
    with _start_registration(settings, tmp_path, "die-mid-write") as proc:
        assert proc.wait(timeout=180) == -signal.SIGXFSZ, proc.stderr.read() if proc.stderr else ""

    assert [v.ref for v in workspace.registry.list_versions("big")] == ["big:1"]
    orphan = next(p for p in stored_blobs(settings) if p.name != kept.sha256)
    temporary = next(p for p in blob_files(settings) if p.name.startswith(".tmp-"))
    assert temporary.stat().st_size == 4 << 20

    recent_only = json.loads(cli(settings, "gc", "--json"))  # default --min-age 1h: both are too young
    assert recent_only["items"] == [] and recent_only["recent_kept"] == 2

    dry = json.loads(cli(settings, "gc", "--min-age", "0s", "--json"))
    assert dry["applied"] is False and dry["removed"] == 0
    assert sorted((i["kind"], Path(i["key"]).name) for i in dry["items"]) == [
        ("temporary", temporary.name),
        ("unreferenced", orphan.name),
    ]
    assert dry["size_bytes"] == orphan.stat().st_size + temporary.stat().st_size
    assert orphan.exists() and temporary.exists()

    text = cli(settings, "gc", "--min-age", "0s", "--apply")
    assert "removed 2 of 2 file(s)" in text

    assert not orphan.exists() and not temporary.exists()
    assert blob_files(settings) == [kept_blob]
    np.testing.assert_array_equal(workspace.registry.load("big:1").predict(x[:5]), small.predict(x[:5]))
    assert json.loads(cli(settings, "gc", "--min-age", "0s", "--json"))["items"] == []


# -- the listing both stores give gc ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=(port := _free_port()))
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SweepableStore:
    if request.param == "local":
        return open_artifact_store(str(tmp_path / "artifacts"))  # type: ignore[return-value]
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    endpoint = request.getfixturevalue("s3_endpoint")
    import boto3

    bucket = f"shipyard-{os.urandom(4).hex()}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return open_artifact_store(f"s3://{bucket}/prefix", s3_endpoint_url=endpoint)  # type: ignore[return-value]


def test_stores_list_their_blobs_and_remove_only_what_was_not_stored_again(store: SweepableStore) -> None:
    assert isinstance(store, SweepableStore)
    first, second = store.put(b"first blob"), store.put(b"second blob, longer")  # type: ignore[attr-defined]

    listed = {item.sha256: item for item in store.stored()}

    assert set(listed) == {first, second}
    assert listed[second].size_bytes == len(b"second blob, longer")
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    assert store.remove(listed[first], unchanged_since=long_ago) is False  # written after the cutoff: kept
    assert store.remove(listed[first], unchanged_since=datetime.now(UTC) + timedelta(seconds=5)) is True
    assert {item.sha256 for item in store.stored()} == {second}


def test_a_blob_stored_again_after_gc_listed_it_is_kept(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "artifacts"))
    digest = store.put(b"an old orphan, about to be registered again")
    path = Path(store.location(digest))
    two_hours_ago = time.time() - 7200
    os.utime(path, (two_hours_ago, two_hours_ago))
    assert isinstance(store, SweepableStore)
    listed = next(iter(store.stored()))
    cutoff = datetime.now(UTC) - timedelta(hours=1)
    assert listed.modified_at < cutoff  # gc would take it...

    store.put(b"an old orphan, about to be registered again")  # ...but a registration stores it again first

    assert store.remove(listed, unchanged_since=cutoff) is False
    assert path.exists()


class _WriteOnlyStore:
    """A third-party artifact store that implements the seam but cannot list what it holds."""

    uri = "memory://plugin"

    def put(self, data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def get(self, sha256: str, *, label: str) -> bytes:
        raise NotImplementedError

    def exists(self, sha256: str) -> bool:
        return False

    def location(self, sha256: str) -> str:
        return f"{self.uri}/{sha256}"


def test_gc_on_a_store_that_cannot_list_says_it_is_not_supported(workspace: Workspace) -> None:
    from shipyard.errors import ConfigError
    from shipyard.services.gc import collect_garbage

    with pytest.raises(ConfigError, match=r"^shipyard gc is not supported for artifact store memory://plugin: "):
        collect_garbage(workspace.db, _WriteOnlyStore(), now=datetime.now(UTC), apply=True)
