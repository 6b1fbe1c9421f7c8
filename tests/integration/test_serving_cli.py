"""Serving from the command line: endpoints, predict, ``serve --workers 2`` and the demo's printed curl."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest
import skops.io

from tests.integration.test_cli import assert_one_line_error, run
from tests.models import iris
from tests.serving_support import free_port, wait_ready

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]
ROW = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return cli_store(tmp_path)


def cli_store(tmp_path: Path) -> Path:
    """A store with model iris:1 and iris:2 registered from files, as a user would."""
    home = tmp_path / "home"
    x, _, model = iris()
    (tmp_path / "iris.skops").write_bytes(skops.io.dumps(model))
    pd.DataFrame(x[:20], columns=["f0", "f1", "f2", "f3"]).to_csv(tmp_path / "sample.csv", index=False)
    for _ in range(2):
        run(
            [
                "models",
                "register",
                str(tmp_path / "iris.skops"),
                "--name",
                "iris",
                "--sample",
                str(tmp_path / "sample.csv"),
            ],
            home,
        )
    return home


@contextmanager
def server_process(args: list[str], home: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """A real ``shipyard`` process in its own process group, killed by PID when the block ends."""
    full_env = {**os.environ, "SHIPYARD_HOME": str(home), "SHIPYARD_POLL_INTERVAL_S": "0.3", **(env or {})}
    # Popen's own block closes the output pipes once the process has been stopped below.
    with subprocess.Popen(
        [*SHIPYARD, *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):  # it may have ended by itself
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def test_endpoint_commands(home: Path) -> None:
    missing_alias = run(["endpoints", "create", "iris", "--model", "iris@live"], home, ok=False)
    assert_one_line_error(missing_alias, "no alias 'live'")
    run(["models", "alias", "iris:1", "live"], home)
    out = run(["endpoints", "create", "iris", "--model", "iris@live"], home).stdout
    assert "endpoint iris -> iris@live (now iris:1)" in out
    latest = run(["endpoints", "create", "pinned", "--model", "iris"], home).stdout
    assert "pinned -> iris:2" in latest  # a bare name is pinned to today's latest
    listing = json.loads(run(["endpoints", "list", "--json"], home).stdout)
    assert [(e["name"], e["model"], e["version"]) for e in listing] == [
        ("iris", "iris@live", "iris:1"),
        ("pinned", "iris:2", "iris:2"),
    ]
    run(["models", "alias", "iris:2", "live"], home)
    assert json.loads(run(["endpoints", "show", "iris", "--json"], home).stdout)["version"] == "iris:2"
    assert "pinned -> iris:1" in run(["endpoints", "set", "pinned", "--model", "iris:1"], home).stdout
    assert_one_line_error(run(["endpoints", "create", "iris", "--model", "iris:1"], home, ok=False), "already exists")
    assert_one_line_error(run(["endpoints", "create", "x", "--model", "nope:1"], home, ok=False), "no model named")
    assert_one_line_error(run(["endpoints", "show", "ghost"], home, ok=False), "no endpoint named 'ghost'")
    run(["endpoints", "delete", "pinned"], home)
    assert_one_line_error(run(["endpoints", "delete", "pinned"], home, ok=False), "no endpoint named")


def test_predict_in_process_and_over_http(home: Path, tmp_path: Path) -> None:
    run(["endpoints", "create", "iris", "--model", "iris:1"], home)
    x, _, model = iris()
    local = json.loads(run(["predict", "iris", "--data", json.dumps(ROW)], home).stdout)
    assert local["predictions"] == model.predict(x[:1]).tolist() and local["version"] == 1
    (tmp_path / "rows.json").write_text(json.dumps({"instances": [ROW, ROW]}))
    assert (
        len(json.loads(run(["predict", "iris", "--data", str(tmp_path / "rows.json")], home).stdout)["predictions"])
        == 2
    )
    assert_one_line_error(run(["predict", "iris", "--data", '{"f0": "x"}'], home, ok=False), "feature")
    assert_one_line_error(run(["predict", "iris", "--data", "{oops"], home, ok=False), "not valid JSON")
    port = free_port()
    with server_process(["serve", "--port", str(port)], home):
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        remote = json.loads(run(["predict", "iris", "--data", json.dumps(ROW), "--url", url], home).stdout)
        assert remote["predictions"] == local["predictions"] and len(remote["request_id"]) == 32
        failed = run(["predict", "iris", "--data", json.dumps({"f1": 1}), "--url", url], home, ok=False)
        assert_one_line_error(failed, "feature 'f0' is missing", "HTTP 422")
    unreachable = run(["predict", "iris", "--data", json.dumps(ROW), "--url", url], home, ok=False)
    assert_one_line_error(unreachable, "cannot reach the Shipyard server")


def test_serve_with_two_workers_counts_every_request_in_metrics(home: Path) -> None:
    run(["endpoints", "create", "iris", "--model", "iris:1"], home)
    port = free_port()
    with server_process(["serve", "--port", str(port), "--workers", "2"], home):
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        time.sleep(1.5)  # both workers warm: readiness answered by one of them
        with httpx.Client(base_url=url, timeout=10) as client:
            statuses = []
            for _ in range(60):
                # A fresh connection each time, so both workers take requests.
                statuses.append(httpx.post(f"{url}/v1/endpoints/iris/predict", json={"instances": [ROW]}).status_code)
            assert statuses == [200] * 60
            text = client.get("/metrics").text
    line = next(
        line for line in text.splitlines() if line.startswith("shipyard_requests_total{") and 'status="200"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) == 60.0


def test_serve_refuses_a_port_in_use(home: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        assert_one_line_error(run(["serve", "--port", str(port)], home, ok=False), f"cannot listen on 127.0.0.1:{port}")


def test_serve_reports_a_bad_setting_in_one_line(home: Path) -> None:
    """The server process checks the settings (the command line hands over at once) and says what is wrong."""
    with server_process(["serve", "--port", str(free_port())], home, {"SHIPYARD_MAX_REQUEST_ROWS": "0"}) as process:
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert stderr.strip().splitlines() == [
        "error: invalid Shipyard settings: max_request_rows: Input should be greater than or equal to 1"
    ]


def test_demo_serves_and_its_printed_curl_works_as_printed(tmp_path: Path) -> None:
    port = free_port()
    with server_process(["demo", "--port", str(port)], tmp_path / "home") as process:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        curl = None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if line.startswith("curl "):
                curl = line.strip()
                break
        assert curl is not None, "the demo printed no curl command"
        result = subprocess.run(curl, shell=True, capture_output=True, text=True, timeout=30, check=True)
        answer = json.loads(result.stdout)
        assert answer["endpoint"] == "demo" and answer["predictions"][0] in ("setosa", "versicolor", "virginica")
        assert len(answer["probabilities"][0]) == 3
