"""What a rollout costs the caller: one server, three endpoints on the same model, loaded by wrk in turns.

``single`` serves bench:1 alone; ``canary`` serves bench:1 with a canary to bench:2 held at 50%; ``shadow``
serves bench:1 with every request also shadowed to bench:2 (the same model, so only the routing, the
evidence counting and the shadow calls differ). One ``shipyard serve --workers 1`` serves all three, and
wrk loads them in turn, round after round, so noise from the machine falls on each alike; the figures are
medians over the rounds. The issue's targets: routing costs at most 5% throughput (canary / single req/s
at concurrency 8), and shadowing adds at most 5% to the caller's p50 latency (at concurrency 1).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import traceback
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serving import WrongAnswer, _verify, _wait_ready
from serving.load import ensure_wrk, metric_total, run_wrk
from serving.model import BenchModel, body, train
from serving.procs import ServerProcess, cpu_seconds, free_port
from serving.servers import PROJECT_BIN, home_env, json_script

HERE = Path(__file__).resolve().parent
ENDPOINTS = ("single", "canary", "shadow")
CONCURRENCY = (8, 1)
TARGETS = {"canary_rps_ratio": 0.95, "shadow_p50_ratio": 1.05}
STABLE, CANDIDATE = "bench:1", "bench:2"
SPLIT_CHECKS = 200
SETTLE_S = 2.5
"""Pause after every load run: the shadow queue left by a run drains before the next run starts."""
BUDGET_S = 1200.0
"""Rounds still to come are skipped once the benchmark has run this long."""


def _served_by(url: str, data: bytes, *, routing_key: str | None) -> str:
    """The X-Model-Version of one answer, with ``routing_key`` as X-Routing-Key when given."""
    headers = {"Content-Type": "application/json"}
    if routing_key is not None:
        headers["X-Routing-Key"] = routing_key
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
        return str(response.headers.get("X-Model-Version"))


def _versions(url: str, data: bytes, *, keyed: bool) -> dict[str, int]:
    return dict(Counter(_served_by(url, data, routing_key=f"user-{i}" if keyed else None) for i in range(SPLIT_CHECKS)))


def check_routing(base: str, bench: BenchModel) -> dict[str, Any]:
    """Every endpoint answers what the model says; canary answers come from both versions, the rest from stable.

    The split is checked with distinct X-Routing-Key headers and without any (as wrk sends: the random
    request id is then the routing key), each over ``SPLIT_CHECKS`` requests.
    """
    data = body(bench, 1, key="instances")
    seen: dict[str, Any] = {}
    for name in ENDPOINTS:
        url = f"{base}/v1/endpoints/{name}/predict"
        for rows in (1, 32):
            _verify(url, bench, "instances", rows)
        keyed, unkeyed = _versions(url, data, keyed=True), _versions(url, data, keyed=False)
        seen[name] = {"keyed": keyed, "unkeyed": unkeyed}
        for how, counts in (("with X-Routing-Key", keyed), ("without X-Routing-Key", unkeyed)):
            if name == "canary":
                share = counts.get(CANDIDATE, 0) / SPLIT_CHECKS
                if set(counts) != {STABLE, CANDIDATE} or not 0.3 <= share <= 0.7:
                    raise WrongAnswer(
                        f"canary {how} should split about 50/50 between {STABLE} and {CANDIDATE}: {counts}"
                    )
            elif set(counts) != {STABLE}:
                raise WrongAnswer(f"{name} {how} should answer from {STABLE} only: {counts}")
    return seen


def load_rounds(
    urls: dict[str, str], body_file: Path, *, wrk: str, rounds: int, duration_s: float, warmup_s: float,
    server: ServerProcess, started: float,
) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """Every endpoint at every concurrency, ``rounds`` times, the endpoints' order rotated run by run."""
    runs: list[dict[str, Any]] = []
    shadow_sent = 0
    for name in ENDPOINTS:
        warm = run_wrk(wrk, urls[name], body_file, connections=8, duration_s=warmup_s)
        shadow_sent += warm["requests"] - warm["status_errors"] if name == "shadow" else 0
        time.sleep(SETTLE_S)
    turn = 0
    for round_index in range(rounds):
        if round_index and time.monotonic() - started > BUDGET_S:
            print(
                f"rollouts benchmark: over {BUDGET_S:.0f} s, skipping rounds {round_index + 1}-{rounds}",
                file=sys.stderr,
            )
            break
        for concurrency in CONCURRENCY:
            turn += 1
            for name in ENDPOINTS[turn % 3 :] + ENDPOINTS[: turn % 3]:
                cpu_before = cpu_seconds(server.pid)
                cell = run_wrk(wrk, urls[name], body_file, connections=concurrency, duration_s=duration_s)
                cell["cpu_us_per_request"] = (cpu_seconds(server.pid) - cpu_before) / max(1, cell["requests"]) * 1e6
                runs.append({"endpoint": name, "round": round_index, **cell})
                shadow_sent += cell["requests"] - cell["status_errors"] if name == "shadow" else 0
                if not server.alive():
                    raise RuntimeError(f"the server exited during the runs:\n{server.log_tail()}")
                time.sleep(SETTLE_S)
    return runs, shadow_sent


