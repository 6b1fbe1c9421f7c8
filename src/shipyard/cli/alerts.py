"""``shipyard alerts create|apply|list|show|history|silence|unsilence|ack|test|delete`` on the local store.

Rules are evaluated by the server holding the controller lease; these commands declare and inspect them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli.context import console, print_json, state

app = typer.Typer(
    help="Alert rules over the monitoring report: declare, list, silence, acknowledge, test.\n\n"
    "Example: shipyard alerts create drift --endpoint fraud --metric drift.share --op '>' --threshold 0.3",
    no_args_is_help=True,
    rich_markup_mode=None,
)

RuleArg = Annotated[str, typer.Argument(help="Rule name, as `shipyard alerts list` shows it.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@app.command("create")
def create(
    name: RuleArg,
    endpoint: Annotated[str, typer.Option("--endpoint", help="The endpoint watched.")],
    metric: Annotated[str, typer.Option("--metric", help="A report figure: drift.share, performance.accuracy...")],
    op: Annotated[str, typer.Option("--op", help="One of > >= < <= == !=.")],
    threshold: Annotated[str, typer.Option("--threshold", help="The number the value is compared with.")],
    for_: Annotated[str, typer.Option("--for", help="Consecutive windows (2) or a duration (10m).")] = "1",
    version: Annotated[str, typer.Option("--version", help="'stable' (what it serves now) or a ref.")] = "stable",
    feature: Annotated[str | None, typer.Option("--feature", help="For per-feature metrics.")] = None,
    severity: Annotated[str, typer.Option("--severity", help="info, warning or critical.")] = "warning",
    label: Annotated[list[str] | None, typer.Option("--label", help="name=value, repeatable.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="rollback, pause, pin_previous or retrain when it fires.")
    ] = None,
    confirm: Annotated[bool, typer.Option("--confirm", help="The action waits for `alerts ack`.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Declare (or replace) an alert rule; a bad metric, threshold, window or endpoint is refused now.

    Example: shipyard alerts create drift --endpoint fraud --metric drift.share --op '>' --threshold 0.3 --for 2
    """
    from shipyard.alerts.rules import parse_label

    rule = state.workspace.alerts.create(
        {
            "name": name,
            "endpoint": endpoint,
            "metric": metric,
            "op": op,
            "threshold": threshold,
            "for": for_,
            "version": version,
            "feature": feature,
            "severity": severity,
            "labels": dict(parse_label(text) for text in label or ()),
            "action": action,
            "confirm": confirm,
        },
        actor=state.actor,
    )
    _say(rule.to_dict(), as_json, f"alert {rule.name}: {rule.describe()}")


