"""``shipyard channels``: where alert notifications go (webhook, Slack, email, Alertmanager).

Works on the local store (the server's): a channel names environment variables that hold its secrets, and
those are checked on the machine that declares it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shipyard.cli.context import console, print_json, state

app = typer.Typer(
    help=(
        "Notification channels: where alert events are delivered.\n\n"
        "Example: shipyard channels add ops --kind slack --url https://hooks.slack.com/services/T/B/X"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The channel's name, e.g. ops-slack.")],
    kind: Annotated[str, typer.Option("--kind", help="webhook, slack, email or alertmanager.")],
    url: Annotated[str | None, typer.Option("--url", help="Where to POST (webhook, slack, alertmanager).")] = None,
    secret_env: Annotated[
        str | None, typer.Option("--secret-env", help="Env var holding the HMAC key (webhook); never stored.")
    ] = None,
    smtp_host: Annotated[str | None, typer.Option("--smtp-host", help="SMTP server (email).")] = None,
    smtp_port: Annotated[int | None, typer.Option("--smtp-port", help="SMTP port (email; default 25).")] = None,
    to: Annotated[list[str] | None, typer.Option("--to", help="Recipient (email; repeat for more).")] = None,
    sender: Annotated[str | None, typer.Option("--from", help="Sender (email; default shipyard@localhost).")] = None,
    starttls: Annotated[bool, typer.Option("--starttls", help="Upgrade the SMTP connection with STARTTLS.")] = False,
    user_env: Annotated[str | None, typer.Option("--user-env", help="Env var holding the SMTP user.")] = None,
    password_env: Annotated[str | None, typer.Option("--password-env", help="Env var holding the password.")] = None,
    hold: Annotated[
        str | None, typer.Option("--hold", help="Alertmanager: how long a firing alert stays active (default 24h).")
    ] = None,
    severity: Annotated[
        list[str] | None, typer.Option("--severity", help="Only alerts of this severity (repeat).")
    ] = None,
    endpoint: Annotated[
        list[str] | None, typer.Option("--endpoint", help="Only alerts on this endpoint (repeat).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Declare a channel; alert events from now on are delivered to it by the server holding the lease.

    Example: shipyard channels add pager --kind webhook --url https://example.com/hook --secret-env HOOK_KEY
    """
    options: dict[str, Any] = {
        "url": url,
        "secret_env": secret_env,
        "smtp_host": smtp_host,
        "smtp_port": smtp_port,
        "to": to,
        "from": sender,
        "starttls": starttls,
        "user_env": user_env,
        "password_env": password_env,
    }
    if hold is not None:
        from shipyard.rollouts.spec import parse_duration

        options["hold_s"] = parse_duration(hold, option="--hold")
    channel = state.workspace.channels.add(
        name, kind, options, severities=severity or (), endpoints=endpoint or (), actor=state.actor
    )
    if json_out:
        print_json(channel.to_dict())
        return
    console.print(f"channel {channel.name} ({channel.kind}) added: {channel.target()}")


@app.command("list")
def list_channels(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every channel, where it sends, its filters and how its delivery stands.

    Example: shipyard channels list
    """
    from rich.table import Table

    found = state.workspace.channels.list()
    if json_out:
        print_json([s.to_dict() for s in found])
        return
    if not found:
        console.print("no channels: shipyard channels add NAME --kind webhook|slack|email|alertmanager ...")
        return
    table = Table("name", "kind", "target", "filters", "delivered", "failed", "last error")
    for s in found:
        c = s.channel
        filters = ", ".join([*c.severities, *(f"endpoint {e}" for e in c.endpoints)]) or "all alerts"
        table.add_row(c.name, c.kind, c.target(), filters, str(s.delivered), str(s.failed), s.last_error or "")
    console.print(table)


@app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The channel's name.")]) -> None:
    """Stop delivering to a channel.

    Example: shipyard channels remove ops-slack
    """
    channel = state.workspace.channels.remove(name, actor=state.actor)
    console.print(f"channel {channel.name} removed")


@app.command("test")
def test(name: Annotated[str, typer.Argument(help="The channel's name.")]) -> None:
    """Send a sample alert to the channel now and print its answer; exits 1 when it was not accepted.

    Example: shipyard channels test ops-slack
    """
    outcome = state.workspace.channels.test(name)
    if outcome.ok:
        console.print(f"channel {name} accepted the test alert ({outcome.answer})")
        return
    from shipyard.errors import ShipyardError

    raise ShipyardError(f"channel {name} did not accept the test alert: {outcome.problem}")
