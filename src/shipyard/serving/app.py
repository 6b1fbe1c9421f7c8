"""``create_app``: the one place a server process is wired, from settings to routes."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from shipyard.config import Settings, is_loopback
from shipyard.core.identity import Actor, Principal, Role
from shipyard.errors import ShipyardError
from shipyard.jobs.worker import JobWorker, run_while_leading
from shipyard.notify.delivery import ChannelDelivery
from shipyard.serving.admin import admin_router
from shipyard.serving.alert_routes import alerts_router
from shipyard.serving.auth import Authenticator, AuthMiddleware
from shipyard.serving.channel_routes import channels_router
from shipyard.serving.controller import Controller, webhook_delivery
from shipyard.serving.csrf import CrossSiteGuard
from shipyard.serving.dataplane import DataPlane
from shipyard.serving.job_routes import jobs_router
from shipyard.serving.key_routes import keys_router
from shipyard.serving.metrics import ServingMetrics
from shipyard.serving.models import ModelCache
from shipyard.serving.monitoring_routes import monitoring_router
from shipyard.serving.monitoring_series import MonitoringSeries, refresh_interval_s
from shipyard.serving.ratelimit import RATE_LIMIT_FILE_ENV, RateLimiter
from shipyard.serving.recorder import Recorder, RecorderConfig
from shipyard.serving.refresher import Refresher
from shipyard.serving.registry_routes import registry_router
from shipyard.serving.rest import PREDICT_OPENAPI, error_response, make_predict_route, request_id_for
from shipyard.serving.rollout_routes import rollout_router
from shipyard.serving.shadow import ShadowProcess
from shipyard.serving.trace_routes import trace_router
from shipyard.serving.v2 import v2_router
from shipyard.serving.validation_routes import validation_router
from shipyard.workspace import Workspace

if TYPE_CHECKING:
    from shipyard.serving.oidc import OidcVerifier

log = logging.getLogger("shipyard.serving")

CORS_HEADERS = [
    "Authorization",
    "Content-Type",
    "X-API-Key",
    "X-Request-ID",
    "X-Routing-Key",
    "X-Shipyard-Client",
    "Inference-Header-Content-Length",
]
"""Request headers an allowed origin's page may send (SHIPYARD_CORS_ORIGINS)."""

BIND_HOST_ENV = "SHIPYARD_INTERNAL_BIND_HOST"
"""How ``serve`` tells its uvicorn workers the address it bound (they are spawned, not forked with arguments)."""


