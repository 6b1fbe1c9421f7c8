"""Cold start of ``shipyard serve``: process start to ``/readyz`` 200, against ``import sklearn, fastapi``.

Two stores, built in temporary ``SHIPYARD_HOME`` folders: the demo's (``shipyard demo --no-serve``: one
endpoint, a logistic regression on iris) and ten endpoints, each on a different model (logistic
regressions, forests, gradient boosting and pipelines, so that each artifact is loaded on its own). Each
round starts ``shipyard serve`` as a user would (the console script, a fresh process), polls ``/readyz``
every 20 ms until it answers 200, stops the server, and times ``python -c "import sklearn, fastapi"`` in
the same round, so load on a shared machine hits both alike. Medians of the rounds are reported.

The issue's target, on a quiet machine: time-to-ready within 2 s of that import.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cli import SRC, shipyard_command, wall_seconds
from serving.procs import free_port
from serving.servers import home_env

ROUNDS = 7
TARGET_OVER_IMPORT_S = 2.0
ENDPOINTS = 10


def build_demo(home: Path, cwd: Path) -> None:
    wall_seconds([*shipyard_command(), "demo", "--no-serve"], env=home_env(home), cwd=cwd)


def build_ten(home: Path) -> None:
    """Ten endpoints on ten different models, so no two share an artifact."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from shipyard.config import Settings
    from shipyard.workspace import Workspace

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    makers = [
        lambda i: make_pipeline(StandardScaler(), LogisticRegression(C=0.1 * (i + 1), max_iter=2000)),
        lambda i: RandomForestClassifier(n_estimators=50, max_depth=6, random_state=i),
        lambda i: GradientBoostingClassifier(n_estimators=30, random_state=i),
    ]
    workspace = Workspace(Settings(home=home))
    try:
        for i in range(ENDPOINTS):
            model = makers[i % len(makers)](i).fit(x, y)
            name = f"model-{i}"
            workspace.registry.register(model, name=name, sample_input=x.head(20), training_data=x, training_target=y)
            workspace.endpoints.create(f"endpoint-{i}", model=f"{name}:1")
    finally:
        workspace.close()


def time_to_ready(env: Mapping[str, str], cwd: Path, *, timeout_s: float = 180.0) -> float:
    """Seconds from starting ``shipyard serve`` to its first ``/readyz`` 200; the server is stopped after."""
    port = free_port()
    start = time.perf_counter()
    process = subprocess.Popen(
        [*shipyard_command(), "serve", "--port", str(port)],
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"shipyard serve exited with {process.returncode}: {process.stderr.read()[-500:]!r}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - start
            except (OSError, urllib.error.URLError):
                pass
            if time.perf_counter() - start > timeout_s:
                raise RuntimeError(f"not ready after {timeout_s:.0f} s")
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def run(*, quick: bool = False) -> dict[str, Any]:
    rounds = 3 if quick else ROUNDS
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(SRC)], check=False, capture_output=True)
    subprocess.run(  # the server runs with -OO, whose bytecode `make compile` writes at install
        [sys.executable, "-OO", "-m", "compileall", "-q", "-j", "0", str(SRC)], check=False, capture_output=True
    )
    results: dict[str, Any] = {"rounds": rounds, "target_over_import_s": TARGET_OVER_IMPORT_S, "stores": {}}
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-coldstart-") as tmp:
        workdir = Path(tmp)
        stores = {"demo (1 endpoint)": workdir / "demo", f"{ENDPOINTS} endpoints": workdir / "ten"}
        build_demo(stores["demo (1 endpoint)"], workdir)
        build_ten(stores[f"{ENDPOINTS} endpoints"])
        imports = [sys.executable, "-c", "import sklearn, fastapi"]
        for label, home in stores.items():
            env = home_env(home)
            time_to_ready(env, workdir)  # untimed: the disk cache holds what every later round reads
            ready, floor = [], []
            for _ in range(rounds):
                ready.append(time_to_ready(env, workdir))
                floor.append(wall_seconds(imports, env=env, cwd=workdir))
            over = [r - f for r, f in zip(ready, floor, strict=True)]
            results["stores"][label] = {
                "ready_s": statistics.median(ready),
                "import_sklearn_fastapi_s": statistics.median(floor),
                "over_import_s": statistics.median(over),
                "ready_runs_s": [round(t, 3) for t in ready],
                "import_runs_s": [round(t, 3) for t in floor],
                "met": statistics.median(over) <= TARGET_OVER_IMPORT_S,
            }
    return results


def report(results: Mapping[str, Any]) -> str:
    lines = [
        f"## Cold start of `shipyard serve` (process start to `/readyz` 200; median of {results['rounds']} rounds)",
        "",
        '| store | time to ready (s) | `python -c "import sklearn, fastapi"` (s) | difference (s) |',
        "|---|---:|---:|---:|",
    ]
    for label, figures in results["stores"].items():
        lines.append(
            f"| {label} | {figures['ready_s']:.2f} | {figures['import_sklearn_fastapi_s']:.2f} | "
            f"+{figures['over_import_s']:.2f} |"
        )
    lines.append("")
    for label, figures in results["stores"].items():
        verdict = "met" if figures["met"] else "missed"
        lines.append(
            f"- target: {label} ready within {results['target_over_import_s']} s of the import: {verdict} "
            f"(+{figures['over_import_s']:.2f} s)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run(quick="--quick" in sys.argv)))
