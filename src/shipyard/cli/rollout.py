"""``shipyard rollout``: start, watch and steer the move of an endpoint's traffic to a new version."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.table import Table

from shipyard.cli.context import console, print_json, state
from shipyard.errors import InvalidArgumentError
from shipyard.rollouts.machine import RolloutState
from shipyard.rollouts.spec import parse_percent, percent


def _close_workspace() -> None:
    """Close the store's connections when a command ends (its events are already in the webhook outbox,
    committed with the change; the server holding the controller lease delivers them)."""
    workspace = state.opened
    if workspace is not None:
        workspace.close()


app = typer.Typer(
    help="Rollouts: move an endpoint's traffic to a new version (replace, blue-green, canary, A/B, shadow).\n\n"
    "Example: shipyard rollout start fraud --to fraud:4 --strategy canary --steps 5,25,50,100 --interval 5m",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.callback()
def _group(ctx: typer.Context) -> None:
    """Runs before every rollout command; registers the clean-up that closes the store."""
    ctx.call_on_close(_close_workspace)


EndpointArg = Annotated[str, typer.Argument(help="Endpoint name, e.g. fraud.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _number(text: str | None, option: str, *, whole: bool = False) -> float | int | None:
    """Options are read here rather than by Click, so a bad value is one readable line, not a usage box."""
    if text is None:
        return None
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise InvalidArgumentError(f"{option} must be {kind}, got {text!r}") from None
    if not math.isfinite(value):
        raise InvalidArgumentError(f"{option} must be a finite number, got {text!r}")
    return value


def _split(text: str | None) -> float | None:
    """``--split 50`` is the candidate's share in percent; the HTTP API and the core take the fraction."""
    if text is None:
        return None
    fraction = parse_percent(text, option="--split")
    if not 0.0 < fraction < 1.0:
        raise InvalidArgumentError(f"--split must be a percentage between 0 and 100 (exclusive), got {text!r}")
    return fraction


def _sample(text: str | None) -> float | None:
    """``--sample 0.2`` is a fraction; ``20%`` is read as the same thing."""
    if text is None:
        return None
    if text.strip().endswith("%"):
        return parse_percent(text, option="--sample")
    return float(_number(text, "--sample") or 0.0)


