"""What auth costs a caller: predict with an API key and with an SSO token (JWT), against auth off.

Three ``shipyard serve --workers 1`` processes, each on its own store holding the same model and endpoint,
each loaded only by its own cell (so each one's background work, such as log flushes, follows its own
traffic): ``off`` (no key, loopback: the single-user mode, auth off), ``key`` (a store with one predictor key,
called with ``Authorization: Bearer shy_…``) and ``jwt`` (SSO configured against an issuer this process runs
on 127.0.0.1 with an RSA key it generates, called with an RS256 token, the same one on every request, as a
client holds its token until it expires). The cells take turns, round after round; the ratios and differences
pair each auth cell with ``off`` in the same round (the machine's speed drifts between rounds) and report the
median and the spread of those pairs. Before any timing, ``key`` and ``jwt`` are checked to refuse a request
without credentials, so the comparison is of auth against no auth.

The issue's targets, one worker: key and JWT throughput at least 0.97 of auth off, p50 within 50 µs. The auth
work is also timed in-process (the middleware's ``authenticate`` per request), which no neighbour's load
can blur: a key, a JWT already verified (remembered until it expires), and a JWT seen for the first time.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serving import _wait_ready
from serving.load import LUA_SCRIPT, ensure_wrk, median_figures, run_wrk
from serving.model import BenchModel, body, train
from serving.procs import ServerProcess, cpu_seconds, free_port
from serving.servers import PROJECT_BIN, home_env

CELLS = ("off", "key", "jwt")
CONCURRENCY = (8, 1)
TARGET_RPS_RATIO = 0.97
TARGET_P50_US = 50.0
SETTLE_S = 2.0
AUDIENCE = "shipyard-bench"
GROUP = "bench-apps"

# post.lua with an Authorization header: the second argument after the body file, when given.
AUTH_LUA = """
dofile("{post}")
local req
function init(args)
  local f = assert(io.open(args[1], "rb"))
  local body = f:read("*a")
  f:close()
  local headers = {{ ["Content-Type"] = "application/json" }}
  if args[2] ~= nil and args[2] ~= "" then headers["Authorization"] = "Bearer " .. args[2] end
  req = wrk.format("POST", nil, headers, body)
end
function request()
  return req
