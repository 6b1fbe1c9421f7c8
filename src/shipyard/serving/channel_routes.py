"""Notification channels over HTTP: what ``shipyard channels`` does, for admins (testing one: operators).

A channel decides where alert details leave the system, so declaring or removing one is an admin's change,
and every route needs a key not limited to some names. Secrets are named by environment variable and are
checked in this server's environment.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from shipyard.rollouts.spec import parse_duration
from shipyard.serving.auth import actor_of
from shipyard.workspace import Workspace


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=56, examples=["ops-slack"])
    kind: str = Field(max_length=16, examples=["slack"], description="webhook, slack, email or alertmanager")
    url: str | None = Field(None, max_length=2048, description="webhook, slack, alertmanager")
    secret_env: str | None = Field(None, max_length=128, description="webhook: env var holding the HMAC key")
    smtp_host: str | None = Field(None, max_length=253)
    smtp_port: int | None = None
    to: list[str] | None = Field(None, max_length=50)
    sender: str | None = Field(None, alias="from", max_length=320)
    starttls: bool = False
    user_env: str | None = Field(None, max_length=128)
    password_env: str | None = Field(None, max_length=128)
    hold: str | float | None = Field(None, examples=["24h"], description="alertmanager: a firing alert's endsAt")
    severities: list[str] = Field(default_factory=list, max_length=3)
    endpoints: list[str] = Field(default_factory=list, max_length=100)


def channels_router(workspace: Workspace) -> APIRouter:
    """Sync handlers: FastAPI runs them in its thread pool (a test send may wait on the target)."""
    router = APIRouter(prefix="/v1/channels", tags=["channels"])
    channels = workspace.channels

    @router.post("", status_code=201, responses={409: {"description": "A channel of that name exists"}})
    def add_channel(body: ChannelCreate, request: Request) -> dict[str, Any]:
        options: dict[str, Any] = body.model_dump(exclude={"name", "kind", "hold", "severities", "endpoints", "sender"})
        options["from"] = body.sender
        if body.hold is not None:
            options["hold_s"] = parse_duration(body.hold, option="hold")
        channel = channels.add(
            body.name,
            body.kind,
            options,
            severities=body.severities,
            endpoints=body.endpoints,
            actor=actor_of(request),
        )
        return channel.to_dict()

    @router.get("")
    def list_channels() -> dict[str, Any]:
        return {"channels": [s.to_dict() for s in channels.list()]}

    @router.delete("/{channel}", responses={404: {"description": "No such channel"}})
    def remove_channel(channel: str, request: Request) -> dict[str, Any]:
        return channels.remove(channel, actor=actor_of(request)).to_dict()

    @router.post("/{channel}/test", responses={404: {"description": "No such channel"}})
    def test_channel(channel: str) -> dict[str, Any]:
        """Send a sample alert now; ``accepted`` false with ``problem`` when the target refused or is down."""
        outcome = channels.test(channel)
        return {"channel": channel, "accepted": outcome.ok, "answer": outcome.answer, "problem": outcome.problem}

    return router