@app.command("start")
def start(
    endpoint: EndpointArg,
    to: Annotated[str, typer.Option("--to", metavar="REF", help="The candidate: fraud:4 or fraud@challenger.")],
    strategy: Annotated[
        str, typer.Option("--strategy", metavar="STRATEGY", help="replace | blue-green | canary | ab | shadow.")
    ],
    steps: Annotated[
        str | None, typer.Option(metavar="PERCENTS", help="canary: percentages, increasing to 100, e.g. 5,25,50,100.")
    ] = None,
    interval: Annotated[
        str | None, typer.Option(metavar="DURATION", help="canary: how long each step runs, e.g. 5m.")
    ] = None,
    bake: Annotated[
        str | None,
        typer.Option(metavar="DURATION", help="blue-green: how long the old version stays loaded, e.g. 10m."),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(metavar="PERCENT", help="ab: percentage of routing keys sent to the candidate, e.g. 50."),
    ] = None,
    sample: Annotated[
        str | None,
        typer.Option(metavar="FRACTION", help="shadow: fraction of requests also sent to the candidate, e.g. 0.2."),
    ] = None,
    max_error_rate: Annotated[
        str | None,
        typer.Option(metavar="FRACTION", help="gate: the candidate's highest error rate, a fraction (0.05)."),
    ] = None,
    max_error_ratio: Annotated[
        str | None, typer.Option(metavar="RATIO", help="gate: candidate error rate at most this times stable's (2).")
    ] = None,
    max_latency_ratio: Annotated[
        str | None, typer.Option(metavar="RATIO", help="gate: candidate p99 latency at most this times stable's (1.5).")
    ] = None,
    max_prediction_shift: Annotated[
        str | None,
        typer.Option(metavar="PSI", help="gate: highest PSI between candidate and stable predictions (0.2)."),
    ] = None,
    min_requests: Annotated[
        str | None, typer.Option(metavar="N", help="gate: candidate requests needed before any verdict (100).")
    ] = None,
    alpha: Annotated[
        str | None, typer.Option(metavar="LEVEL", help="ab: significance level of the sequential test (0.05).")
    ] = None,
    auto_promote: Annotated[
        bool, typer.Option("--auto-promote", help="ab: promote a significant winner automatically.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Start a rollout; the candidate is loaded and smoke-tested first, and the stable version is untouched if it fails.

    Only the options you give are passed on; one that the strategy does not use is refused.

    Example: shipyard rollout start fraud --to fraud:4 --strategy canary --steps 5,25,50,100 --interval 5m
    """
    gates = {
        name: value
        for name, value in (
            ("max_error_rate", _number(max_error_rate, "--max-error-rate")),
            ("max_error_rate_ratio", _number(max_error_ratio, "--max-error-ratio")),
            ("max_latency_ratio", _number(max_latency_ratio, "--max-latency-ratio")),
            ("max_prediction_shift", _number(max_prediction_shift, "--max-prediction-shift")),
            ("min_requests", _number(min_requests, "--min-requests", whole=True)),
        )
        if value is not None
    }
    options: dict[str, Any] = {
        "steps": steps,
        "interval_s": interval,
        "bake_s": bake,
        "split": _split(split),
        "sample": _sample(sample),
        "alpha": _number(alpha, "--alpha"),
        "auto_promote": True if auto_promote else None,
        "gates": gates or None,
    }
    given = {k: v for k, v in options.items() if v is not None}
    remote = state.remote
    if remote is not None:
        started = RolloutState.from_dict(remote.start_rollout(endpoint, to=to, strategy=strategy, **given))
    else:
        started = state.workspace.rollouts.start(endpoint, to=to, strategy=strategy, actor=state.actor, **given)
    if as_json:
        print_json(started.to_dict())
        return
    console.print(
        f"rollout {started.id} on {endpoint}: {started.spec.strategy.value} {started.stable} -> {started.candidate}",
        soft_wrap=True,
    )
    for event in started.events:
        console.print(f"  {event.kind.value}: {event.message}", soft_wrap=True)
    console.print(f"watch it with: shipyard rollout status {endpoint}")


@app.command("status")
def status(endpoint: EndpointArg, as_json: JsonOption = False) -> None:
    """Show the endpoint's rollout: where it is, the evidence behind each decision, and what happens next.

    Example: shipyard rollout status fraud
    """
    remote = state.remote
    view = remote.rollout(endpoint) if remote is not None else state.workspace.rollouts.status(endpoint).to_dict()
    if remote is None:  # a canary the loop policy started names the retraining job behind it
        view["loop"] = state.workspace.loop.for_rollout(endpoint, view["id"])
    if as_json:
        print_json(view)
        return
    _print_status(view)
    loop = view.get("loop")
    if loop:
        cause = ", ".join(f"{k}={v}" for k, v in loop["cause"].items())
        console.print(f"[bold]opened by[/] the loop policy after job {loop['job']} ({cause})", soft_wrap=True)
        for step in loop["steps"]:
            console.print(f"  {step['kind']}: {step['message']}", soft_wrap=True, markup=False)


def _print_status(view: Mapping[str, Any]) -> None:
    spec = view["spec"]
    steps = spec["steps"]
    console.print(f"[bold]rollout[/] {view['id']}  {spec['strategy']} on {view['endpoint']}")
    console.print(f"[bold]versions[/] {view['stable']} (stable) -> {spec['candidate']} (candidate)")
    console.print(f"[bold]status[/] {view['status']}  weight {percent(view['weight'])} to the candidate")
    if spec["strategy"] == "canary":
        console.print(
            f"[bold]step[/] {view['step_index'] + 1} of {len(steps)} ({', '.join(percent(s) for s in steps)})"
        )
    elif spec["strategy"] == "shadow":
        console.print(f"[bold]sample[/] {percent(spec['sample'])} of requests shadowed")
    console.print(_evidence_table(view.get("evidence") or {}))
    analysis = _latest_analysis(view.get("events") or [])
    if analysis is not None:
        console.print(_analysis_table(analysis))
    if view.get("shadow_report"):
        console.print(_shadow_table(view["shadow_report"]))
    console.print(_history_table(view.get("events") or []))
    console.print(f"[bold]next:[/] {view['next_action']}", soft_wrap=True)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _evidence_table(evidence: Mapping[str, Mapping[str, Any]]) -> Table:
    table = Table(title="this step's evidence", title_justify="left")
    for column in ("arm", "requests", "errors", "error rate", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    if not evidence:
        table.caption = "no requests recorded in this step yet"
    for arm, figures in sorted(evidence.items()):
        rate = figures.get("error_rate")
        table.add_row(
            arm,
            str(figures.get("requests", 0)),
            str(figures.get("errors", 0)),
            "-" if rate is None or not figures.get("requests") else f"{rate:.2%}",
            _fmt(figures.get("latency_p50_ms")),
            _fmt(figures.get("latency_p99_ms")),
        )
    return table


def _latest_analysis(events: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest event whose evidence came from an analysis (gate results or an A/B test)."""
    for event in reversed(events):
        evidence = event.get("evidence") or {}
        if "gates" in evidence or "p_value" in evidence:
            return event
    return None


def _analysis_table(event: Mapping[str, Any]) -> Table:
    evidence = event["evidence"]
    title = f"latest analysis ({event['kind']} at {event['at']}): {evidence.get('message', '')}"
    table = Table(title=title, title_justify="left")
    if "gates" in evidence:
        for column in ("gate", "value", "limit", "result", "detail"):
            table.add_column(column)
        for gate in evidence["gates"]:
            result = "pass" if gate.get("passed") else "[red]fail[/]"
            table.add_row(
                gate["name"], _fmt(gate.get("value")), _fmt(gate.get("limit")), result, gate.get("detail", "")
            )
        return table
    for column in ("arm", "n", "mean", "95% CI"):
        table.add_column(column)
    # Events stored before the A/B evidence spoke of stable and candidate named them control and treatment.
    for arm, earlier in (("stable", "control"), ("candidate", "treatment")):
        figures = evidence.get(arm) or evidence.get(earlier) or {}
        interval = f"[{_fmt(figures.get('ci_low'))}, {_fmt(figures.get('ci_high'))}]"
        table.add_row(arm, _fmt(figures.get("n")), _fmt(figures.get("mean")), interval)
    lift = (
        f"lift {_fmt(evidence.get('lift'))} [{_fmt(evidence.get('lift_ci_low'))}, {_fmt(evidence.get('lift_ci_high'))}]"
    )
    table.caption = (
        f"{lift}, p = {_fmt(evidence.get('p_value'))}, winner: {evidence.get('winner') or 'no difference yet'}"
    )
    return table


def _shadow_table(report: Mapping[str, Any]) -> Table:
    table = Table(title="shadow report", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    agreement = report.get("agreement_rate")
    rows = (
        ("rows compared", _fmt(report.get("pairs"))),
        ("requests shadowed", _fmt(report.get("requests"))),
        ("agreement rate", "-" if agreement is None else f"{agreement:.2%}"),
        ("mean abs difference", _fmt(report.get("mean_abs_diff"))),
        ("max abs difference", _fmt(report.get("max_abs_diff"))),
        ("candidate errors", f"{report.get('candidate_errors', 0)} ({report.get('candidate_error_rate', 0.0):.2%})"),
        ("candidate p50 / p99 ms", f"{_fmt(report.get('latency_p50_ms'))} / {_fmt(report.get('latency_p99_ms'))}"),
    )
    for name, value in rows:
        table.add_row(name, value)
    _dropped_rows(table, report.get("dropped") or {})
    worst = report.get("disagreements") or []
    if worst:
        table.caption = "most different: " + "; ".join(
            f"{d['request_id']} row {d['row']}: {d['stable']} vs {d['candidate']}" for d in worst[:3]
        )
    return table


def _dropped_rows(table: Table, dropped: Mapping[str, int]) -> None:
    """Sampled requests never compared, in total and by reason, so "shadowed" is not read without them."""
    from shipyard.rollouts.evidence import SHADOW_DROP_REASONS

    table.add_row("requests dropped", _fmt(sum(dropped.values())))
    for reason, n in sorted(dropped.items()):
        if n:
            table.add_row(f"  dropped: {SHADOW_DROP_REASONS.get(reason, reason)}", _fmt(n))


def _history_table(events: list[Mapping[str, Any]]) -> Table:
    table = Table(title="history", title_justify="left")
    for column in ("time", "event", "message", "weight"):
        table.add_column(column)
    for event in events:
        table.add_row(str(event["at"])[:19], event["kind"], event["message"], percent(float(event.get("weight", 0.0))))
    return table


def _moved(endpoint: str, verb: str, moved: RolloutState, as_json: bool) -> None:
    if as_json:
        print_json(moved.to_dict())
        return
    where = f"{moved.status.value}, {percent(moved.weight)} to the candidate"
    console.print(f"rollout {moved.id} on {endpoint} {verb} ({where})", soft_wrap=True)
    for event in moved.events:
        if event.at == moved.updated_at:  # the events this move added
            console.print(f"  {event.kind.value}: {event.message}", soft_wrap=True)


def _move(endpoint: str, move: str, *, reason: str = "") -> RolloutState:
    """A manual move, on the server at SHIPYARD_URL or on the local store."""
    remote = state.remote
    if remote is not None:
        return RolloutState.from_dict(remote.move_rollout(endpoint, move, reason=reason))
    rollouts = state.workspace.rollouts
    if move == "abort":
        return rollouts.abort(endpoint, reason=reason, actor=state.actor)
    moves = {"promote": rollouts.promote, "pause": rollouts.pause, "resume": rollouts.resume}
    return moves[move](endpoint, actor=state.actor)


@app.command("promote")
def promote(endpoint: EndpointArg, as_json: JsonOption = False) -> None:
    """Move forward by hand: a canary goes one step; other strategies complete, making the candidate stable.

    Example: shipyard rollout promote fraud
    """
    _moved(endpoint, "promoted", _move(endpoint, "promote"), as_json)


@app.command("pause")
def pause(endpoint: EndpointArg, as_json: JsonOption = False) -> None:
    """Freeze the rollout at its current weight; failing gates still roll it back.

    Example: shipyard rollout pause fraud
    """
    _moved(endpoint, "paused", _move(endpoint, "pause"), as_json)


@app.command("resume")
def resume(endpoint: EndpointArg, as_json: JsonOption = False) -> None:
    """Continue a paused rollout; the paused time does not count toward the step.

    Example: shipyard rollout resume fraud
    """
    _moved(endpoint, "resumed", _move(endpoint, "resume"), as_json)


@app.command("abort")
def abort(
    endpoint: EndpointArg,
    reason: Annotated[str, typer.Option("--reason", help="Why, kept in the history and in the webhook event.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Send all traffic back to the stable version at once.

    Example: shipyard rollout abort fraud --reason "complaints from support"
    """
    _moved(endpoint, "aborted", _move(endpoint, "abort", reason=reason), as_json)
