"""Serving speed: the same model served four ways in one run, loaded by wrk on 127.0.0.1.

A bare Starlette app calling the model (the practical limit), Shipyard, MLflow's ``mlflow models serve``
and BentoML (the peers live in their own venvs under ``benchmarks/.peer-venvs``). One-row and 32-row
requests at concurrency 1, 8 and 64, one worker each: requests/s, p50, p99, errors and peak RSS of each
server's process tree. Every server's answers are checked against the model's own before it is timed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serving.load import ensure_wrk, run_wrk
from serving.model import BenchModel, body, train
from serving.procs import RssSampler, ServerProcess, TreeRss, free_port
from serving.servers import PREPARE, Launch

SERVERS = ("starlette", "shipyard", "mlflow", "bentoml")
PEERS = ("mlflow", "bentoml")
ROWS = (1, 32)
CONCURRENCY = (1, 8, 64)
LABELS = {"starlette": "Starlette (bare)", "shipyard": "Shipyard", "mlflow": "MLflow", "bentoml": "BentoML"}
TARGETS = {"vs_starlette": 0.70, "vs_mlflow": 10.0, "p99_vs_mlflow": 10.0, "rss_per_worker_mb": 250.0}


class WrongAnswer(RuntimeError):
    """A server answered, but not what the model itself says: it is not benchmarked."""


def _post(url: str, data: bytes, *, timeout_s: float = 30.0) -> Any:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise WrongAnswer(f"HTTP {exc.code} from {url}: {exc.read()[:300]!r}") from exc


def _wait_ready(server: ServerProcess, url: str, *, timeout_s: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if not server.alive():
            raise RuntimeError(f"exited with code {server.proc.returncode} before ready:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"not ready at {url} after {timeout_s:.0f} s:\n{server.log_tail()}")


def _probabilities(payload: dict[str, Any], classes: list[Any]) -> np.ndarray | None:
    proba = payload.get("probabilities")
    if proba is None:
        return None
    if proba and isinstance(proba[0], dict):  # one {class: p} per row
        return np.array([[row[str(c)] if str(c) in row else row[c] for c in classes] for row in proba], dtype=float)
    matrix = np.asarray(proba, dtype=float)
    named = payload.get("classes")
    if isinstance(named, list) and len(named) == matrix.shape[-1]:  # columns in the server's class order
        order = [str(c) for c in named]
        if sorted(order) == sorted(str(c) for c in classes):
            matrix = matrix[:, [order.index(str(c)) for c in classes]]
    return matrix


def _verify(url: str, bench: BenchModel, key: str, rows: int) -> bool:
    """Check the server's predictions (and probabilities when it gives them) on ``rows`` rows."""
    payload = _post(url, body(bench, rows, key=key))
    expected, expected_proba = bench.expected(rows)
    if not isinstance(payload, dict) or "predictions" not in payload:
        raise WrongAnswer(f"no 'predictions' in the answer: {str(payload)[:300]}")
    got = np.asarray(payload["predictions"])
    if got.shape != expected.shape or not np.array_equal(got.astype(expected.dtype), expected):
        raise WrongAnswer(f"predictions on {rows} rows: got {got.tolist()[:8]}, the model says {expected.tolist()[:8]}")
    proba = _probabilities(payload, bench.model.classes_.tolist())
    if proba is not None and (proba.shape != expected_proba.shape or not np.allclose(proba, expected_proba, atol=1e-9)):
        raise WrongAnswer(f"probabilities on {rows} rows differ from predict_proba: {proba[:2].tolist()}")
    return proba is not None


@dataclass
class Running:
    """A started server that answered correctly, and its figures so far."""

    launch: Launch
    server: ServerProcess
    rss: TreeRss
    url: str
    startup_s: float
    probabilities: bool
    runs: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None

    def figures(self) -> dict[str, Any]:
        peak_mb = self.rss.peak_total_kb / 1024
        return {
            "status": "ok" if self.failure is None else "failed",
            **({"reason": self.failure} if self.failure else {}),
            "version": self.launch.version,
            "workers": self.launch.workers,
            "startup_s": self.startup_s,
            "probabilities": self.probabilities,
            "peak_rss_mb": peak_mb,
            "peak_process_rss_mb": self.rss.peak_process_kb / 1024,
            "rss_per_worker_mb": peak_mb / self.launch.workers,
            "processes": self.rss.max_processes,
            "notes": self.launch.notes,
            "log_tail": self.server.log_tail(8),
            "runs": self.runs,
        }


