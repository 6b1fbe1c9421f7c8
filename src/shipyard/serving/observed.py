"""The bracket around one request, shared by every protocol route: time it, count it, attribute it.

Each route (REST, the Open Inference Protocol, and the gRPC and explain routes to come) opens one
``Observed`` per request, parses its wire format, calls ``route`` and ``predict``, and builds its own
response; the bracket keeps what the counts need (status, rows, the version that served) and hands them to
the data plane when the block ends, however it ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from shipyard.serving.errors import status_for

if TYPE_CHECKING:
    from shipyard.serving.dataplane import DataPlane, EndpointRoute, PredictOutcome, Routed

log = logging.getLogger("shipyard.serving")


class Observed:
    """One request from arrival to answer: the route looked up once, the timer, the in-flight gauge, the
    status, and the version that served it, counted when the block ends.

    Protocol routes (REST, V2, and the gRPC and explain routes to come) only parse, call ``route`` and
    ``predict`` here, and build their own response; on a fault they call ``fail`` and answer with the status
    it gives. A plain object with slots rather than a generator-based context manager: it is on every request.
    """

    __slots__ = (
        "_gauge",
        "_plane",
        "_route",
        "_start",
        "endpoint",
        "error",
        "label",
        "outcome",
        "request_id",
        "routed",
        "rows",
        "status",
    )

    def __init__(self, plane: DataPlane, endpoint: str, request_id: str) -> None:
        self._start = time.perf_counter()
        self._plane = plane
        self._route = plane.routes.get(endpoint)
        self.endpoint = endpoint
        self.label = endpoint if self._route is not None else "unknown"
        """The endpoint as metrics name it: an endpoint not in the routing table is ``unknown``."""
        self.request_id = request_id
        """Mutable: a protocol may adopt an id it finds in the body (V2's ``id``)."""
        self.status = 200
        self.rows = 0
        self.routed: Routed | None = None
        self.outcome: PredictOutcome | None = None
        self.error: BaseException | None = None
        self._gauge = plane.in_flight(self.label)

    def __enter__(self) -> Observed:
        self._gauge.inc()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        seconds = time.perf_counter() - self._start
        self._gauge.dec()
        if exc is not None and self.error is None:
            # Escaped the route's own handling: a cancelled request (its caller went away), counted as such.
            self.error = exc
            self.status = 499 if isinstance(exc, asyncio.CancelledError) else status_for(exc)
        self._plane.count(self, seconds)

    def route(self) -> EndpointRoute:
        """The endpoint's route, as looked up when the request arrived; 404 or 503 when there is none.

        Called before the body is read, so an unknown endpoint is a 404 whatever the body says.
        """
        found = self._route
        if found is None:
            self._plane.refuse(self.endpoint)
        return found

    def choose(self, *, rows: int, routing_key: str | None) -> Routed:
        """Pick the version and arm that serve this request; without a routing key, the request id is one."""
        self.rows = rows
        self.routed = self._plane.choose(self.route(), rows=rows, routing_key=routing_key or self.request_id)
        return self.routed

    async def predict(self, payload: Any, *, rows: int, routing_key: str | None) -> PredictOutcome:
        """Route, validate and predict; the outcome is kept for the count when the block ends."""
        routed = self.choose(rows=rows, routing_key=routing_key)
        self.outcome = await self._plane.apredict(routed, payload, rows=rows, request_id=self.request_id)
        return self.outcome

    def fail(self, exc: BaseException) -> int:
        """Record why the request failed; returns its status from the one error table, for the response.

        A server fault (5xx other than 503) is logged here with its traceback, under the request id its
        caller was given.
        """
        status = status_for(exc)
        self.error = exc
        self.status = status
        if status >= 500 and status != 503:
            log.error("request %s to endpoint %s failed", self.request_id, self.endpoint, exc_info=exc)
        return status
