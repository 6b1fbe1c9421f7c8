"""Loop repository: the policy in the endpoint's ``loop`` column, and the loop's steps in a job's result.

The column holds ``{"policy": {...}, "pending": {...} | null}``: ``pending`` is the version a ``validate``
loop waits on (its job and ref), so the lease holder that starts the canary after approval, whichever
process it is, knows what to start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shipyard.store.tables import endpoints, jobs


def get(conn: Connection, endpoint: str) -> tuple[bool, dict[str, Any] | None]:
    """(whether the endpoint exists, its loop column)."""
    row = conn.execute(sa.select(endpoints.c.loop).where(endpoints.c.name == endpoint)).first()
    if row is None:
        return False, None
    return True, dict(row.loop) if row.loop else None


def put(conn: Connection, endpoint: str, loop: Mapping[str, Any] | None) -> bool:
    result = conn.execute(
        sa.update(endpoints).where(endpoints.c.name == endpoint).values(loop=dict(loop) if loop is not None else None)
    )
    return bool(result.rowcount)


def pending(conn: Connection) -> list[tuple[str, dict[str, Any]]]:
    """Endpoints whose loop waits on a version's approval: (endpoint, loop column)."""
    rows = conn.execute(sa.select(endpoints.c.name, endpoints.c.loop).where(endpoints.c.loop.is_not(None)))
    return [(r.name, dict(r.loop)) for r in rows if r.loop and r.loop.get("pending")]


def add_steps(conn: Connection, job_id: str, steps: Sequence[Mapping[str, Any]]) -> None:
    """Append the loop's steps to a finished job's result (``result["loop"]``), read by ``jobs show``."""
    row = conn.execute(sa.select(jobs.c.result).where(jobs.c.id == job_id)).first()
    if row is None:
        return
    result = dict(row.result or {})
    result["loop"] = [*(result.get("loop") or []), *(dict(s) for s in steps)]
    conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(result=result))