def start_server(launch: Launch, bench: BenchModel, sampler: RssSampler, logs: Path) -> Running:
    """Start ``launch`` on a free port, wait until ready and check its answers on 1 and 32 rows."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = ServerProcess(launch.command(port), env=launch.env, cwd=launch.cwd, log_path=logs / f"{launch.name}.log")
    rss = sampler.track(launch.name, server.pid)
    try:
        startup_s = _wait_ready(server, base + launch.ready_path, timeout_s=launch.startup_timeout_s)
        url = base + launch.predict_path
        has_proba = all([_verify(url, bench, launch.body_key, rows) for rows in ROWS])
    except BaseException:
        server.stop()
        sampler.forget(launch.name)
        raise
    return Running(launch, server, rss, url, startup_s, has_proba)


def run_cells(
    running: dict[str, Running], *, wrk: str, bodies: dict[tuple[str, int], Path], sampler: RssSampler,
    duration_s: float, warmup_s: float,
) -> None:  # fmt: skip
    """Every (rows, concurrency) cell on every server, the servers' order rotated from cell to cell.

    All servers stay up and take turns, so that noise from anything else on the machine falls on all
    of them alike rather than on whichever ran during it.
    """
    turn = 0
    for rows in ROWS:
        for r in running.values():
            run_wrk(wrk, r.url, bodies[(r.launch.body_key, rows)], connections=8, duration_s=warmup_s)
        for concurrency in CONCURRENCY:
            names = list(running)
            turn += 1
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                r = running[name]
                if r.failure:
                    continue
                sampler.open_window(name)
                try:
                    cell = run_wrk(
                        wrk, r.url, bodies[(r.launch.body_key, rows)], connections=concurrency, duration_s=duration_s
                    )
                except RuntimeError as exc:
                    r.failure = str(exc)
                    continue
                r.runs.append({"rows": rows, **cell, "peak_rss_mb": sampler.close_window(name)})
                if not r.server.alive():
                    r.failure = f"exited during the runs (code {r.server.proc.returncode}):\n{r.server.log_tail()}"
                time.sleep(0.5)  # let the server's background work (log flushes) finish on its own time


def run(quick: bool = False, *, peers: bool = True, servers: tuple[str, ...] = SERVERS) -> dict[str, Any]:
    """Every server, every cell; a server that cannot be set up or answers wrongly is reported, not timed."""
    duration_s, warmup_s = (3.0, 1.0) if quick else (10.0, 2.0)
    wrk = ensure_wrk()
    results: dict[str, Any] = {
        "config": {
            "model": "LogisticRegression, scikit-learn breast-cancer data (30 features)",
            "duration_s": duration_s,
            "warmup_s": warmup_s,
            "wrk_threads": 1,
            "rows": list(ROWS),
            "concurrency": list(CONCURRENCY),
            "quick": quick,
            "cpus": os.cpu_count(),
            "load_average_before": os.getloadavg()[0],
        },
        "servers": {},
    }
    out = results["servers"]
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-serving-") as tmp, RssSampler() as sampler:
        workdir = Path(tmp)
        logs = workdir / "logs"
        logs.mkdir()
        bench = train(workdir)
        bodies = {}
        for key in ("instances", "dataframe_records"):
            for rows in ROWS:
                bodies[(key, rows)] = workdir / f"{key}-{rows}.json"
                bodies[(key, rows)].write_bytes(body(bench, rows, key=key))
        running: dict[str, Running] = {}
        try:
            for name in SERVERS:
                if name not in servers or (name in PEERS and not peers):
                    why = "SHIPYARD_BENCH_PEERS=0" if name in PEERS and not peers else "not selected"
                    out[name] = {"status": "skipped", "reason": why}
                    continue
                print(f"serving benchmark: setting up {name} ...", file=sys.stderr, flush=True)
                try:
                    running[name] = start_server(PREPARE[name](bench, workdir), bench, sampler, logs)
                except WrongAnswer as exc:
                    out[name] = {"status": "wrong answers", "reason": str(exc)}
                except Exception as exc:
                    out[name] = {"status": "failed", "reason": "".join(traceback.format_exception_only(exc)).strip()}
            print(f"serving benchmark: loading {', '.join(running)} ...", file=sys.stderr, flush=True)
            run_cells(running, wrk=wrk, bodies=bodies, sampler=sampler, duration_s=duration_s, warmup_s=warmup_s)
            for r in running.values():
                if r.failure is None:
                    try:
                        _verify(r.url, bench, r.launch.body_key, 1)
                    except (WrongAnswer, OSError) as exc:
                        r.failure = f"after the runs: {exc}"
        finally:
            for r in running.values():
                r.server.stop()
        for name in SERVERS:
            if name in running:
                out[name] = running[name].figures()
    results["config"]["load_average_after"] = os.getloadavg()[0]
    results["servers"] = {name: out[name] for name in SERVERS if name in out}
    results["ratios"] = ratios(results["servers"])
    return results


def _cell(server: dict[str, Any] | None, rows: int, concurrency: int) -> dict[str, Any] | None:
    if not server or server.get("status") != "ok":
        return None
    return next((r for r in server["runs"] if r["rows"] == rows and r["concurrency"] == concurrency), None)


def _best_rps(server: dict[str, Any] | None, rows: int) -> float | None:
    cells = [_cell(server, rows, c) for c in CONCURRENCY]
    values = [c["rps"] for c in cells if c]
    return max(values) if values else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def ratios(servers: dict[str, Any]) -> dict[str, Any]:
    """The figures the issue's targets are about, each None where a side did not run."""
    ship, star, mlf, bento = (servers.get(n) for n in ("shipyard", "starlette", "mlflow", "bentoml"))
    out: dict[str, Any] = {}
    for peer, other in (("starlette", star), ("mlflow", mlf), ("bentoml", bento)):
        for rows in ROWS:
            out[f"rps_vs_{peer}_{rows}row_best"] = _ratio(_best_rps(ship, rows), _best_rps(other, rows))
            for c in CONCURRENCY:
                a, b = _cell(ship, rows, c), _cell(other, rows, c)
                out[f"rps_vs_{peer}_{rows}row_c{c}"] = _ratio(a and a["rps"], b and b["rps"])
        for rows in ROWS:
            a, b = _cell(ship, rows, 64), _cell(other, rows, 64)
            out[f"p99_{peer}_over_shipyard_{rows}row_c64"] = _ratio(b and b["p99_ms"], a and a["p99_ms"])
    out["shipyard_rss_per_worker_mb"] = ship["rss_per_worker_mb"] if ship and ship.get("status") == "ok" else None
    return out


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _met(value: float | None, target: float, *, at_most: bool = False) -> str:
    if value is None:
        return "not measured"
    return "yes" if (value <= target if at_most else value >= target) else "**no**"


