"""Bounds on a request's line and headers, enforced while they arrive: past them, 431 and the connection closed.

uvicorn's httptools protocol has no such bound, and httptools holds a header's name and value until its line
ends (growing the buffer by copying as chunks arrive), so one 16 MB header, or 20,000 small ones, used to be
read whole and kept before any route could refuse it. This protocol counts the bytes given to the parser
while a request's head is open and feeds it no more than the byte limit allows; it counts headers as they
complete and keeps none past the count limit. Either way the caller gets 431 with the one error body, then
the connection is closed without reading the rest.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from dataclasses import dataclass
from typing import Any, cast

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from shipyard.errors import HeadersTooLargeError
from shipyard.serving.errors import error_body

log = logging.getLogger("shipyard.serving")

# After the 431 the write side is shut and reading paused; closing at once, with the caller's bytes unread,
# would make the kernel send a reset that can overtake the answer. Go's net/http waits the same half second.
LINGER_S = 0.5


@dataclass(frozen=True, slots=True)
class HeaderLimits:
    """The most a request's line and headers may take: bytes in all, and how many header fields."""

    max_bytes: int = 64 * 1024
    max_count: int = 100


class HeaderLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header limits; one instance per connection."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: HeaderLimits = HeaderLimits(),  # frozen, so one shared default is safe
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self._in_head = True  # the next bytes belong to a request line or headers
        self._head_bytes = 0
        self._header_count = 0
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # answered and closing: nothing more is parsed
        if self._in_head:
            room = self.limits.max_bytes - self._head_bytes
            if len(data) > room:
                # Parse only what the limit leaves room for; a head still open after it is too large.
                super().data_received(data[:room])
                if self._refused:
                    return
                if self._in_head:
                    self._refuse(
                        f"the request line and headers are over the limit of {self.limits.max_bytes} bytes; "
                        "send large values in the body"
                    )
                    return
                data = data[room:]  # the head ended in time: the rest is its body (or the next request)
            else:
                self._head_bytes += len(data)
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._header_count = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count <= self.limits.max_count and not self._refused:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        if self._refused:
            return
        if self._header_count > self.limits.max_count:
            self._refuse(
                f"the request has {self._header_count} header fields, over the limit of {self.limits.max_count}"
            )
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._in_head = True

    def _refuse(self, message: str) -> None:
        """Answer 431 with the one error body, shut the write side, read nothing more, close soon after."""
        self._refused = True
        request_id = os.urandom(16).hex()
        log.info("refused a request from %s with 431 (request id %s): %s", self.client, request_id, message)
        status, body = error_body(HeadersTooLargeError(message), request_id)
        content = orjson.dumps(body)
        head = (
            f"HTTP/1.1 {status} Request Header Fields Too Large\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(content)}\r\n"
            f"x-request-id: {request_id}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode("ascii") + content)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.pause_reading()
        self.loop.call_later(LINGER_S, self.transport.close)


def limited_http(limits: HeaderLimits) -> type[asyncio.Protocol]:
    """What to pass as uvicorn's ``http=``: the protocol with these limits, picklable for spawned workers.

    uvicorn only ever calls ``http`` to make a protocol per connection, so a partial of the class serves.
    """
    return cast("type[asyncio.Protocol]", functools.partial(HeaderLimitedProtocol, limits=limits))
