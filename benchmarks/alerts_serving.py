"""Serving throughput with alert evaluation on and off: the rules' cost must not reach the predict path.

Two ``shipyard serve --workers 1`` processes on two stores (each holds its own controller lease), both with
the monitoring benchmark's endpoint ``bench``, 99 more on the same version, and 5-second windows. ``on``'s
store also declares 50 rules on each of the 100 endpoints, so its lease holder builds reports and steps
5,000 series each time a window completes, while wrk loads ``bench``. wrk loads the two in turns, round after round; the
figure is the median of the per-round req/s ratios. Issue target: on / off >= 0.97.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench_serving import _wait_ready
from serving.load import ensure_wrk, run_wrk
from serving.model import body, train
from serving.procs import ServerProcess, free_port
from serving.servers import PROJECT_BIN, home_env, json_script

TARGET_RATIO = 0.97
WINDOW_S = "5"
SERVERS = ("off", "on")


def _declare_rules(home: Path, endpoints: int, rules_per_endpoint: int) -> int:
    from shipyard.config import Settings
    from shipyard.workspace import Workspace

    workspace = Workspace(Settings(home=home, monitor_window_s=int(WINDOW_S)))
    try:
        paths = ("drift.share", "drift.drifted", "operational.p99_ms", "estimated.accuracy", "performance.accuracy")
        for e in range(endpoints):
            name = "bench" if e == 0 else f"e{e}"
            if e:
                workspace.endpoints.create(name, model="bench:1")
            for r in range(rules_per_endpoint):
                workspace.alerts.create(
                    {
                        "name": f"{name}-r{r}",
                        "endpoint": name,
                        "metric": paths[r % len(paths)],
                        "op": ">",
                        "threshold": 0.5 + r,
                        "for": 1 + r % 3,
                    }
                )
        return len(workspace.alerts.rules())
    finally:
        workspace.close()


def _evaluated(home: Path) -> dict[str, int]:
    """Proof the lease holder evaluated: series with a stored state, and windows each has seen (from history)."""
    import sqlalchemy as sa

    from shipyard.config import Settings
    from shipyard.store.tables import alert_states
    from shipyard.workspace import Workspace

    workspace = Workspace(Settings(home=home))
    try:
        with workspace.db.read() as conn:
            series = conn.execute(sa.select(sa.func.count()).select_from(alert_states)).scalar_one()
            windows = conn.execute(sa.select(sa.func.count(sa.distinct(alert_states.c.window_start)))).scalar_one()
        return {"series": int(series), "distinct_windows": int(windows)}
    finally:
        workspace.close()


def run(*, quick: bool = False, endpoints: int = 100, rules_per_endpoint: int = 50) -> dict[str, Any]:
    duration_s, rounds = (3.0, 2) if quick else (6.0, 5)
    results: dict[str, Any] = {"config": {"duration_s": duration_s, "rounds": rounds, "window_s": int(WINDOW_S)}}
    servers: dict[str, ServerProcess] = {}
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-alerts-serving-") as tmp:
        workdir = Path(tmp)
        bench = train(workdir)
        body_file = workdir / "instances-1.json"
        body_file.write_bytes(body(bench, 1, key="instances"))
        try:
            wrk = ensure_wrk()
            urls = {}
            for name in SERVERS:
                home = workdir / f"home-{name}"
                json_script("shipyard_monitoring.py", "setup", str(bench.path), env=home_env(home), cwd=workdir)
                # both serve the same 100 endpoints (the /metrics refresher reads each); only `on` has rules
                declared = _declare_rules(home, endpoints, rules_per_endpoint if name == "on" else 0)
                if name == "on":
                    results["rules"] = declared
                port = free_port()
                command = [str(PROJECT_BIN / "shipyard"), "serve", "--host", "127.0.0.1", "--port", str(port)]
                env = home_env(home, SHIPYARD_MONITOR_WINDOW_S=WINDOW_S)
                servers[name] = ServerProcess(command, env=env, cwd=workdir, log_path=workdir / f"serve-{name}.log")
                _wait_ready(servers[name], f"http://127.0.0.1:{port}/readyz", timeout_s=120)
                urls[name] = f"http://127.0.0.1:{port}/v1/endpoints/bench/predict"
                run_wrk(wrk, urls[name], body_file, connections=8, duration_s=2.0)
            runs = []
            for round_index in range(rounds):
                order = SERVERS if round_index % 2 == 0 else SERVERS[::-1]
                for name in order:
                    cell = run_wrk(wrk, urls[name], body_file, connections=8, duration_s=duration_s)
                    runs.append({"server": name, "round": round_index, **cell})
                    time.sleep(1.0)
            results["runs"] = runs
            by = {(r["server"], r["round"]): r["rps"] for r in runs}
            ratios = [by[("on", i)] / by[("off", i)] for i in range(rounds) if by.get(("off", i))]
            results["rps"] = {n: statistics.median(r["rps"] for r in runs if r["server"] == n) for n in SERVERS}
            results["ratio"] = statistics.median(ratios) if ratios else None
            results["ratio_per_round"] = ratios
            results["evaluation_errors"] = servers["on"].log_tail().count("alert evaluation failed")
            servers["on"].stop()
            results["evaluated"] = _evaluated(workdir / "home-on")
            results["status"] = "ok"
        except Exception as exc:
            results["status"] = "failed"
            results["reason"] = "".join(traceback.format_exception_only(exc)).strip()
            for name, server in servers.items():
                results[f"log_tail_{name}"] = server.log_tail()
        finally:
            for server in servers.values():
                server.stop()
    return results


def report(results: dict[str, Any]) -> str:
    if results.get("status") != "ok":
        return f"Serving with alert evaluation: failed: {results.get('reason')}"
    ratio = results["ratio"]
    verdict = "meets" if ratio is not None and ratio >= TARGET_RATIO else "misses"
    return (
        f"Serving with {results['rules']} rules evaluated every {results['config']['window_s']} s window: "
        f"{results['rps']['on']:.0f} req/s against {results['rps']['off']:.0f} without rules "
        f"(series evaluated: {results['evaluated']['series']}; median per-round ratio {ratio:.3f}, "
        f"{verdict} the >= {TARGET_RATIO} target; rounds: "
        + ", ".join(f"{r:.3f}" for r in results["ratio_per_round"])
        + ")."
    )
