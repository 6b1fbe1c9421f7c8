"""CLI start-up: ``shipyard --help``, ``shipyard models list`` and ``shipyard endpoints list`` against bare Python.

A store with 50 versions (10 models of 5 versions, aliases, 5 endpoints) is built in a temporary
``SHIPYARD_HOME``; then each command runs as users run it (the ``shipyard`` console script, a fresh
process each time) ``ROUNDS`` times, interleaved round by round with ``python -c pass`` so that load on a
shared machine hits every side alike, and the median wall time of each is kept. One more run of each
under ``python -X importtime`` records which heavy libraries it imported.

The issue's targets, on a quiet machine: ``--help`` within 0.3 s of bare Python and importing none of
pandas, scikit-learn, SciPy or SQLAlchemy; the list commands within 1.0 s of bare Python.

Also timed in the same run, for the serving benchmark's cold start to compare against:
``python -c "import sklearn, fastapi"`` (see ``python_import_seconds``).

Shipyard's own modules are byte-compiled first (``compileall``), as pip does when it installs a package:
this machine sets PYTHONDONTWRITEBYTECODE, so an editable install would otherwise recompile them on every
start, which no installed copy does.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serving.servers import home_env

ROUNDS = 11
VERSIONS = 50
MODELS = 10
ENDPOINTS = 5
TARGETS_S = {"--help": 0.3, "models list": 1.0, "endpoints list": 1.0}  # allowed seconds over bare Python
HEAVY = ("pandas", "sklearn", "scipy", "sqlalchemy", "numpy", "pyarrow", "fastapi")
SRC = Path(__file__).resolve().parent.parent / "src"


def shipyard_command() -> list[str]:
    """The console script beside this Python, as a user runs it; the module if it is not installed."""
    script = Path(sys.executable).with_name("shipyard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "shipyard.cli.main"]


def wall_seconds(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> float:
    """One run of a command, start to exit, in seconds; a failure is an error, not a figure."""
    start = time.perf_counter()
    done = subprocess.run(list(argv), env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return seconds


def interleaved_medians(
    commands: Mapping[str, Sequence[str]], *, env: Mapping[str, str], cwd: Path, rounds: int
) -> dict[str, list[float]]:
    """Every command once per round, in the same order, after one untimed warm-up round (disk cache)."""
    for argv in commands.values():
        wall_seconds(argv, env=env, cwd=cwd)
    runs: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(rounds):
        for label, argv in commands.items():
            runs[label].append(wall_seconds(argv, env=env, cwd=cwd))
    return runs


def python_import_seconds(
    modules: Sequence[str] = ("sklearn", "fastapi"), *, rounds: int = ROUNDS, env: Mapping[str, str] | None = None
) -> dict[str, float]:
    """Median seconds of ``python -c "import <modules>"`` and of ``python -c pass``, interleaved.

    The floor for any command that needs those libraries, e.g. `shipyard serve` before it can listen.
    """
    commands = {
        "import": [sys.executable, "-c", f"import {', '.join(modules)}"],
        "pass": [sys.executable, "-c", "pass"],
    }
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-import-") as tmp:
        runs = interleaved_medians(commands, env=env or home_env(Path(tmp)), cwd=Path(tmp), rounds=rounds)
    return {"import_s": statistics.median(runs["import"]), "python_s": statistics.median(runs["pass"])}


def heavy_imports(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> list[str]:
    """Which of HEAVY a run of the command imported, read from ``python -X importtime``."""
    command = [sys.executable, "-X", "importtime", *argv[1:]] if argv[0] == sys.executable else None
    if command is None:  # the console script: run the same entry point under -X importtime
        command = [sys.executable, "-X", "importtime", "-m", "shipyard.cli.main", *argv[1:]]
    done = subprocess.run(command, env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=120)
    names = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return [name for name in HEAVY if name in names]


def build_store(home: Path) -> None:
    """MODELS models of VERSIONS / MODELS versions each, two aliases per model, ENDPOINTS endpoints."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from shipyard.config import Settings
    from shipyard.workspace import Workspace

    x, y = load_iris(return_X_y=True, as_frame=True)
    workspace = Workspace(Settings(home=home))
    try:
        for m in range(MODELS):
            name = f"model-{m:02d}"
            for v in range(VERSIONS // MODELS):
                model = LogisticRegression(C=0.5 + v, max_iter=300).fit(x, y)
                workspace.registry.register(model, name=name, sample_input=x.head(20), metrics={"accuracy": 0.9})
            workspace.registry.set_alias(f"{name}:{VERSIONS // MODELS}", "champion")
            workspace.registry.set_alias(f"{name}:{VERSIONS // MODELS - 1}", "challenger")
        for e in range(ENDPOINTS):
            workspace.endpoints.create(f"endpoint-{e}", model=f"model-{e:02d}@champion")
    finally:
        workspace.close()


def run(*, quick: bool = False) -> dict[str, Any]:
    rounds = 3 if quick else ROUNDS
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(SRC)], check=False, capture_output=True)
    shipyard = shipyard_command()
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-cli-") as tmp:
        workdir = Path(tmp)
        home = workdir / "home"
        started = time.perf_counter()
        build_store(home)
        build_s = time.perf_counter() - started
        env = home_env(home, COLUMNS="120")
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "--help": [*shipyard, "--help"],
            "models list": [*shipyard, "models", "list"],
            "endpoints list": [*shipyard, "endpoints", "list"],
            "import sklearn, fastapi": [sys.executable, "-c", "import sklearn, fastapi"],
        }
        runs = interleaved_medians(commands, env=env, cwd=workdir, rounds=rounds)
        imports = {label: heavy_imports(argv, env=env, cwd=workdir) for label, argv in commands.items()}
    python_s = statistics.median(runs["python -c pass"])
    figures = {
        label: {
            "median_s": statistics.median(times),
            "over_python_s": statistics.median(times) - python_s,
            "runs_s": [round(t, 4) for t in times],
            "heavy_imports": imports[label],
        }
        for label, times in runs.items()
    }
    met = {label: figures[label]["over_python_s"] <= limit for label, limit in TARGETS_S.items()}
    met["--help imports"] = not {"pandas", "sklearn", "scipy", "sqlalchemy"} & set(imports["--help"])
    return {
        "versions": VERSIONS,
        "endpoints": ENDPOINTS,
        "rounds": rounds,
        "store_build_s": round(build_s, 2),
        "commands": figures,
        "targets_over_python_s": TARGETS_S,
        "met": met,
    }


def report(results: Mapping[str, Any]) -> str:
    lines = [
        f"## CLI start-up ({results['versions']} versions, {results['endpoints']} endpoints; "
        f"median of {results['rounds']} interleaved runs)",
        "",
        "| command | seconds | over `python -c pass` | heavy imports |",
        "|---|---:|---:|---|",
    ]
    for label, figures in results["commands"].items():
        over = "" if label == "python -c pass" else f"+{figures['over_python_s']:.3f}"
        lines.append(
            f"| `{label}` | {figures['median_s']:.3f} | {over} | {', '.join(figures['heavy_imports']) or 'none'} |"
        )
    lines.append("")
    for label, limit in results["targets_over_python_s"].items():
        over = results["commands"][label]["over_python_s"]
        verdict = "met" if results["met"][label] else "missed"
        lines.append(f"- target `shipyard {label}` within {limit} s of bare Python: {verdict} (+{over:.3f} s)")
    verdict = "met" if results["met"]["--help imports"] else "missed"
    lines.append(f"- target `shipyard --help` imports none of pandas, scikit-learn, SciPy, SQLAlchemy: {verdict}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run(quick="--quick" in sys.argv)))
