"""``shipyard keys``: API keys for the server. The secret is printed once; only its hash is stored."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.context import console, print_json, state

app = typer.Typer(
    help=(
        "API keys: who may call the server, with which role.\n\n"
        "Example: shipyard keys create --name ci --role operator --endpoint fraud --expires 90d"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="A name for the key, shown in the audit trail, e.g. ci.")],
    role: Annotated[str, typer.Option("--role", help="viewer, predictor, operator or admin.")],
    endpoint: Annotated[
        list[str] | None, typer.Option("--endpoint", help="Limit the key to this endpoint (repeat for more).")
    ] = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="Limit the key to this model (repeat).")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="Lifetime, e.g. 90d, 12h; none: never.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON (with the secret) instead of text.")] = False,
) -> None:
    """Create a key and print its secret once: store it now, it cannot be shown again.

    Creating the first key turns auth on for every server on this store within a poll interval.
    Example: shipyard keys create --name ci --role operator --expires 90d
    """
    from datetime import timedelta

    from shipyard.rollouts.spec import parse_duration

    lifetime = timedelta(seconds=parse_duration(expires, option="--expires")) if expires else None
    remote = state.remote
    if remote is not None:
        from shipyard.cli.remote import key_from_dict

        made = remote.create_key(
            name,
            role=role,
            endpoints=endpoint,
            models=model,
            expires_in_s=lifetime.total_seconds() if lifetime is not None else None,
        )
        key, secret = key_from_dict(made), str(made["secret"])
    else:
        key, secret = state.workspace.keys.create(
            name, role=role, endpoints=endpoint, models=model, expires_in=lifetime, actor=state.actor
        )
    if json_out:
        print_json({**key.to_dict(), "secret": secret})
        return
    console.print(f"key {key.name} ({key.role.value}) created; its secret, shown only now:")
    typer.echo(secret)
    console.print("send it as 'Authorization: Bearer <secret>' or set SHIPYARD_API_KEY for the CLI and client")


@app.command("list")
def list_keys(json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """Every key with its role, scope and state; never a secret.

    Example: shipyard keys list
    """
    from datetime import UTC, datetime

    from rich.table import Table

    remote = state.remote
    if remote is not None:
        from shipyard.cli.remote import key_from_dict

        keys = [key_from_dict(k) for k in remote.list_keys()]
    else:
        keys = state.workspace.keys.list()
    if json_out:
        print_json([k.to_dict() for k in keys])
        return
    now = datetime.now(UTC)
    table = Table("name", "role", "scope", "created", "expires", "state")
    for k in keys:
        scope = ", ".join(
            [f"endpoint {e}" for e in sorted(k.endpoints or ())] + [f"model {m}" for m in sorted(k.models or ())]
        )
        status = "revoked" if k.revoked_at else ("expired" if not k.usable_at(now) else "active")
        table.add_row(
            k.name,
            k.role.value,
            scope or "all",
            f"{k.created_at:%Y-%m-%d} by {k.created_by}",
            f"{k.expires_at:%Y-%m-%d %H:%M}" if k.expires_at else "never",
            status,
        )
    console.print(table if keys else "no keys: auth is off for a server on loopback (shipyard keys create ...)")


@app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key: every server refuses it within a poll interval (SHIPYARD_POLL_INTERVAL_S).

    Example: shipyard keys revoke ci
    """
    remote = state.remote
    if remote is not None:
        from shipyard.cli.remote import key_from_dict

        key = key_from_dict(remote.revoke_key(name))
    else:
        key = state.workspace.keys.revoke(name, actor=state.actor)
    console.print(f"key {key.name} revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