def medians(runs: list[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    """Per endpoint and concurrency: the median req/s, p50 and p99 over the rounds, and all errors."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for name in ENDPOINTS:
        for c in CONCURRENCY:
            cells = [r for r in runs if r["endpoint"] == name and r["concurrency"] == c]
            if cells:
                out.setdefault(name, {})[c] = {
                    "rps": statistics.median(r["rps"] for r in cells),
                    "p50_ms": statistics.median(r["p50_ms"] for r in cells),
                    "p99_ms": statistics.median(r["p99_ms"] for r in cells),
                    "cpu_us_per_request": statistics.median(r.get("cpu_us_per_request", 0.0) for r in cells),
                    "errors": sum(r["errors"] for r in cells),
                    "rounds": len(cells),
                }
    return out


def _per_round(runs: list[dict[str, Any]], name: str, c: int, key: str) -> list[float]:
    """``name`` over ``single`` on ``key``, round by round (how steady the ratio is)."""
    by = {(r["endpoint"], r["round"]): r[key] for r in runs if r["concurrency"] == c}
    rounds = sorted({r for _, r in by})
    return [by[(name, i)] / by[("single", i)] for i in rounds if (name, i) in by and by.get(("single", i))]


def ratios(runs: list[dict[str, Any]], table: dict[str, dict[int, dict[str, Any]]]) -> dict[str, Any]:
    def ratio(name: str, c: int, key: str) -> float | None:
        """The median of the round-by-round ratios: each round pairs the endpoints under the same conditions,
        so a round slowed by the machine as a whole moves both sides of its ratio, not the median."""
        paired = _per_round(runs, name, c, key)
        if paired:
            return statistics.median(paired)
        a, b = table.get(name, {}).get(c), table.get("single", {}).get(c)
        return a[key] / b[key] if a and b and b[key] else None

    return {
        "canary_rps_ratio": ratio("canary", 8, "rps"),
        "canary_rps_ratio_per_round": _per_round(runs, "canary", 8, "rps"),
        "canary_cpu_ratio": ratio("canary", 8, "cpu_us_per_request"),
        "canary_cpu_ratio_per_round": _per_round(runs, "canary", 8, "cpu_us_per_request"),
        "shadow_p50_ratio": ratio("shadow", 1, "p50_ms"),
        "shadow_p50_ratio_per_round": _per_round(runs, "shadow", 1, "p50_ms"),
        "shadow_rps_ratio": ratio("shadow", 8, "rps"),
        "canary_p50_ratio": ratio("canary", 1, "p50_ms"),
        "canary_rps_ratio_c1": ratio("canary", 1, "rps"),
        "shadow_rps_ratio_c1": ratio("shadow", 1, "rps"),
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Set up the store, start one server, check its routing, then load the three endpoints in turns."""
    duration_s, warmup_s, rounds = (3.0, 1.0, 1) if quick else (5.0, 2.0, 7)
    started = time.monotonic()
    wrk = ensure_wrk()
    results: dict[str, Any] = {
        "config": {
            "model": "LogisticRegression, scikit-learn breast-cancer data (30 features)",
            "duration_s": duration_s,
            "warmup_s": warmup_s,
            "rounds": rounds,
            "concurrency": list(CONCURRENCY),
            "rows": 1,
            "wrk_threads": 1,
            "quick": quick,
            "cpus": os.cpu_count(),
            "load_average_before": os.getloadavg()[0],
        },
        "status": "ok",
    }
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-rollouts-") as tmp:
        workdir = Path(tmp)
        env = home_env(workdir / "shipyard-home")
        bench = train(workdir)
        body_file = workdir / "instances-1.json"
        body_file.write_bytes(body(bench, 1, key="instances"))
        server: ServerProcess | None = None
        try:
            print("rollouts benchmark: registering bench:1 and bench:2, starting the rollouts ...", file=sys.stderr)
            results["store"] = json_script("shipyard_rollouts.py", "setup", str(bench.path), env=env, cwd=workdir)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            command = [
                str(PROJECT_BIN / "shipyard"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ]
            server = ServerProcess(command, env=env, cwd=workdir, log_path=workdir / "serve.log")
            results["startup_s"] = _wait_ready(server, f"{base}/readyz", timeout_s=120)
            results["routing_checks"] = check_routing(base, bench)
            urls = {name: f"{base}/v1/endpoints/{name}/predict" for name in ENDPOINTS}
            print("rollouts benchmark: loading single, canary, shadow in turns ...", file=sys.stderr, flush=True)
            runs, shadow_sent = load_rounds(
                urls, body_file, wrk=wrk, rounds=rounds, duration_s=duration_s, warmup_s=warmup_s,
                server=server, started=started,
            )  # fmt: skip
            results["runs"] = runs
            time.sleep(2.5)  # the server flushes its rollout evidence to the store every second
            results["rollouts"] = json_script("shipyard_rollouts.py", "status", env=env, cwd=workdir)
            checks = results["routing_checks"]["shadow"]
            results["shadow"] = {
                "answered": shadow_sent + sum(sum(v.values()) for v in checks.values()) + 2,  # + the _verify calls
                "compared": results["rollouts"]["shadow"]["shadow_requests"],
                "dropped": metric_total(base, "shipyard_shadow_dropped_total", label='endpoint="shadow"'),
            }
        except Exception as exc:
            results["status"] = "failed"
            results["reason"] = "".join(traceback.format_exception_only(exc)).strip()
            if server is not None:
                results["log_tail"] = server.log_tail()
        finally:
            if server is not None:
                server.stop()
    results["config"]["load_average_after"] = os.getloadavg()[0]
    results["config"]["elapsed_s"] = time.monotonic() - started
    table = medians(results.get("runs", []))
    results["medians"] = {name: {str(c): cell for c, cell in cells.items()} for name, cells in table.items()}
    results["ratios"] = ratios(results.get("runs", []), table)
    return results


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else f"{value:{spec}}"


def _met(value: float | None, target: float, *, at_most: bool = False) -> str:
    if value is None:
        return "not measured"
    return "yes" if (value <= target if at_most else value >= target) else "**no**"


def report(results: dict[str, Any]) -> str:
    cfg, r = results["config"], results["ratios"]
    lines = [
        "## Rollouts",
        "",
        f"{cfg['model']}, registered twice (bench:1, bench:2). One `shipyard serve --workers 1`, three endpoints: "
        "single (bench:1 alone), canary (50% to bench:2, held there), shadow (every request also sent to bench:2). "
        f"wrk -t {cfg['wrk_threads']} on 127.0.0.1, one-row requests, {cfg['duration_s']:g} s per run, the endpoints "
        f"taking turns; medians over {cfg['rounds']} round(s), and each ratio is the median of the round-by-round "
        "ratios. req/s counts 2xx answers.",
    ]
    if results["status"] != "ok":
        reason = " ".join(str(results.get("reason", "")).split())
        lines += ["", f"Failed: {reason[:800]}"]
        if results.get("log_tail"):
            lines += ["", "```", results["log_tail"], "```"]
        return "\n".join(lines)
    lines += ["", "| endpoint | concurrency | req/s | p50 ms | p99 ms | errors |", "|---|---:|---:|---:|---:|---:|"]
    for c in CONCURRENCY:
        for name in ENDPOINTS:
            cell = results["medians"].get(name, {}).get(str(c))
            if cell:
                figures = f"{cell['rps']:.0f} | {cell['p50_ms']:.3f} | {cell['p99_ms']:.3f} | {cell['errors']}"
                lines.append(f"| {name} | {c} | {figures} |")

    def rounds(key: str) -> str:
        values = r.get(key) or []
        return f" (per round: {', '.join(f'{v:.3f}' for v in values)})" if len(values) > 1 else ""

    t = TARGETS
    lines += [
        "",
        "| measure | value | target | met |",
        "|---|---:|---:|---|",
        f"| canary / single req/s, c=8 | {_fmt(r['canary_rps_ratio'], '.3f')}{rounds('canary_rps_ratio_per_round')} "
        f"| ≥ {t['canary_rps_ratio']:.2f} | {_met(r['canary_rps_ratio'], t['canary_rps_ratio'])} |",
        f"| shadow / single p50, c=1 | {_fmt(r['shadow_p50_ratio'], '.3f')}{rounds('shadow_p50_ratio_per_round')} "
        f"| ≤ {t['shadow_p50_ratio']:.2f} | {_met(r['shadow_p50_ratio'], t['shadow_p50_ratio'], at_most=True)} |",
        f"| canary / single server CPU per request, c=8 | {_fmt(r['canary_cpu_ratio'], '.3f')}"
        f"{rounds('canary_cpu_ratio_per_round')} | ≤ {1 / t['canary_rps_ratio']:.3f} | "
        f"{_met(r['canary_cpu_ratio'], 1 / t['canary_rps_ratio'], at_most=True)} |",
        f"| shadow / single req/s, c=8 | {_fmt(r['shadow_rps_ratio'], '.3f')} | | |",
        f"| canary / single p50, c=1 | {_fmt(r['canary_p50_ratio'], '.3f')} | | |",
    ]
    shadow, rollouts = results["shadow"], results["rollouts"]
    arms = rollouts["canary"]["arms"]
    split = results["routing_checks"]["canary"]
    dropped = shadow["dropped"]
    lines += [
        "",
        f"- Shadow comparisons recorded (`rollout status shadow`): {shadow['compared']} for {shadow['answered']} "
        f"answered requests on the shadow endpoint; {'n/a' if dropped is None else f'{dropped:.0f}'} dropped "
        "with the shadow queue full.",
        f"- Canary evidence by arm over the whole run: {', '.join(f'{a} {n}' for a, n in sorted(arms.items()))}; "
        f"before the runs, {SPLIT_CHECKS} requests with distinct X-Routing-Key went {split['keyed']}, "
        f"{SPLIT_CHECKS} without one (as wrk sends) went {split['unkeyed']}. "
        f"Canary rollout still {rollouts['canary']['status']} at {rollouts['canary']['weight']:.0%} after the run.",
    ]
    load = (cfg.get("load_average_before"), cfg.get("load_average_after"))
    if None not in load and max(load) > 0.5 * (cfg.get("cpus") or 1):
        lines.append(
            f"- The machine was busy with other work (1-min load average {load[0]:.1f} before, {load[1]:.1f} after, "
            f"{cfg.get('cpus')} CPUs): absolute figures are noisy; the endpoints took turns, so the ratios less so."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    figures = run(os.environ.get("SHIPYARD_BENCH_QUICK") == "1")
    print(report(figures))
    print(json.dumps(figures, indent=2), file=sys.stderr)
