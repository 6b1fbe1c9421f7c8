"""``shipyard audit``: read the audit trail (who changed what, from where) and check its hash chain."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.context import console, print_json, state
from shipyard.errors import ShipyardError

app = typer.Typer(
    help=(
        "The audit trail: every change, who made it, from where; hash-chained so edits show.\n\n"
        "Example: shipyard audit list --target fraud --since 7d"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


class AuditTrailBrokenError(ShipyardError):
    """``audit verify`` found an event that was edited, deleted or reordered after it was written."""

    code = "audit_trail_broken"


@app.command("list")
def list_events(
    target: Annotated[
        str | None,
        typer.Option(
            "--target", help="fraud (a model's and an endpoint's events), model:fraud:3, endpoint:fraud, key:ci."
        ),
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="How far back, e.g. 30m, 12h, 7d.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Show the newest this many (up to 10000).")] = 100,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON (before and after included).")] = False,
) -> None:
    """Changes, oldest first: when, who, from where, what, on which target.

    Example: shipyard audit list --target fraud --since 7d
    """
    remote = state.remote
    if remote is not None:
        from shipyard.cli.remote import event_from_dict

        events = [event_from_dict(e) for e in remote.audit(target=target, since=since, limit=limit)]
    else:
        from shipyard.services.audit import since_cutoff

        events = state.workspace.audit.list(target=target, since=since_cutoff(since), limit=limit)
    if json_out:
        print_json([e.to_dict() for e in events])
        return
    if not events:
        console.print(
            "no audit events" + (f" for {target!r}" if target else "") + (f" in the last {since}" if since else "")
        )
        return
    from rich.table import Table

    table = Table("id", "at (UTC)", "actor", "from", "action", "target", box=None, header_style="bold")
    for e in events:
        table.add_row(str(e.id), f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.address or "-", e.action, e.target)
    console.print(table)


@app.command("verify")
def verify() -> None:
    """Check the hash chain: exit 0 when intact, 1 naming the first event edited, deleted or reordered.

    Example: shipyard audit verify
    """
    remote = state.remote
    if remote is not None:
        from shipyard.core.audit import ChainCheck

        answer = remote.verify_audit()
        check = ChainCheck(int(answer["checked"]), answer.get("broken_at"), answer.get("reason") or "")
    else:
        check = state.workspace.audit.verify()
    if not check.intact:
        raise AuditTrailBrokenError(
            f"audit trail broken at event {check.broken_at} ({check.checked} events before it hold): {check.reason}"
        )
    console.print(f"{check.checked} events, chain intact")