def report(results: dict[str, Any]) -> str:
    cfg, servers, r = results["config"], results["servers"], results["ratios"]
    lines = [
        "## Serving",
        "",
        f"{cfg['model']}; one worker per server; wrk -t {cfg['wrk_threads']} on 127.0.0.1, "
        f"{cfg['duration_s']:g} s per cell after a {cfg['warmup_s']:g} s warm-up. req/s counts 2xx answers; "
        "errors are non-2xx answers plus socket errors; peak RSS is the server's whole process tree. "
        "The servers run side by side and take turns, cell by cell.",
    ]
    for rows in ROWS:
        lines += [
            "",
            f"### {rows}-row requests",
            "",
            "| server | concurrency | req/s | p50 ms | p99 ms | errors | peak RSS MB |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name in SERVERS:
            for c in CONCURRENCY:
                cell = _cell(servers.get(name), rows, c)
                if cell:
                    lines.append(
                        f"| {LABELS[name]} | {c} | {cell['rps']:.0f} | {cell['p50_ms']:.2f} | {cell['p99_ms']:.2f} "
                        f"| {cell['errors']} | {cell['peak_rss_mb']:.0f} |"
                    )
    lines += [
        "",
        "### Servers",
        "",
        "| server | version | status | start-up s | peak RSS MB | largest process MB | processes | per worker MB |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for name in SERVERS:
        s = servers.get(name, {"status": "skipped"})
        if s.get("status") == "ok":
            lines.append(
                f"| {LABELS[name]} | {s['version']} | ok | {s['startup_s']:.1f} | {s['peak_rss_mb']:.0f} "
                f"| {s['peak_process_rss_mb']:.0f} | {s['processes']} | {s['rss_per_worker_mb']:.0f} |"
            )
            notes += [f"- {LABELS[name]}: {n}" for n in s.get("notes", [])]
        else:
            lines.append(f"| {LABELS[name]} | | {s['status']} | | | | | |")
            reason = " ".join(str(s.get("reason", "")).split())
            notes.append(f"- {LABELS[name]} {s['status']}: {reason[:600]}")
    lines += ["", "### Ratios (the result)", "", "| measure | value | target | met |", "|---|---:|---:|---|"]

    def line(measure: str, key: str, spec: str, suffix: str = "", target: str = "", met: str = "") -> None:
        lines.append(f"| {measure} | {_fmt(r[key], spec, suffix)} | {target} | {met} |")

    t = TARGETS
    key = "rps_vs_starlette_1row_best"
    line("Shipyard / Starlette req/s, 1 row, best over concurrency", key, ".2f", "",
         f"≥ {t['vs_starlette']:.2f}", _met(r[key], t["vs_starlette"]))  # fmt: skip
    for c in CONCURRENCY:
        line(f"Shipyard / Starlette req/s, 1 row, c={c}", f"rps_vs_starlette_1row_c{c}", ".2f")
    key = "rps_vs_mlflow_1row_best"
    line("Shipyard / MLflow req/s, 1 row, best over concurrency", key, ".1f", "x",
         f"≥ {t['vs_mlflow']:g}x", _met(r[key], t["vs_mlflow"]))  # fmt: skip
    for c in CONCURRENCY:
        line(f"Shipyard / MLflow req/s, 1 row, c={c}", f"rps_vs_mlflow_1row_c{c}", ".1f", "x")
    key = "p99_mlflow_over_shipyard_1row_c64"
    line("MLflow p99 / Shipyard p99, 1 row, c=64", key, ".1f", "x",
         f"≥ {t['p99_vs_mlflow']:g}x", _met(r[key], t["p99_vs_mlflow"]))  # fmt: skip
    key = "shipyard_rss_per_worker_mb"
    line("Shipyard peak RSS per worker, one model", key, ".0f", " MB",
         f"≤ {t['rss_per_worker_mb']:g} MB", _met(r[key], t["rss_per_worker_mb"], at_most=True))  # fmt: skip
    line("MLflow p99 / Shipyard p99, 32 rows, c=64", "p99_mlflow_over_shipyard_32row_c64", ".1f", "x")
    line("Shipyard / Starlette req/s, 32 rows, best over concurrency", "rps_vs_starlette_32row_best", ".2f")
    line("Shipyard / MLflow req/s, 32 rows, best over concurrency", "rps_vs_mlflow_32row_best", ".1f", "x")
    line("Shipyard / BentoML req/s, 1 row, best over concurrency", "rps_vs_bentoml_1row_best", ".1f", "x")
    line("Shipyard / BentoML req/s, 32 rows, best over concurrency", "rps_vs_bentoml_32row_best", ".1f", "x")
    line("BentoML p99 / Shipyard p99, 1 row, c=64", "p99_bentoml_over_shipyard_1row_c64", ".1f", "x")
    load = (cfg.get("load_average_before"), cfg.get("load_average_after"))
    if None not in load and max(load) > 0.5 * (cfg.get("cpus") or 1):
        notes.append(
            f"- The machine was busy with other work (1-min load average {load[0]:.1f} before, {load[1]:.1f} after, "
            f"{cfg.get('cpus')} CPUs): absolute figures are noisy; the servers took turns cell by cell so the "
            "ratios less so."
        )
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


if __name__ == "__main__":
    import json

    figures = run(os.environ.get("SHIPYARD_BENCH_QUICK") == "1", peers=os.environ.get("SHIPYARD_BENCH_PEERS") != "0")
    print(report(figures))
    print(json.dumps(figures, indent=2), file=sys.stderr)