@app.command("apply")
def apply(
    path: Annotated[Path, typer.Argument(help="A YAML (or TOML) file with the rules under `alerts:`.")],
    as_json: JsonOption = False,
) -> None:
    """Make a file's rules the declared ones; file rules it no longer lists are deleted.

    Example: shipyard alerts apply rules.yaml
    """
    from shipyard.errors import InvalidArgumentError

    if not path.is_file():
        raise InvalidArgumentError(f"alerts file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    document: Any
    if path.suffix == ".toml":
        import tomllib

        document = tomllib.loads(text)
    else:
        import yaml

        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidArgumentError(f"{path} is not valid YAML: {exc}") from None
    applied, deleted = state.workspace.alerts.apply(document, actor=state.actor)
    _say({"applied": applied, "deleted": deleted}, as_json, f"applied {len(applied)} rule(s), deleted {len(deleted)}")


@app.command("list")
def list_rules(
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Only this endpoint's rules.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List rules with their state. Example: shipyard alerts list --endpoint fraud"""
    rows = state.workspace.alerts.rules(endpoint=endpoint)
    out = []
    for stored, states in rows:
        current = next((s for s in states if s.state == "firing"), next(iter(states), None))
        out.append(
            {
                **stored.rule.to_dict(),
                "state": current.state if current else "inactive",
                "value": current.value if current else None,
            }
        )
    if as_json:
        print_json(out)
        return
    if not out:
        console.print("no alert rules; `shipyard alerts create --help` shows how to declare one")
        return
    from rich.table import Table

    table = Table(title="alert rules")
    for column in ("name", "endpoint", "condition", "severity", "action", "state", "value"):
        table.add_column(column)
    for row in out:
        condition = (
            f"{row['metric']}{'[' + row['feature'] + ']' if row['feature'] else ''} {row['op']} {row['threshold']:g}"
        )
        value = "-" if row["value"] is None else f"{row['value']:.4g}"
        table.add_row(
            row["name"], row["endpoint"], condition, row["severity"], row["action"] or "-", row["state"], value
        )
    console.print(table)


@app.command("show")
def show(name: RuleArg, as_json: JsonOption = False) -> None:
    """Show a rule, its series' states and active silences. Example: shipyard alerts show drift"""
    data = state.workspace.alerts.show(name)
    if as_json:
        print_json(data)
        return
    from shipyard.alerts.rules import rule_from_dict

    console.print(f"alert {name}: {rule_from_dict(data['rule']).describe()}", markup=False)
    for s in data["states"]:
        action = f", action {s['action_state']}" if s["action_state"] else ""
        console.print(
            f"  {s['state']} (value {s['value']}, held {s['held']}, since {s['since']}{action})", markup=False
        )
    for silence in data["silences"]:
        console.print(f"  silenced until {silence['ends_at']}: {silence['reason']}", markup=False)


@app.command("history")
def history(
    name: Annotated[str | None, typer.Argument(help="Only this rule's transitions.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Transitions, newest first. Example: shipyard alerts history drift"""
    entries = state.workspace.alerts.history(rule=name, limit=limit)
    if as_json:
        print_json([e.to_dict() for e in entries])
        return
    for e in entries:
        value = "-" if e.value is None else f"{e.value:.4g}"
        console.print(f"{e.at.isoformat()} {e.rule} {e.from_state} -> {e.to_state} value {value}", markup=False)


@app.command("silence")
def silence(
    name: RuleArg,
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 2h.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; the next person on call reads it.")],
) -> None:
    """Withhold a rule's notifications for a while; it keeps being evaluated.

    Example: shipyard alerts silence drift --for 2h --reason 'known upstream change'
    """
    made = state.workspace.alerts.silence(name, duration=duration, reason=reason, actor=state.actor)
    console.print(f"alert {name} silenced until {made.ends_at.isoformat()}", markup=False)


@app.command("unsilence")
def unsilence(name: RuleArg) -> None:
    """End a rule's silences now. Example: shipyard alerts unsilence drift"""
    ended = state.workspace.alerts.unsilence(name, actor=state.actor)
    console.print(f"alert {name}: {ended} silence(s) ended")


@app.command("ack")
def ack(name: RuleArg) -> None:
    """Confirm the action a firing rule waits on (rules created with --confirm). Example: shipyard alerts ack drift"""
    for result in state.workspace.alerts.ack(name, actor=state.actor):
        detail = ", ".join(f"{k}={v}" for k, v in result.detail.items())
        console.print(f"alert {name}: {'done' if result.ok else 'failed'}: {detail}", markup=False)
        if not result.ok:
            raise typer.Exit(1)


@app.command("test")
def test(name: RuleArg, as_json: JsonOption = False) -> None:
    """Evaluate a rule on the newest complete window and say what would happen; changes nothing.

    Example: shipyard alerts test drift
    """
    result = state.workspace.alerts.test(name)
    value = f"no value ({result.reason})" if result.value is None else f"value {result.value:.4g}"
    _say(result.to_dict(), as_json, f"alert {name} on {result.version}: {value}; it would {result.would}")


@app.command("delete")
def delete(name: RuleArg) -> None:
    """Delete a rule and its states (its history stays). Example: shipyard alerts delete drift"""
    state.workspace.alerts.delete(name, actor=state.actor)
    console.print(f"alert {name} deleted")


@app.command("export-prometheus")
def export_prometheus(
    output: Annotated[Path, typer.Option("--output", "-o", help="The rules file to write, e.g. rules.yml.")],
) -> None:
    """Write the alert rules as Prometheus alerting rules over the series /metrics exports.

    Rules with no series to read are written as comments saying why. Check the file with promtool.
    Example: shipyard alerts export-prometheus -o rules.yml && promtool check rules rules.yml
    """
    from shipyard.notify.prometheus import prometheus_rules

    workspace = state.workspace
    rules = [stored.rule for stored, _ in workspace.alerts.rules() if stored.enabled]
    text = prometheus_rules(rules, window_s=workspace.alerts.window_s)
    output.write_text(text)
    skipped = text.count("# skipped ")
    console.print(
        f"{len(rules) - skipped} rule(s) written to {output}"
        + (f"; {skipped} skipped (see the file)" if skipped else ""),
        markup=False,
    )


def _say(data: Any, as_json: bool, text: str) -> None:
    if as_json:
        print_json(data)
    else:
        console.print(text, markup=False)