end
"""


class Issuer:
    """An OpenID provider's public side on 127.0.0.1 (discovery and key set) and the private key to sign with."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.private = rsa.generate_private_key(65537, 2048)
        self.url = ""

    def jwks(self) -> dict[str, Any]:
        import jwt

        return {"keys": [{**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key())), "kid": "k1"}]}

    def token(self, *, lifetime_s: int = 3 * 3600, **extra: Any) -> str:
        import jwt

        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "bench-client",
            "groups": [GROUP],
            "iat": now,
            "exp": now + lifetime_s,
            **extra,
        }
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": "k1"})

    @contextmanager
    def serving(self) -> Iterator[Issuer]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                documents = {
                    "/.well-known/openid-configuration": {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"},
                    "/jwks": issuer.jwks(),
                }
                if self.path not in documents:
                    self.send_error(404)
                    return
                data = json.dumps(documents[self.path]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


def build_store(home: Path, bench: BenchModel, *, key: bool) -> str | None:
    """The model registered and served as endpoint ``bench``; with ``key``, a predictor key (returned)."""
    from shipyard.config import Settings
    from shipyard.workspace import Workspace

    workspace = Workspace(Settings(home=home, database_url="", artifact_uri=""))
    try:
        version = workspace.registry.register(
            bench.model, name="bench", sample_input=bench.frame[:50], training_data=bench.frame
        )
        workspace.endpoints.create("bench", model=version.ref)
        return workspace.keys.create("bench-client", role="predictor")[1] if key else None
    finally:
        workspace.close()


def _post(url: str, data: bytes, credential: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if credential:
        headers["Authorization"] = f"Bearer {credential}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=30) as answer:
            return answer.status, orjson.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:300]


def check_cells(urls: Mapping[str, str], credentials: Mapping[str, str | None], bench: BenchModel) -> None:
    """Each cell answers the model's own predictions; the auth cells refuse a request without credentials."""
    data = body(bench, 1, key="instances")
    expected, _ = bench.expected(1)
    for cell in CELLS:
        status, answer = _post(urls[cell], data, credentials[cell])
        if status != 200 or not np.array_equal(np.asarray(answer["predictions"]), expected):
            raise RuntimeError(f"cell {cell!r} answered {status}: {str(answer)[:300]}")
    for cell in ("key", "jwt"):
        status, answer = _post(urls[cell], data, None)
        if status != 401:
            raise RuntimeError(f"the {cell!r} server answered {status} without credentials (expected 401): {answer!r}")


def in_process_costs(issuer: Issuer, *, calls: int, fresh_tokens: int) -> dict[str, float]:
    """µs per ``Authenticator.authenticate`` call: a key, a remembered JWT, a JWT verified for the first time."""
    from datetime import UTC, datetime

    from shipyard.core.identity import ApiKey, Role, hash_secret, new_key
    from shipyard.serving.auth import Authenticator
    from shipyard.serving.oidc import OidcConfig, OidcVerifier, usable_keys

    key_id, secret, salt, full_key = new_key()
    ring = {
        key_id: ApiKey(
            key_id, "bench", Role.PREDICTOR, None, None, salt, hash_secret(salt, secret), "bench", datetime.now(UTC)
        )
    }
    config = OidcConfig(issuer.url, AUDIENCE, None, "groups", {GROUP: Role.PREDICTOR}, 30.0)
    verifier = OidcVerifier(config)
    verifier.keys = usable_keys(issuer.jwks())
    auth = Authenticator(required=True, token_verifier=verifier)
    auth.load(ring)

    def per_call_us(headers: list[str]) -> float:
        start = time.perf_counter()
        for header in headers:
            auth.authenticate(header, None)
        return (time.perf_counter() - start) / len(headers) * 1e6

    token = issuer.token()
    auth.authenticate(f"Bearer {token}", None)  # verified once, remembered after
    fresh = [f"Bearer {issuer.token(jti=str(i))}" for i in range(fresh_tokens)]
    return {
        "key_us": per_call_us([f"Bearer {full_key}"] * calls),
        "jwt_remembered_us": per_call_us([f"Bearer {token}"] * calls),
        "jwt_first_sight_us": per_call_us(fresh),
    }


def run(quick: bool = False) -> dict[str, Any]:
    duration_s, warmup_s, rounds = (3.0, 1.0, 1) if quick else (5.0, 2.0, 5)
    started = time.monotonic()
    wrk = ensure_wrk()
    results: dict[str, Any] = {
        "config": {
            "model": "LogisticRegression, scikit-learn breast-cancer data (30 features)",
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
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-auth-") as tmp, Issuer().serving() as issuer:
        workdir = Path(tmp)
        bench = train(workdir)
        body_file = workdir / "instances-1.json"
        body_file.write_bytes(body(bench, 1, key="instances"))
        script = workdir / "post-auth.lua"
        script.write_text(AUTH_LUA.format(post=LUA_SCRIPT))
        try:
            key = None
            for cell in CELLS:
                key = build_store(workdir / f"{cell}-home", bench, key=cell == "key") or key
            token = issuer.token()
            sso = {
                "SHIPYARD_OIDC_ISSUER": issuer.url,
                "SHIPYARD_OIDC_AUDIENCE": AUDIENCE,
                "SHIPYARD_OIDC_ROLE_MAP": json.dumps({GROUP: "predictor"}),
            }
            urls: dict[str, str] = {}
            for name in CELLS:
                extra = sso if name == "jwt" else {}
                env = {k: v for k, v in home_env(workdir / f"{name}-home").items() if not k.startswith("SHIPYARD_OIDC")}
                port = free_port()
                command = [str(PROJECT_BIN / "shipyard"), "serve", "--host", "127.0.0.1", "--port", str(port)]
                servers[name] = ServerProcess(
                    command, env={**env, **extra}, cwd=workdir, log_path=workdir / f"serve-{name}.log"
                )
                _wait_ready(servers[name], f"http://127.0.0.1:{port}/readyz", timeout_s=120)
                urls[name] = f"http://127.0.0.1:{port}/v1/endpoints/bench/predict"
            credentials: dict[str, str | None] = {"off": None, "key": key, "jwt": token}
            check_cells(urls, credentials, bench)

            def load(cell: str, concurrency: int, seconds: float) -> dict[str, Any]:
                args = (credentials[cell] or "",)
                return run_wrk(
                    wrk,
                    urls[cell],
                    body_file,
                    connections=concurrency,
                    duration_s=seconds,
                    script=script,
                    script_args=args,
                )

            for cell in CELLS:
                load(cell, 8, warmup_s)
                time.sleep(SETTLE_S)
            runs = []
            turn = 0
            for round_index in range(rounds):
                for concurrency in CONCURRENCY:
                    turn += 1
                    for cell in CELLS[turn % 3 :] + CELLS[: turn % 3]:
                        pid = servers[cell].pid
                        cpu_before = cpu_seconds(pid)
                        figures = load(cell, concurrency, duration_s)
                        figures["cpu_us_per_request"] = (
                            (cpu_seconds(pid) - cpu_before) / max(1, figures["requests"]) * 1e6
                        )
                        runs.append({"cell": cell, "round": round_index, **figures})
                        time.sleep(SETTLE_S)
            results["runs"] = runs
            results["component"] = in_process_costs(
                issuer, calls=20_000 if not quick else 5_000, fresh_tokens=500 if not quick else 100
            )
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
    results["medians"] = median_figures(results.get("runs", []), by="cell", names=CELLS, concurrency=CONCURRENCY)
    results["paired"] = _paired(results.get("runs", []))
    return results


def _paired(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per round, each auth cell against ``off``: req/s ratio at c=8, p50 and CPU differences in µs."""

    def per_round(cell: str, c: int, key: str, combine: Any) -> list[float]:
        by = {(r["cell"], r["round"]): r[key] for r in runs if r["concurrency"] == c}
        rounds = sorted({i for _, i in by})
        return [combine(by[(cell, i)], by[("off", i)]) for i in rounds if (cell, i) in by and ("off", i) in by]

    out: dict[str, Any] = {}
    for cell in ("key", "jwt"):
        out[cell] = {
            "rps_ratio_c8": per_round(cell, 8, "rps", lambda a, b: a / b if b else float("nan")),
            "p50_diff_us_c1": per_round(cell, 1, "p50_ms", lambda a, b: (a - b) * 1000),
            "p50_diff_us_c8": per_round(cell, 8, "p50_ms", lambda a, b: (a - b) * 1000),
            "cpu_diff_us_c8": per_round(cell, 8, "cpu_us_per_request", lambda a, b: a - b),
        }
    return out


def _spread(values: list[float], fmt: str) -> str:
    if not values:
        return "n/a"
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)} … {format(max(values), fmt)})"


def report(results: dict[str, Any]) -> str:
    cfg = results["config"]
    lines = [
        "## Auth overhead",
        "",
        f"{cfg['model']}. Three `shipyard serve --workers 1`, one per cell, each on its own store: `off` (no key, "
        "loopback: auth off), `key` (`Authorization: Bearer shy_…`) and `jwt` (SSO configured; an RS256 token "
        f"from a local issuer, reused as clients do). wrk -t 1 on 127.0.0.1, one-row requests, "
        f"{cfg['duration_s']:g} s per run, the three taking turns; {cfg['rounds']} round(s). Each auth figure pairs "
        "a cell with `off` in the same round; shown as the median of the rounds (min … max).",
    ]
    if results["status"] != "ok":
        lines += ["", f"Failed: {' '.join(str(results.get('reason', '')).split())[:800]}"]
        for name in CELLS:
            if results.get(f"log_tail_{name}"):
                lines += ["", f"`{name}` server log:", "```", results[f"log_tail_{name}"], "```"]
        return "\n".join(lines)
    lines += [
        "",
        "| cell | concurrency | req/s | p50 ms | p99 ms | server CPU µs / request | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in CONCURRENCY:
        for cell in CELLS:
            m = results["medians"].get(cell, {}).get(str(c))
            if m:
                lines.append(
                    f"| {cell} | {c} | {m['rps']:.0f} | {m['p50_ms']:.3f} | {m['p99_ms']:.3f} | "
                    f"{m['cpu_us_per_request']:.0f} | {m['errors']} |"
                )
    lines += ["", "| measure | value: median (min … max) | target | met |", "|---|---:|---:|---|"]
    for cell in ("key", "jwt"):
        p = results["paired"][cell]
        ratio = statistics.median(p["rps_ratio_c8"]) if p["rps_ratio_c8"] else None
        p50 = statistics.median(p["p50_diff_us_c1"]) if p["p50_diff_us_c1"] else None
        ratio_met = "n/a" if ratio is None else ("yes" if ratio >= TARGET_RPS_RATIO else "**no**")
        p50_met = "n/a" if p50 is None else ("yes" if p50 <= TARGET_P50_US else "**no**")
        lines += [
            f"| {cell} / off req/s, c=8 | {_spread(p['rps_ratio_c8'], '.3f')} | ≥ {TARGET_RPS_RATIO} | {ratio_met} |",
            f"| {cell} - off p50, c=1 (µs) | {_spread(p['p50_diff_us_c1'], '+.0f')} | ≤ {TARGET_P50_US:.0f} "
            f"| {p50_met} |",
            f"| {cell} - off p50, c=8 (µs) | {_spread(p['p50_diff_us_c8'], '+.0f')} | | |",
            f"| {cell} - off server CPU / request, c=8 (µs) | {_spread(p['cpu_diff_us_c8'], '+.0f')} | | |",
        ]
    component = results.get("component")
    if component:
        lines += [
            "",
            f"- The auth work itself, timed in-process (`Authenticator.authenticate`, one call per request): "
            f"{component['key_us']:.1f} µs with a key, {component['jwt_remembered_us']:.1f} µs with a JWT already "
            f"verified (remembered until it expires), {component['jwt_first_sight_us']:.0f} µs for a JWT seen for "
            "the first time (RS256 signature, claims, roles).",
        ]
    lines.append(
        f"- Load average {cfg['load_average_before']:.1f} before, {cfg['load_average_after']:.1f} after "
        f"({cfg['cpus']} CPUs); {cfg['elapsed_s']:.0f} s in all."
    )
    return "\n".join(lines)
