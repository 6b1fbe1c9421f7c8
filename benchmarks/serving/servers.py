"""The four servers: how each gets the model in its own format, and how it is started and called.

Each ``prepare_*`` does the one-off set-up (saving the model, installing a peer) and returns a ``Launch``
that the harness starts on a free port of 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.model import BenchModel
from serving.peers import ensure_peer_venv

HERE = Path(__file__).resolve().parent
PROJECT_BIN = Path(sys.executable).parent
# Peers phone home by default; nothing should leave 127.0.0.1 during a benchmark.
QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "BENTOML_DO_NOT_TRACK": "True",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PYTHONUNBUFFERED": "1",
}


@dataclass(frozen=True)
class Launch:
    """How to start one server and talk to it; ``command`` is a function of the port."""

    name: str
    version: str
    command: Callable[[int], list[str]]
    env: dict[str, str]
    cwd: Path
    predict_path: str
    ready_path: str
    body_key: str
    workers: int = 1
    startup_timeout_s: float = 120.0
    notes: list[str] = field(default_factory=list)


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, **QUIET_ENV, **extra}


def _run(command: list[str], *, env: dict[str, str], cwd: Path, what: str, timeout_s: float = 600) -> str:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")
    return done.stdout.strip()


def prepare_starlette(bench: BenchModel, workdir: Path) -> Launch:
    import starlette
    import uvicorn

    def command(port: int) -> list[str]:
        return [sys.executable, str(HERE / "starlette_app.py"), "--model", str(bench.path), "--port", str(port)]

    return Launch(
        name="starlette",
        version=f"starlette {starlette.__version__}, uvicorn {uvicorn.__version__}",
        command=command,
        env=_env(),
        cwd=workdir,
        predict_path="/predict",
        ready_path="/readyz",
        body_key="instances",
        startup_timeout_s=60,
    )


def prepare_shipyard(bench: BenchModel, workdir: Path, *, workers: int = 1) -> Launch:
    import shipyard

    shipyard_cli = str(PROJECT_BIN / "shipyard")
    home = workdir / "shipyard-home"
    env = _env(SHIPYARD_HOME=str(home))
    for key in ("DATABASE_URL", "ARTIFACT_URI", "URL", "API_KEY", "CONFIG"):
        env.pop(f"SHIPYARD_{key}", None)  # a fresh local home, whatever the caller's shell points at
    probe = subprocess.run([shipyard_cli, "serve", "--help"], env=env, capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        raise RuntimeError(f"`shipyard serve` is not available: {(probe.stderr or probe.stdout).strip()[-300:]}")
    ref = _run(
        [sys.executable, str(HERE / "shipyard_register.py"), str(bench.path)],
        env=env,
        cwd=workdir,
        what="shipyard.register",
    ).splitlines()[-1]
    _run([shipyard_cli, "endpoints", "create", "bench", "--model", ref], env=env, cwd=workdir, what="endpoints create")

    def command(port: int) -> list[str]:
        return [shipyard_cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]

    return Launch(
        name="shipyard",
        version=f"shipyard {shipyard.__version__}",
        command=command,
        env=env,
        cwd=workdir,
        predict_path="/v1/endpoints/bench/predict",
        ready_path="/readyz",
        body_key="instances",
        workers=workers,
    )


def prepare_mlflow(bench: BenchModel, workdir: Path) -> Launch:
    python, version = ensure_peer_venv("mlflow")
    bin_dir = python.parent
    env = _env(
        PATH=f"{bin_dir}:{os.environ.get('PATH', '')}",
        VIRTUAL_ENV=str(bin_dir.parent),
        MLFLOW_TRACKING_URI=(workdir / "mlruns").as_uri(),
    )
    env.pop("PYTHONPATH", None)
    sample = workdir / "mlflow-sample.json"
    sample.write_text(bench.frame.iloc[:50].to_json(orient="records"))
    model_dir = workdir / "mlflow-model"
    _run(
        [str(python), str(HERE / "mlflow_save.py"), str(bench.path), str(sample), str(model_dir)],
        env=env,
        cwd=workdir,
        what="mlflow.sklearn.save_model",
    )

    def command(port: int) -> list[str]:
        return [
            str(bin_dir / "mlflow"), "models", "serve", "-m", str(model_dir), "--env-manager", "local",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ]  # fmt: skip

    return Launch(
        name="mlflow",
        version=f"mlflow {version}",
        command=command,
        env=env,
        cwd=workdir,
        predict_path="/invocations",
        ready_path="/ping",
        body_key="dataframe_records",
        startup_timeout_s=180,
        notes=["MLflow's sklearn pyfunc answers predict only (no probabilities): less work per request"],
    )


def prepare_bentoml(bench: BenchModel, workdir: Path) -> Launch:
    python, version = ensure_peer_venv("bentoml")
    bin_dir = python.parent
    env = _env(
        PATH=f"{bin_dir}:{os.environ.get('PATH', '')}",
        VIRTUAL_ENV=str(bin_dir.parent),
        BENTOML_HOME=str(workdir / "bentoml-home"),
    )
    env.pop("PYTHONPATH", None)
    service_dir = workdir / "bentoml-service"
    service_dir.mkdir()
    shutil.copy(HERE / "bentoml_service.py", service_dir / "bentoml_service.py")
    _run(
        [str(python), str(HERE / "bentoml_save.py"), str(bench.path), "breast_cancer"],
        env=env,
        cwd=workdir,
        what="bentoml.sklearn.save_model",
    )

    def command(port: int) -> list[str]:
        return [
            str(bin_dir / "bentoml"), "serve", "bentoml_service:svc", "--working-dir", str(service_dir),
            "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip

    return Launch(
        name="bentoml",
        version=f"bentoml {version}",
        command=command,
        env=env,
        cwd=service_dir,
        predict_path="/predict",
        ready_path="/readyz",
        body_key="instances",
        startup_timeout_s=180,
    )


PREPARE: dict[str, Callable[[BenchModel, Path], Launch]] = {
    "starlette": prepare_starlette,
    "shipyard": prepare_shipyard,
    "mlflow": prepare_mlflow,
    "bentoml": prepare_bentoml,
}


def home_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a Shipyard process on a fresh local home, whatever the caller's shell points at."""
    env = {**os.environ, **QUIET_ENV, "SHIPYARD_HOME": str(home)}
    for key in ("DATABASE_URL", "ARTIFACT_URI", "URL", "API_KEY", "CONFIG", "MONITORING", "LOG_SAMPLE_RATE"):
        env.pop(f"SHIPYARD_{key}", None)
    return {**env, **extra}


def json_script(script: str, *args: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run one of the store scripts beside this file with the project's Python; its last line is JSON."""
    done = subprocess.run(
        [sys.executable, str(HERE / script), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} {args[0]} failed: {(done.stderr or done.stdout).strip()[-800:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))
