"""``shipyard gc``: list, then delete, stored files no model version needs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.context import console, print_json, state

if TYPE_CHECKING:
    from shipyard.services.gc import GarbageReport


def gc(
    apply: Annotated[bool, typer.Option("--apply", help="Delete what is listed; without it, only list.")] = False,
    min_age: Annotated[
        str,
        typer.Option(help="Leave anything younger alone (a registration may be writing it), e.g. 30m, 1h, 2d."),
    ] = "1h",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """List artifacts no version refers to and temporary files crashed writes left; --apply deletes them.

    Example: shipyard gc --min-age 1h (then: shipyard gc --apply)
    """
    from shipyard.rollouts.spec import parse_duration
    from shipyard.services.gc import collect_garbage

    min_age_s = parse_duration(min_age, option="--min-age")
    workspace = state.workspace
    now = datetime.now(UTC)
    report = collect_garbage(workspace.db, workspace.artifacts, now=now, min_age_s=min_age_s, apply=apply)
    if as_json:
        print_json(_as_dict(report, now))
        return
    _render(report, now, min_age)


def _as_dict(report: GarbageReport, now: datetime) -> dict[str, object]:
    return {
        "applied": report.applied,
        "removed": report.removed,
        "size_bytes": report.size_bytes,
        "recent_kept": report.recent,
        "items": [
            {
                "key": item.key,
                "kind": "temporary" if item.sha256 is None else "unreferenced",
                "size_bytes": item.size_bytes,
                "age_s": round((now - item.modified_at).total_seconds(), 1),
            }
            for item in report.items
        ],
    }


def _render(report: GarbageReport, now: datetime, min_age: str) -> None:
    for item in report.items:
        kind = "temporary file" if item.sha256 is None else "unreferenced blob"
        age_h = (now - item.modified_at).total_seconds() / 3600
        console.print(f"{kind:<17}  {_size(item.size_bytes):>9}  {age_h:6.1f}h old  {item.key}")
    found = (
        f"{len(report.items)} file(s), {_size(report.size_bytes)}: {len(report.orphans)} unreferenced blob(s), "
        f"{len(report.temporary)} temporary file(s)"
    )
    recent = f"; {report.recent} newer than {min_age} left alone" if report.recent else ""
    if report.applied:
        kept = len(report.items) - report.removed
        again = f" ({kept} stored again meanwhile, kept)" if kept else ""
        console.print(f"removed {report.removed} of {found}{again}{recent}")
    elif report.items:
        console.print(f"would remove {found}{recent}; run `shipyard gc --apply` to delete them")
    else:
        console.print(f"nothing to remove{recent}")


def _size(n: int) -> str:
    scaled, units = float(n), ["B", "KB", "MB", "GB"]
    while scaled >= 1024 and len(units) > 1:
        scaled, units = scaled / 1024, units[1:]
    return f"{n} B" if units[0] == "B" else f"{scaled:.1f} {units[0]}"
