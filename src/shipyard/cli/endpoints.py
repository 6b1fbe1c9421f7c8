"""``shipyard endpoints``: named serving addresses and the model version each one serves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli.context import console, print_json, state

if TYPE_CHECKING:
    from shipyard.core.endpoints import Endpoint

app = typer.Typer(
    help="Endpoints: named serving addresses.\n\nExample: shipyard endpoints create fraud --model fraud@champion",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _row(e: Endpoint, serves: str | None) -> dict[str, Any]:
    """One endpoint as `list --json` and `show --json` print it; ``version`` is what its ref names now."""
    return {
        "name": e.name,
        "model": e.model,
        "version": serves,
        "strict": e.strict,
        "require_approval": e.require_approval,
        "require_validation": e.require_validation,
        "created_at": e.created_at.isoformat() if e.created_at else None,
        "updated_at": e.updated_at.isoformat() if e.updated_at else None,
    }


def _remote_row(data: dict[str, Any]) -> dict[str, Any]:
    """An endpoint as the server sent it, in the order and with the keys ``_row`` prints."""
    keys = ("name", "model", "version", "strict", "require_approval", "require_validation", "created_at", "updated_at")
    return {key: data.get(key) for key in keys}


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Endpoint name, e.g. fraud.")],
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="fraud:3 (pinned), fraud@champion (follows the alias) or fraud (latest, pinned now)."
        ),
    ],
    strict: Annotated[
        bool, typer.Option("--strict", help="Reject requests with features the model does not take.")
    ] = False,
    require_approval: Annotated[
        bool,
        typer.Option(
            "--require-approval", help="Serve, follow and roll out to approved versions only (`models approve`)."
        ),
    ] = False,
    require_validation: Annotated[
        bool,
        typer.Option(
            "--require-validation",
            help="Serve, roll out to and approve only versions with a passing `shipyard validate` run.",
        ),
    ] = False,
) -> None:
    """Create an endpoint serving a model version; running servers pick it up within seconds.

    Example: shipyard endpoints create fraud --model fraud@champion --require-approval
    """
    remote = state.remote
    if remote is not None:
        made = remote.create_endpoint(
            name, model=model, strict=strict, require_approval=require_approval, require_validation=require_validation
        )
        console.print(f"endpoint {made['name']} -> {made['model']} (now {made['version']})")
        return
    resolved = state.workspace.endpoints.create(
        name,
        model=model,
        strict=strict,
        require_approval=require_approval,
        require_validation=require_validation,
        actor=state.actor,
    )
    console.print(f"endpoint {resolved.endpoint.name} -> {resolved.endpoint.model} (now {resolved.version.ref})")


@app.command("set")
def set_model(
    name: Annotated[str, typer.Argument(help="Endpoint name.")],
    model: Annotated[str, typer.Option("--model", "-m", help="The version or alias to serve instead.")],
    strict: Annotated[bool | None, typer.Option("--strict/--lenient", help="Change strictness too.")] = None,
    require_approval: Annotated[
        bool | None,
        typer.Option("--require-approval/--allow-unapproved", help="Change the approval rule too."),
    ] = None,
    require_validation: Annotated[
        bool | None,
        typer.Option("--require-validation/--allow-unvalidated", help="Change the validation rule too."),
    ] = None,
) -> None:
    """Point an endpoint at another version; servers load and warm it before moving traffic.

    Example: shipyard endpoints set fraud --model fraud:4
    """
    remote = state.remote
    if remote is not None:
        moved = remote.update_endpoint(
            name, model=model, strict=strict, require_approval=require_approval, require_validation=require_validation
        )
        console.print(f"endpoint {moved['name']} -> {moved['model']} (now {moved['version']})")
        return
    resolved = state.workspace.endpoints.set_model(
        name,
        model=model,
        strict=strict,
        require_approval=require_approval,
        require_validation=require_validation,
        actor=state.actor,
    )
    console.print(f"endpoint {resolved.endpoint.name} -> {resolved.endpoint.model} (now {resolved.version.ref})")


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List endpoints and the version each serves.

    Example: shipyard endpoints list --json
    """
    from rich.table import Table

    remote = state.remote
    if remote is not None:
        rows = [_remote_row(e) for e in remote.endpoints()]
    else:
        from shipyard.cli.catalog import Catalog

        catalog = Catalog.open()
        try:
            rows = [_row(listed.endpoint, listed.serves) for listed in catalog.endpoints()]
        finally:
            catalog.close()
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no endpoints yet; `shipyard endpoints create --help` shows how")
        return
    table = Table(title="endpoints")
    for column in ("name", "model", "serves", "strict", "updated"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["name"], r["model"], r["version"] or "-", "yes" if r["strict"] else "no", r["updated_at"] or "-"
        )
    console.print(table)


@app.command("show")
def show(name: Annotated[str, typer.Argument(help="Endpoint name.")], as_json: JsonOption = False) -> None:
    """Show one endpoint.

    Example: shipyard endpoints show fraud
    """
    remote = state.remote
    if remote is not None:
        row = _remote_row(remote.endpoint(name))
    else:
        service = state.workspace.endpoints
        resolved = service.resolve(service.get(name))
        row = _row(resolved.endpoint, resolved.version.ref)
    if as_json:
        print_json(row)
        return
    for key, value in row.items():
        console.print(f"[bold]{key:>10}[/]  {value}")


@app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="Endpoint name.")]) -> None:
    """Delete an endpoint; servers stop serving it within seconds.

    Example: shipyard endpoints delete fraud
    """
    remote = state.remote
    if remote is not None:
        remote.delete_endpoint(name)
    else:
        state.workspace.endpoints.delete(name, actor=state.actor)
    console.print(f"deleted endpoint {name}")
