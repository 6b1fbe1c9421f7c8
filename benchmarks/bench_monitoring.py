"""What monitoring costs the caller: the same server with the prediction log and live profiles on, and off.

Two ``shipyard serve --workers 1`` processes share one store and serve the same endpoint; one runs with
``SHIPYARD_MONITORING=false``. wrk loads them in turns, round after round, so noise from the machine falls
on each alike; the figures are medians over the rounds. The issue's target: prediction logging plus
profiling cost at most 5% of serving throughput (on / off req/s at concurrency 8). Every answered request
of the monitored server is then looked for in the prediction log.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serving import _verify, _wait_ready
from serving.load import ensure_wrk, median_figures, metric_total, run_wrk
from serving.model import BenchModel, body, load_frame, train
from serving.procs import ServerProcess, cpu_seconds, free_port
from serving.servers import PROJECT_BIN, home_env, json_script

HERE = Path(__file__).resolve().parent
SERVERS = ("off", "on")
CONCURRENCY = (8, 1)
TARGET_RPS_RATIO = 0.95
SETTLE_S = 2.0


def recorder_cost(bench: BenchModel, workdir: Path, *, requests: int = 20_000, batch: int = 1000) -> dict[str, float]:
    """The monitoring work itself, timed in this process: the request path's hand-over (``add``) and the
    background batch (profile, outlier scores, log file, windows), per request, on one-row requests like the
    server's; and the background batch again for the same model registered without an outlier model, so the
    outlier scoring's own share is measured apart from the machine's noise."""
    with_outliers = _recorder_cost(bench, workdir / "recorder-home", "mahalanobis", requests=requests, batch=batch)
    without = _recorder_cost(bench, workdir / "recorder-home-none", "none", requests=requests, batch=batch)
    return {**with_outliers, "drain_us_without_outliers": without["drain_us"]}


def _recorder_cost(bench: BenchModel, home: Path, outlier_model: str, *, requests: int, batch: int) -> dict[str, float]:
    import numpy as np

    from shipyard.config import Settings
    from shipyard.flavors.loaded import Prediction
    from shipyard.serving.recorder import Recorder, RecorderConfig
    from shipyard.workspace import Workspace

    workspace = Workspace(Settings(home=home))
    try:
        version = workspace.registry.register(
            bench.model,
            name="bench",
            sample_input=bench.frame[:50],
            training_data=bench.frame,
            training_target=load_frame()[1],
            outlier_model=outlier_model,
        )
        recorder = Recorder(
            RecorderConfig(capacity=batch * 2),
            log_store=workspace.prediction_log,
            sink=workspace.monitoring.store_windows,
        )
        x = bench.frame.to_numpy(dtype=np.float64)
        labels, proba = bench.model.predict(x[:1]), bench.model.predict_proba(x[:1])
        prediction = Prediction(labels, proba, tuple(bench.model.classes_))
        add_s = drain_s = 0.0
        for start in range(0, requests, batch):
            t0 = time.perf_counter()
            for i in range(start, start + batch):
                recorder.add(
                    "bench",
                    version,
                    arm="stable",
                    inputs=x[i % len(x) : i % len(x) + 1],
                    prediction=prediction,
                    request_id=f"r{i}",
                    rows=1,
                    latency_s=4e-4,
                    status=200,
                )
            t1 = time.perf_counter()
            recorder.drain()
            t2 = time.perf_counter()
            add_s, drain_s = add_s + (t1 - t0), drain_s + (t2 - t1)
        recorder.flush_windows(force=True)
        return {"add_us": add_s / requests * 1e6, "drain_us": drain_s / requests * 1e6, "requests": requests}
    finally:
        workspace.close()


def run(quick: bool = False) -> dict[str, Any]:
    duration_s, warmup_s, rounds = (3.0, 1.0, 1) if quick else (5.0, 2.0, 7)
    started = time.monotonic()
    wrk = ensure_wrk()
    results: dict[str, Any] = {
        "config": {
            "model": "LogisticRegression, scikit-learn breast-cancer data (30 features), reference profile from "
            "its training data",
            "duration_s": duration_s,
            "rounds": rounds,
            "concurrency": list(CONCURRENCY),
            "rows": 1,
            "quick": quick,
            "cpus": os.cpu_count(),
            "load_average_before": os.getloadavg()[0],
        },
        "status": "ok",
    }
    servers: dict[str, ServerProcess] = {}
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-monitoring-") as tmp:
        workdir = Path(tmp)
        home = workdir / "shipyard-home"
        bench = train(workdir)
        body_file = workdir / "instances-1.json"
        body_file.write_bytes(body(bench, 1, key="instances"))
        try:
            results["store"] = json_script(
                "shipyard_monitoring.py", "setup", str(bench.path), env=home_env(home), cwd=workdir
            )
            urls: dict[str, str] = {}
            for name in SERVERS:
                port = free_port()
                extra = {"SHIPYARD_MONITORING": "false"} if name == "off" else {}
                command = [str(PROJECT_BIN / "shipyard"), "serve", "--host", "127.0.0.1", "--port", str(port)]
                servers[name] = ServerProcess(
                    command, env=home_env(home, **extra), cwd=workdir, log_path=workdir / f"serve-{name}.log"
                )
                base = f"http://127.0.0.1:{port}"
                _wait_ready(servers[name], f"{base}/readyz", timeout_s=120)
                urls[name] = f"{base}/v1/endpoints/bench/predict"
                for rows in (1, 32):
                    _verify(urls[name], bench, "instances", rows)
            answered = 2  # the two _verify calls on the monitored server
            for name in SERVERS:
                warm = run_wrk(wrk, urls[name], body_file, connections=8, duration_s=warmup_s)
                answered += warm["requests"] - warm["status_errors"] if name == "on" else 0
                time.sleep(SETTLE_S)
            runs = []
            turn = 0
            for round_index in range(rounds):
                for concurrency in CONCURRENCY:
                    turn += 1
                    for name in SERVERS[turn % 2 :] + SERVERS[: turn % 2]:
                        cpu_before = cpu_seconds(servers[name].pid)
                        cell = run_wrk(wrk, urls[name], body_file, connections=concurrency, duration_s=duration_s)
                        cpu = cpu_seconds(servers[name].pid) - cpu_before
                        cell["cpu_us_per_request"] = cpu / max(1, cell["requests"]) * 1e6
                        runs.append({"server": name, "round": round_index, **cell})
                        answered += cell["requests"] - cell["status_errors"] if name == "on" else 0
                        time.sleep(SETTLE_S)
            results["runs"] = runs
            results["component"] = recorder_cost(bench, workdir)
            monitored = urls["on"].rsplit("/v1/", 1)[0]
            results["dropped"] = metric_total(monitored, "shipyard_monitoring_dropped_total") or 0.0
            servers["on"].stop()  # a clean shutdown writes what is still buffered
            results["log"] = {
                "answered": answered,
                **json_script("shipyard_monitoring.py", "count", env=home_env(home), cwd=workdir),
            }
        except Exception as exc:
            results["status"] = "failed"
            results["reason"] = "".join(traceback.format_exception_only(exc)).strip()
            for name, server in servers.items():
                results[f"log_tail_{name}"] = server.log_tail()
        finally:
            for server in servers.values():
                server.stop()
    results["config"]["load_average_after"] = os.getloadavg()[0]
    results["config"]["elapsed_s"] = time.monotonic() - started
    results["medians"] = median_figures(results.get("runs", []), by="server", names=SERVERS, concurrency=CONCURRENCY)
    results["ratios"] = _ratios(results.get("runs", []))
    return results


def _ratios(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def per_round(c: int, key: str) -> list[float]:
        by = {(r["server"], r["round"]): r[key] for r in runs if r["concurrency"] == c}
        return [
            by[("on", i)] / by[("off", i)] for i in sorted({i for _, i in by}) if ("on", i) in by and by.get(("off", i))
        ]

    def median(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    rps8, p50, cpu8 = per_round(8, "rps"), per_round(1, "p50_ms"), per_round(8, "cpu_us_per_request")
    return {
        "rps_ratio": median(rps8),
        "rps_ratio_per_round": rps8,
        "p50_ratio_c1": median(p50),
        "p50_per_round": p50,
        "cpu_ratio": median(cpu8),
        "cpu_ratio_per_round": cpu8,
    }


def report(results: dict[str, Any]) -> str:
    cfg, r = results["config"], results["ratios"]
    lines = [
        "## Monitoring overhead",
        "",
        f"{cfg['model']}. Two `shipyard serve --workers 1` on one store: `on` (prediction log at 100% sampling "
        "and live profiles, the defaults) and `off` (`SHIPYARD_MONITORING=false`). wrk -t 1 on 127.0.0.1, one-row "
        f"requests, {cfg['duration_s']:g} s per run, the servers taking turns; medians over {cfg['rounds']} round(s). "
        "The ratios pair the two servers round by round (the machine's speed drifts between rounds) and take "
        "the median of those ratios.",
    ]
    if results["status"] != "ok":
        lines += ["", f"Failed: {' '.join(str(results.get('reason', '')).split())[:800]}"]
        for name in SERVERS:
            if results.get(f"log_tail_{name}"):
                lines += ["", f"`{name}` server log:", "```", results[f"log_tail_{name}"], "```"]
        return "\n".join(lines)
    lines += [
        "",
        "| server | concurrency | req/s | p50 ms | p99 ms | server CPU µs / request | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in CONCURRENCY:
        for name in SERVERS:
            cell = results["medians"].get(name, {}).get(str(c))
            if cell:
                figures = (
                    f"{cell['rps']:.0f} | {cell['p50_ms']:.3f} | {cell['p99_ms']:.3f} | "
                    f"{cell['cpu_us_per_request']:.0f} | {cell['errors']}"
                )
                lines.append(f"| {name} | {c} | {figures} |")
    ratio, p50_ratio, cpu_ratio = r.get("rps_ratio"), r.get("p50_ratio_c1"), r.get("cpu_ratio")
    cpu_rounds = ", ".join(f"{v:.3f}" for v in r.get("cpu_ratio_per_round", []))
    cpu_met = "n/a" if cpu_ratio is None else ("yes" if cpu_ratio <= 1 / TARGET_RPS_RATIO else "**no**")
    per_round = ", ".join(f"{v:.3f}" for v in r.get("rps_ratio_per_round", []))
    met = "n/a" if ratio is None else ("yes" if ratio >= TARGET_RPS_RATIO else "**no**")
    log = results["log"]
    component = results.get("component")
    off_cpu = results["medians"].get("off", {}).get("8", {}).get("cpu_us_per_request")
    if component and off_cpu:
        work = component["add_us"] + component["drain_us"]
        lines += [
            "",
            f"- The monitoring work itself, timed in-process on the same model and one-row requests: "
            f"{component['add_us']:.1f} µs per request on the request path (the hand-over) plus "
            f"{component['drain_us']:.1f} µs in the background batch (profiles, outlier scores, Parquet log, "
            f"windows) = {work:.1f} µs, i.e. **{work / off_cpu:.1%}** of the {off_cpu:.0f} µs of server CPU a "
            "request costs with monitoring off (the load runs above measure the same, through the noise of a "
            "shared machine).",
        ]
        if "drain_us_without_outliers" in component:
            outliers = component["drain_us"] - component["drain_us_without_outliers"]
            lines.append(
                f"- Of the background batch, outlier scoring (Mahalanobis over the 30 features) is "
                f"{outliers:.1f} µs per request ({component['drain_us_without_outliers']:.1f} µs for the same "
                f"model registered with outlier_model='none'), {outliers / off_cpu:.1%} of a request's server CPU."
            )
    store = results.get("store") or {}
    if store:
        lines.append(
            f"- The served version carries a reference profile: {store.get('reference_profile')}, a confidence "
            f"calibrator: {store.get('confidence_calibrator')}, an outlier model: {store.get('outlier_model')}."
        )
    lines += [
        "",
        "| measure | value | target | met |",
        "|---|---:|---:|---|",
        f"| on / off req/s, c=8 | {_fmt(ratio)} (per round: {per_round}) | ≥ {TARGET_RPS_RATIO:.2f} | {met} |",
        f"| on / off server CPU per request, c=8 | {_fmt(cpu_ratio)} (per round: {cpu_rounds}) "
        f"| ≤ {1 / TARGET_RPS_RATIO:.3f} | {cpu_met} |",
        f"| on / off p50, c=1 | {_fmt(p50_ratio)} | | |",
        "",
        f"- Prediction log after a clean shutdown: {log['requests']} requests ({log['rows']} rows); wrk counted "
        f"{log['answered']} answered (it does not count the requests still in flight when a run ends); "
        f"{results['dropped']:.0f} dropped with the recorder's buffer full. Live windows stored: {log['windows']}, "
        f"counting {log['window_requests']} requests.",
    ]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
