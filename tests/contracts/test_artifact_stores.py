"""Every artifact store passes the same suite: local files, and S3 through a moto server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.artifacts import ArtifactStore, open_artifact_store
from shipyard.errors import ArtifactIntegrityError, ArtifactNotFoundError, ConfigError, InvalidArgumentError


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible server (moto's standalone server), bound to 127.0.0.1 and stopped after."""
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return open_artifact_store(str(tmp_path / "artifacts"))
    request.getfixturevalue("s3_env")
    endpoint = request.getfixturevalue("s3_endpoint")
    import boto3

    bucket = f"shipyard-{os.urandom(4).hex()}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return open_artifact_store(f"s3://{bucket}/prefix", s3_endpoint_url=endpoint)


def _tamper(store: ArtifactStore, digest: str, data: bytes) -> None:
    """Overwrite a stored blob behind the store's back, as disk rot or an attacker would."""
    location = store.location(digest)
    if location.startswith("s3://"):
        store._fs.pipe_file(location.removeprefix("s3://"), data)  # type: ignore[attr-defined]
    else:
        Path(location).chmod(0o644)
        Path(location).write_bytes(data)


def test_put_returns_the_sha256_and_get_returns_the_same_bytes(store: ArtifactStore) -> None:
    data = os.urandom(100_000)
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.exists(digest)
    assert store.get(digest, label="m:1") == data


def test_put_is_idempotent(store: ArtifactStore) -> None:
    data = b"same bytes"
    assert store.put(data) == store.put(data)
    assert store.get(hashlib.sha256(data).hexdigest(), label="m:1") == data


def test_tampered_blob_is_refused_naming_the_owner_and_both_hashes(store: ArtifactStore) -> None:
    data = b"original model bytes" * 100
    digest = store.put(data)
    forged = b"forged model bytes!!" * 100
    _tamper(store, digest, forged)
    with pytest.raises(ArtifactIntegrityError) as caught:
        store.get(digest, label="fraud:3")
    message = str(caught.value)
    assert "fraud:3" in message and digest in message and hashlib.sha256(forged).hexdigest() in message


def test_missing_blob_is_a_not_found_error(store: ArtifactStore) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(digest)
    with pytest.raises(ArtifactNotFoundError, match="fraud:3"):
        store.get(digest, label="fraud:3")


def test_malformed_digest_is_refused(store: ArtifactStore) -> None:
    with pytest.raises(InvalidArgumentError, match="not a sha256"):
        store.get("../../etc/passwd", label="x:1")


def test_local_writes_leave_no_temporary_files_and_blobs_are_read_only(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "a"))
    digest = store.put(b"x" * 1000)
    files = [p for p in (tmp_path / "a").rglob("*") if p.is_file()]
    assert [p.name for p in files] == [digest]
    assert not os.access(files[0], os.W_OK) or os.geteuid() == 0
    assert files[0].stat().st_mode & 0o222 == 0


def test_unsupported_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="scheme 'gs'"):
        open_artifact_store("gs://bucket/x")
