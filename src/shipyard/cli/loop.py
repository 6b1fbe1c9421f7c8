"""``shipyard loop set|show|clear``: what follows a retraining job on an endpoint (manual, validate, auto)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli.context import console, print_json, state
from shipyard.errors import InvalidArgumentError

app = typer.Typer(
    help=(
        "The loop policy: what happens after a retraining job registers a version.\n\n"
        "Example: shipyard loop set fraud --policy auto --holdout holdout.parquet --target label"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)

EndpointArg = Annotated[str, typer.Argument(help="Endpoint name, e.g. fraud.")]


def _number(text: str | None, option: str, *, whole: bool = False) -> float | int | None:
    if text is None:
        return None
    try:
        return int(text) if whole else float(text)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise InvalidArgumentError(f"{option} must be {kind}, got {text!r}") from None


@app.command("set")
def set_(
    endpoint: EndpointArg,
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            metavar="POLICY",
            help="manual (stop after registering) | validate (gates, then wait for approval) | auto (gates, canary).",
        ),
    ],
    holdout: Annotated[
        Path | None, typer.Option("--holdout", help="CSV or Parquet with the label column, to validate on.")
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="The holdout's label column.")] = None,
    minimum: Annotated[
        list[str] | None, typer.Option("--min", metavar="FIGURE=X", help="Gate: figure at least X (accuracy=0.9).")
    ] = None,
    maximum: Annotated[
        list[str] | None, typer.Option("--max", metavar="FIGURE=X", help="Gate: figure at most X (p99_ms=20).")
    ] = None,
    max_regression: Annotated[
        str | None,
        typer.Option(
            "--max-regression",
            metavar="X",
            help="Gate: at most this much worse than the stable version, paired (default 0.01 with no other gate).",
        ),
    ] = None,
    steps: Annotated[
        str | None, typer.Option("--steps", metavar="PERCENTS", help="The canary's steps, e.g. 10,50,100.")
    ] = None,
    interval: Annotated[
        str | None, typer.Option("--interval", metavar="DURATION", help="How long each canary step runs, e.g. 5m.")
    ] = None,
    min_requests: Annotated[
        str | None, typer.Option("--min-requests", metavar="N", help="Canary gate: requests before a verdict.")
    ] = None,
    max_error_rate: Annotated[
        str | None, typer.Option("--max-error-rate", metavar="FRACTION", help="Canary gate: highest error rate.")
    ] = None,
) -> None:
    """Set an endpoint's loop policy; the server holding the controller lease applies it after each job.

    Example: shipyard loop set fraud --policy auto --holdout holdout.parquet --target label --min accuracy=0.9
    """
    from shipyard.core.loop import LoopMode, LoopPolicy

    mode = LoopMode.parse(policy)
    if holdout is not None and not holdout.is_file():
        raise InvalidArgumentError(f"--holdout {holdout}: no such file (give a CSV or Parquet file with {target!r})")
    gates = {
        name: value
        for name, value in (
            ("min_requests", _number(min_requests, "--min-requests", whole=True)),
            ("max_error_rate", _number(max_error_rate, "--max-error-rate")),
        )
        if value is not None
    }
    canary: dict[str, Any] = {"steps": steps, "interval_s": interval, "gates": gates or None}
    made = LoopPolicy(
        mode,
        holdout=str(holdout.resolve()) if holdout is not None else None,
        target=target,
        minimum=tuple(minimum or ()),
        maximum=tuple(maximum or ()),
        max_regression=_number(max_regression, "--max-regression"),
        canary={k: v for k, v in canary.items() if v is not None},
    )
    state.workspace.loop.set_policy(endpoint, made, actor=state.actor)
    console.print(f"loop of {endpoint}: {_describe(made.to_dict())}", soft_wrap=True)


@app.command("show")
def show(endpoint: EndpointArg, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show an endpoint's loop policy and the version it waits on, if any.

    Example: shipyard loop show fraud
    """
    policy, pending = state.workspace.loop.policy(endpoint)
    data = {"endpoint": endpoint, "policy": policy.to_dict() if policy else None, "pending": pending}
    if as_json:
        print_json(data)
        return
    if policy is None:
        console.print(f"{endpoint} has no loop policy: a retrained version is registered, nothing more")
        return
    console.print(f"loop of {endpoint}: {_describe(policy.to_dict())}", soft_wrap=True)
    if pending:
        console.print(f"waiting for approval of {pending['version']} (job {pending['job']})", soft_wrap=True)


@app.command("clear")
def clear(endpoint: EndpointArg) -> None:
    """Remove an endpoint's loop policy: retraining jobs register versions and nothing more.

    Example: shipyard loop clear fraud
    """
    state.workspace.loop.set_policy(endpoint, None, actor=state.actor)
    console.print(f"loop of {endpoint} cleared")


def _describe(policy: dict[str, Any]) -> str:
    if policy["mode"] == "manual":
        return "manual (stop after registering)"
    gates = [f"min {g}" for g in policy["minimum"]] + [f"max {g}" for g in policy["maximum"]]
    if policy["max_regression"] is not None:
        gates.append(f"max regression {policy['max_regression']}")
    then = "wait for approval, then canary" if policy["mode"] == "validate" else "canary"
    canary = ", ".join(f"{k}={v}" for k, v in policy["canary"].items()) or "default spec"
    return (
        f"{policy['mode']}: validate on {policy['holdout']} (target {policy['target']}; "
        f"{'; '.join(gates) or 'not worse than stable'}), then {then} ({canary})"
    )
