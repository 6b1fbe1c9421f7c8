"""HTTPS on the real server: a CA and a server certificate for 127.0.0.1 made here, `shipyard serve --tls-*`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shipyard.client import Client
from shipyard.config import Settings
from shipyard.errors import ConfigError, ServerUnreachableError
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_support import free_port

ROW = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signer = issuer if issuer is not None else (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A private CA, and a server certificate it signed for 127.0.0.1 (an IP SAN); PEM files."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("Shipyard test CA", ca_key, None, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _certificate("127.0.0.1", server_key, (ca_cert.subject, ca_key), ca=False)
    files = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server-key.pem"}
    files["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


def _env(home: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    return {**keep, "SHIPYARD_HOME": str(home), **extra}


@pytest.fixture
def https_server(tmp_path: Path, pki: dict[str, Path]) -> Iterator[tuple[str, Path]]:
    """`shipyard serve --tls-cert --tls-key` in a subprocess over a SQLite store with the iris endpoint."""
    workspace = Workspace(Settings(home=tmp_path))
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.endpoints.create("iris", model="iris:1")
    workspace.close()
    port = free_port()
    command = [sys.executable, "-m", "shipyard.cli.main", "serve", "--port", str(port)]
    command += ["--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"])]
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(command, env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=log)
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{url}/readyz", verify=_context(pki["ca"]), timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the HTTPS server did not become ready"
            time.sleep(0.2)
        yield url, tmp_path
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _context(ca: Path) -> object:
    import ssl

    return ssl.create_default_context(cafile=str(ca))


def test_the_client_speaks_https_to_shipyard_serve_with_the_private_ca(
    https_server: tuple[str, Path], pki: dict[str, Path]
) -> None:
    url, _ = https_server
    with Client(url, ca_file=pki["ca"]) as client:
        assert client.predict("iris", [ROW]).predictions
    with Client(url) as client, pytest.raises(ServerUnreachableError) as refused:
        client.predict("iris", [ROW])
    message = str(refused.value)
    assert "certificate" in message and "not trusted" in message and "--ca-file" in message and "\n" not in message


def test_cli_predict_verifies_the_certificate(https_server: tuple[str, Path], pki: dict[str, Path]) -> None:
    url, home = https_server
    base = [sys.executable, "-m", "shipyard.cli.main", "predict", "iris", "--data", json.dumps(ROW), "--url", url]
    trusted = subprocess.run(
        [*base, "--ca-file", str(pki["ca"])], capture_output=True, text=True, env=_env(home), timeout=60
    )
    assert trusted.returncode == 0, trusted.stderr
    assert json.loads(trusted.stdout)["predictions"]
    by_setting = subprocess.run(
        base, capture_output=True, text=True, env=_env(home, SHIPYARD_CA_FILE=str(pki["ca"])), timeout=60
    )
    assert by_setting.returncode == 0, by_setting.stderr
    untrusted = subprocess.run(base, capture_output=True, text=True, env=_env(home), timeout=60)
    assert untrusted.returncode != 0
    lines = untrusted.stderr.strip().splitlines()
    assert len(lines) == 1 and "not trusted" in lines[0] and "--ca-file" in lines[0], untrusted.stderr


def test_plain_http_to_the_tls_port_fails_cleanly_and_the_server_stays_up(
    https_server: tuple[str, Path], pki: dict[str, Path]
) -> None:
    url, home = https_server
    plain = url.replace("https://", "http://")
    started = time.monotonic()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/healthz", timeout=10)
    assert time.monotonic() - started < 5  # refused at once, no hang
    with Client(plain) as client, pytest.raises(ServerUnreachableError, match="https://"):
        client.predict("iris", [ROW])
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        assert b"200 OK" not in sock.recv(4096)  # no plaintext answer, and the connection ends
    assert httpx.get(f"{url}/healthz", verify=_context(pki["ca"])).status_code == 200  # still serving HTTPS
    assert "Traceback" not in (home / "server.log").read_text()


def test_serve_refuses_half_or_unreadable_tls_settings_in_one_line(tmp_path: Path, pki: dict[str, Path]) -> None:
    port = str(free_port())
    base = [sys.executable, "-m", "shipyard.cli.main", "serve", "--port", port]
    cases = [
        (["--tls-cert", str(pki["cert"])], "tls_cert is set but tls_key is not"),
        (["--tls-cert", str(pki["cert"]), "--tls-key", str(tmp_path / "missing.pem")], "cannot read TLS file"),
        (["--tls-cert", str(pki["ca"]), "--tls-key", str(pki["key"])], "cannot be used"),
    ]
    for args, words in cases:
        result = subprocess.run([*base, *args], capture_output=True, text=True, env=_env(tmp_path), timeout=60)
        lines = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(lines) == 1 and words in lines[0], result.stderr
    with socket.socket() as sock:  # nothing was left bound
        sock.bind(("127.0.0.1", int(port)))


def test_an_unreadable_ca_file_is_one_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot use CA file"):
        Client("https://127.0.0.1:1", ca_file=tmp_path / "nope.pem")