def create_app(
    settings: Settings,
    *,
    workspace: Workspace | None = None,
    on_ready: Callable[[], None] | None = None,
    bind_host: str = "127.0.0.1",
    rate_limit_file: str | None = None,
) -> FastAPI:
    """A server over ``settings``' store: every endpoint loaded, kept in step with the store.

    ``bind_host`` decides who a caller is while auth is off: the local user on loopback, else anonymous
    (only a server started with ``--insecure`` gets that far without auth). ``rate_limit_file``: the buckets
    the workers of one ``serve --workers N`` share (one process keeps its own).
    """
    owns_workspace = workspace is None
    workspace = workspace or Workspace(settings)
    metrics = ServingMetrics()
    shadow = ShadowProcess(settings.model_dump_json())
    recorder = _recorder(settings, workspace, metrics) if settings.monitoring else None
    plane = DataPlane(metrics, max_rows=settings.max_request_rows, shadow=shadow, recorder=recorder)
    refresher = Refresher(workspace.endpoints, ModelCache(workspace.registry, metrics), plane, workspace.rollouts)
    controller = Controller(
        workspace.rollouts,
        plane.book.worker,
        join_feedback=lambda endpoint, since: workspace.feedback.fill_from_log(endpoint, since=since),
        webhooks=webhook_delivery(workspace.rollouts, settings.webhook_urls),
        channels=ChannelDelivery(workspace.db, clock=workspace.rollouts.clock),
        alerts=workspace.alerts,
    )
    job_worker = JobWorker(workspace.jobs, settings, loop=workspace.loop)
    series = MonitoringSeries(workspace, refresh_s=refresh_interval_s(settings.poll_interval_s))
    if settings.monitoring:
        metrics.add_collector(series)

    sso = _sso_verifier(settings)
    authenticator = Authenticator(
        required=settings.auth == "required",
        loopback=is_loopback(bind_host),
        metrics_public=settings.metrics_public,
        token_verifier=sso,
    )

    def first_sync_done() -> None:
        settle_memory()
        if on_ready is not None:
            on_ready()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Keys are loaded before the first request is let in: a server never serves open while keys exist.
        authenticator.load(await asyncio.to_thread(workspace.keys.ring))
        await asyncio.to_thread(_record_settings, workspace, settings, bind_host)
        if sso is not None:  # the issuer's keys too (an issuer that cannot be reached is retried in the background)
            await sso.refresh()
        await asyncio.to_thread(controller.start)
        tasks = [
            asyncio.create_task(_refresh_keys(authenticator, workspace, settings.poll_interval_s)),
            asyncio.create_task(refresher.run(settings.poll_interval_s, first_sync_done)),
            asyncio.create_task(plane.run_shadows()),
            asyncio.create_task(controller.run(settings.poll_interval_s)),
            asyncio.create_task(run_while_leading(job_worker, lambda: controller.leading, settings.poll_interval_s)),
            asyncio.create_task(_sample_process(metrics, settings.poll_interval_s)),
        ]
        if sso is not None:
            tasks.append(asyncio.create_task(sso.run()))
        if settings.monitoring:  # the monitoring series in /metrics, from the stored windows
            tasks.append(asyncio.create_task(series.run()))
        if recorder is not None:
            recorder.start()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.to_thread(job_worker.close)  # running trainers stop; their jobs fail, saying why
            await asyncio.to_thread(controller.close)  # webhooks stop; the lease goes to another server now
            await asyncio.to_thread(shadow.close)
            if recorder is not None:  # a clean shutdown writes every logged prediction and window
                await asyncio.to_thread(recorder.close)
            if owns_workspace:  # connections close
                await asyncio.to_thread(workspace.close)
            metrics.close()  # this worker's per-process series go with it

    app = FastAPI(
        title="Shipyard",
        version="0.1.0",
        description="Model registry, serving and monitoring. Predict with `POST /v1/endpoints/{endpoint}/predict`.",
        lifespan=lifespan,
    )
    app.state.dataplane = plane
    app.state.workspace = workspace
    app.state.refresher = refresher
    app.state.controller = controller
    app.state.authenticator = authenticator
    # Added innermost first. Outside in: CORS answers preflights (they carry no credentials), then auth, then the
    # cross-site guard, so a caller without credentials hears 401 before it hears about content types.
    app.add_middleware(CrossSiteGuard)
    limited = metrics.rate_limited
    limiter = RateLimiter.from_settings(
        settings,
        shared_file=rate_limit_file,
        on_limited=lambda endpoint, reason: limited.labels(endpoint, reason).inc(),
    )
    app.add_middleware(AuthMiddleware, authenticator=authenticator, limiter=limiter)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=CORS_HEADERS,
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )

    app.add_api_route(
        "/v1/endpoints/{endpoint}/predict",
        make_predict_route(plane, settings.max_request_bytes),
        methods=["POST"],
        tags=["predict"],
        summary="Predict with an endpoint's model",
        openapi_extra=PREDICT_OPENAPI,
        response_class=Response,
    )

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "Models still loading or failed"}})
    async def readyz() -> Response:
        ready, body = plane.readiness()
        return Response(orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json")

    @app.get("/metrics", tags=["health"], response_class=Response)
    async def prometheus_metrics() -> Response:
        content, media_type = metrics.render()
        return Response(content, media_type=media_type)

    app.include_router(admin_router(workspace))
    app.include_router(registry_router(workspace, max_upload_bytes=settings.max_upload_bytes))
    app.include_router(keys_router(workspace))
    app.include_router(channels_router(workspace))
    app.include_router(rollout_router(workspace))
    app.include_router(jobs_router(workspace))
    app.include_router(alerts_router(workspace))
    app.include_router(v2_router(plane, max_bytes=settings.max_request_bytes))
    app.include_router(monitoring_router(workspace, recorder, max_bytes=settings.max_request_bytes))
    app.include_router(trace_router(workspace, recorder))
    app.include_router(validation_router(workspace))
    _install_error_handlers(app)
    return app


SERVER_ACTOR = Principal("server", "system", frozenset({Role.ADMIN}))


def _record_settings(workspace: Workspace, settings: Settings, bind_host: str) -> None:
    """A server that starts with changed behaviour settings says so in the audit trail (who: the server)."""
    workspace.audit.record_settings(settings.behaviour(), actor=Actor(SERVER_ACTOR, bind_host))


async def _refresh_keys(authenticator: Authenticator, workspace: Workspace, interval_s: float) -> None:
    """Keep the key ring current, so a revoked key stops working on every worker within the interval."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            authenticator.load(await asyncio.to_thread(workspace.keys.ring))
        except ShipyardError as exc:  # the store is away: keep the last ring, say so once per poll
            log.warning("could not refresh API keys, keeping the last ones: %s", exc)


def _sso_verifier(settings: Settings) -> OidcVerifier | None:
    """SSO tokens when an issuer is configured; only then are PyJWT and cryptography imported."""
    if settings.oidc_issuer is None:
        return None
    from shipyard.serving.oidc import OidcConfig, OidcVerifier

    config = OidcConfig.from_settings(settings)
    return OidcVerifier(config) if config is not None else None


async def _sample_process(metrics: ServingMetrics, interval_s: float) -> None:
    """Keep this worker's CPU, memory and file figures current: a scrape reaches one worker, not all."""
    while True:
        metrics.sample_process()
        await asyncio.sleep(interval_s)


def _recorder(settings: Settings, workspace: Workspace, metrics: ServingMetrics) -> Recorder:
    config = RecorderConfig(
        sample_rate=settings.log_sample_rate,
        capacity=settings.log_buffer_rows,
        flush_s=settings.log_flush_s,
        window_s=settings.monitor_window_s,
        profile_flush_s=settings.monitor_flush_s,
    )
    dropped = metrics.monitoring_dropped
    return Recorder(
        config,
        log_store=workspace.prediction_log,
        sink=workspace.monitoring.store_windows,
        on_drop=lambda endpoint, n: dropped.labels(endpoint).inc(n),
    )


def settle_memory() -> None:
    """After start-up: freeze what imports and model loading built, and hand freed memory back.

    Start-up leaves millions of long-lived objects (scikit-learn, pandas, SciPy). Left in the collector's
    generations, every full collection walks them all and stalls the event loop for tens of milliseconds
    under load; frozen, collections only see objects made by requests. Memory freed during start-up is
    returned to the OS so the resident size reflects what serving needs. The collector is switched back on
    here: ``start_up_without_collections`` kept it off while imports and model loading built those objects.
    """
    gc.collect()
    gc.freeze()
    gc.enable()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _install_error_handlers(app: FastAPI) -> None:
    """Every error, from any route, in the one body format: {"error": {code, message, request_id}}."""

    def rid(request: Request) -> str:
        return request_id_for(request.headers.get("x-request-id"))

    @app.exception_handler(ShipyardError)
    async def shipyard_error(request: Request, exc: ShipyardError) -> Response:
        return error_response(exc, rid(request))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()
        )
        request_id = rid(request)
        body = {"error": {"code": "invalid_request", "message": problems, "request_id": request_id}}
        return Response(
            orjson.dumps(body), status_code=422, media_type="application/json", headers={"X-Request-ID": request_id}
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        request_id = rid(request)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body: dict[str, Any] = {"error": {"code": code, "message": str(exc.detail), "request_id": request_id}}
        if request.url.path.startswith("/v2/"):
            body = {"error": str(exc.detail)}  # the Open Inference Protocol's error shape
        return Response(
            orjson.dumps(body),
            status_code=exc.status_code,
            media_type="application/json",
            headers={"X-Request-ID": request_id, **(exc.headers or {})},
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        request_id = rid(request)
        log.error("request %s failed", request_id, exc_info=exc)
        return error_response(exc, request_id)


def start_up_without_collections() -> None:
    """No cyclic garbage collection until the first sync is done (``settle_memory`` turns it back on).

    Imports and model loading create millions of objects that all live as long as the server; the
    collector would walk them again and again while they are made, about a second of a server's cold start.
    """
    gc.disable()


def app_from_environment() -> FastAPI:
    """Factory for uvicorn workers: each worker reads the same settings and wires its own app."""
    start_up_without_collections()
    return create_app(
        Settings.load(),
        bind_host=os.environ.get(BIND_HOST_ENV, "127.0.0.1"),
        rate_limit_file=os.environ.get(RATE_LIMIT_FILE_ENV),
    )
