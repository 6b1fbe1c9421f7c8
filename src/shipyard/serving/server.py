"""Run the server with uvicorn (uvloop, httptools with header limits), one process or several workers sharing a port."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING

from shipyard.errors import InvalidArgumentError

if TYPE_CHECKING:
    from shipyard.config import Settings

# Imported by ``shipyard serve`` only to replace itself with a server process (``exec_server``): uvicorn,
# the settings and the app are imported by that process, not by the command line that starts it.


def check_port(host: str, port: int) -> None:
    """Fail with one clear line before uvicorn would fail with a log dump."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise InvalidArgumentError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    on_ready: Callable[[], None] | None = None,
    insecure: bool = False,
) -> None:
    """Serve until interrupted. Workers each load every endpoint's model and poll the store.

    Every worker speaks HTTP through the header-limited httptools protocol (431 past the settings' limits).
    """
    import uvicorn

    if workers < 1:
        raise InvalidArgumentError(f"--workers must be at least 1, got {workers}")
    tls = tls_options(settings)
    check_port(host, port)
    check_exposure(settings, host, insecure=insecure)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    common = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": http_protocol(settings),
        "access_log": False,
        "log_level": "warning",
        "timeout_graceful_shutdown": 10,
        **tls,
    }
    if workers == 1:
        import gc

        gc.disable()  # until the first sync is done: see app.start_up_without_collections
        from shipyard.serving.app import create_app

        uvicorn.run(create_app(settings, on_ready=on_ready, bind_host=host), **common)  # type: ignore[arg-type]
        return
    # Each worker writes its metrics to files here; /metrics in any worker merges them all.
    metrics_dir = tempfile.mkdtemp(prefix="shipyard-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    from shipyard.serving.app import BIND_HOST_ENV

    os.environ[BIND_HOST_ENV] = host
    from shipyard.serving.ratelimit import RATE_LIMIT_FILE_ENV

    os.environ[RATE_LIMIT_FILE_ENV] = os.path.join(metrics_dir, "rate-limits.bin")  # one table for all workers
    try:
        uvicorn.run("shipyard.serving.app:app_from_environment", factory=True, workers=workers, **common)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def check_exposure(settings: Settings, host: str, *, insecure: bool) -> None:
    """Refuse to expose a server beyond this machine with auth off, unless told so with ``--insecure``.

    Auth is on when ``SHIPYARD_AUTH=required``, SSO tokens are configured or any API key exists; otherwise every
    caller would be an administrator, which is only acceptable on loopback (one user) or by an explicit choice.
    """
    from shipyard.config import is_loopback

    if is_loopback(host) or settings.auth == "required" or settings.oidc_issuer is not None:
        return
    from shipyard.store.db import Database
    from shipyard.store.keys import any_exist

    db = Database(settings.database_url)
    try:
        with db.read() as conn:
            keys_exist = any_exist(conn)
    finally:
        db.dispose()
    if keys_exist:
        return
    if not insecure:
        raise InvalidArgumentError(
            f"refusing to serve on {host} with auth off: anyone who can reach the port could change endpoints; "
            "create a key (shipyard keys create --name admin --role admin), set SHIPYARD_AUTH=required, "
            "or pass --insecure to accept it"
        )
    logging.getLogger("shipyard.serving").warning(
        "serving on %s with auth OFF (--insecure): every caller is admin", host
    )


def tls_options(settings: Settings) -> dict[str, str]:
    """uvicorn's ``ssl_certfile``/``ssl_keyfile`` when HTTPS is asked for, checked now: a missing, unreadable or
    mismatched file is one line before the port is bound, not a traceback from every worker."""
    cert, key = settings.tls_cert, settings.tls_key
    if cert is None or key is None:
        return {}
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # An encrypted key would make OpenSSL prompt on the terminal; an empty password fails it instead.
        context.load_cert_chain(str(cert), str(key), password=lambda: b"")
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            raise InvalidArgumentError(
                f"TLS certificate {cert} and key {key} cannot be used: {exc.reason or exc}; give a PEM certificate "
                "(its chain after it) and the unencrypted private key that matches it"
            ) from None
        raise InvalidArgumentError(
            f"cannot read TLS file {exc.filename or f'{cert} or {key}'}: {exc.strerror or exc}"
        ) from None
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def http_protocol(settings: Settings) -> type[asyncio.Protocol]:
    """uvicorn's ``http=`` for these settings: httptools, with the request line and headers bounded."""
    from shipyard.serving.http_limits import HeaderLimits, limited_http

    return limited_http(HeaderLimits(max_bytes=settings.max_header_bytes, max_count=settings.max_headers))


def exec_server(
    *,
    host: str,
    port: int,
    workers: int,
    insecure: bool = False,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> None:
    """Replace the calling (CLI) process with a lean server process: same PID, no CLI libraries loaded.

    Workers are spawned from this module too, so none of them carries the command line's imports. glibc
    gives each thread its own malloc arena; two are plenty for a server whose threads mostly wait. The
    interpreter runs with -OO: the docstrings of scikit-learn, SciPy, pandas and NumPy are some 18 MB per
    worker that a server never reads (and asserts, which production code must not rely on, are skipped).
    """
    if workers < 1:
        raise InvalidArgumentError(f"--workers must be at least 1, got {workers}")
    check_port(host, port)
    env = {**os.environ}
    env.setdefault("MALLOC_ARENA_MAX", "2")
    args = [
        sys.executable,
        "-OO",
        "-m",
        "shipyard.serving.server",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        *(["--insecure"] if insecure else []),
        *(["--tls-cert", tls_cert] if tls_cert else []),
        *(["--tls-key", tls_key] if tls_key else []),
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, args, env)


def main(argv: list[str] | None = None) -> None:
    """``python -m shipyard.serving.server``: what ``shipyard serve`` runs; errors are one line."""
    import argparse
    import gc

    gc.disable()  # until the first sync is done: see app.start_up_without_collections
    from shipyard.config import Settings
    from shipyard.errors import ShipyardError

    parser = argparse.ArgumentParser(prog="shipyard serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--insecure", action="store_true")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args(argv)
    try:
        settings = Settings.load(tls_cert=args.tls_cert, tls_key=args.tls_key)
        serve(settings, host=args.host, port=args.port, workers=args.workers, insecure=args.insecure)
    except ShipyardError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
