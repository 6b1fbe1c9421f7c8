"""``shipyard validate``: validation gates for a CI job. Exit 0 when every gate passes, 1 when any fails, 2 on bad
input (one line, no traceback), so a pipeline step can tell "the model is not good enough" from "the job is
misconfigured"."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.context import console, print_json, state
from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from shipyard.monitoring.validation_records import ValidationResult

BAD_INPUT_EXIT = 2
FAILED_EXIT = 1


def validate(
    ref: Annotated[str, typer.Argument(help="The candidate: fraud:4, fraud@challenger or fraud (latest).")],
    data: Annotated[str, typer.Option("--data", "-d", help="The holdout: a .csv or .parquet file with the target.")],
    target: Annotated[str, typer.Option("--target", "-t", help="The holdout's label column.")],
    vs: Annotated[
        str | None,
        typer.Option("--vs", help="The champion: an alias (champion), a version ref, or an endpoint (its stable)."),
    ] = None,
    minimum: Annotated[
        list[str] | None, typer.Option("--min", help="FIGURE=VALUE the candidate must reach, e.g. accuracy=0.9.")
    ] = None,
    maximum: Annotated[
        list[str] | None, typer.Option("--max", help="FIGURE=VALUE the candidate must not exceed, e.g. p99_ms=20.")
    ] = None,
    max_regression: Annotated[
        float | None,
        typer.Option(
            "--max-regression",
            help="How much worse than --vs is allowed, on the paired bound: accuracy points (classifiers) or a "
            "fraction of the champion's MAE (regressors).",
        ),
    ] = None,
    max_fairness_gap: Annotated[
        float | None,
        typer.Option("--max-fairness-gap", help="Largest demographic parity / equalized odds difference allowed."),
    ] = None,
    max_drift: Annotated[
        float | None,
        typer.Option("--max-drift", help="Largest share of features drifted against the reference profile."),
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here: one testcase per gate.")] = None,
    summary: Annotated[Path | None, typer.Option("--summary", help="Write a Markdown summary here.")] = None,
    latency_rows: Annotated[int, typer.Option("--latency-rows", help="Rows timed one at a time.")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the paired bootstrap.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of a table.")] = False,
) -> None:
    """Score a holdout with a candidate (and a champion), check the gates, store the result as evidence.

    Figures for --min/--max: accuracy precision recall f1 roc_auc log_loss brier ece (classifiers); mae rmse r2
    (regressors); p50_ms p99_ms throughput_rows_s size_mb drift fairness_gap.

    Example: shipyard validate fraud:4 --data holdout.parquet --target y --vs champion --min accuracy=0.9
    --max p99_ms=20 --max-regression 0.01 --junit gates.xml --summary gates.md
    """
    try:
        result = _run(
            ref,
            data,
            target,
            vs,
            minimum or [],
            maximum or [],
            max_regression,
            max_fairness_gap,
            max_drift,
            latency_rows,
            seed,
        )
        from shipyard.reporting.validation import junit_xml, markdown

        for path, text in ((junit, junit_xml(result) if junit else ""), (summary, markdown(result) if summary else "")):
            if path is not None:
                try:
                    path.write_text(text, encoding="utf-8")
                except OSError as exc:
                    raise ShipyardError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except ShipyardError as exc:
        sys.stderr.write("error: " + " ".join(str(exc).split()) + "\n")
        raise typer.Exit(BAD_INPUT_EXIT) from None
    if as_json:
        print_json(result.to_dict())
    else:
        render(result)
    raise typer.Exit(0 if result.passed else FAILED_EXIT)


def _run(
    ref: str,
    data: str,
    target: str,
    vs: str | None,
    minimum: list[str],
    maximum: list[str],
    max_regression: float | None,
    max_fairness_gap: float | None,
    max_drift: float | None,
    latency_rows: int,
    seed: int,
) -> ValidationResult:
    from shipyard.monitoring.validation_gates import GateSpec
    from shipyard.services.validation import ValidationOptions

    gates = GateSpec.parse(
        minimum=minimum,
        maximum=maximum,
        max_regression=max_regression,
        max_fairness_gap=max_fairness_gap,
        max_drift=max_drift,
    )
    workspace = state.workspace  # no remote form: a holdout path means nothing to a server
    return workspace.validation.validate(
        ref,
        data,
        target,
        champion=vs,
        gates=gates,
        options=ValidationOptions(latency_rows=latency_rows, seed=seed),
        actor=state.actor,
    )


def render(result: ValidationResult) -> None:
    """The gates (pass/fail, measured, limit), then the figures beside the champion's."""
    from rich.markup import escape
    from rich.table import Table

    from shipyard.reporting.validation import figure_text

    verdict = "[green]PASSED[/]" if result.passed else "[red]FAILED[/]"
    against = f" vs {escape(result.champion)} ({escape(result.champion_source or '')})" if result.champion else ""
    console.print(f"validation {result.id} of {escape(result.candidate)}{against}: {verdict}")
    console.print(f"{result.rows:,} rows of {escape(result.data)}, target {escape(result.target)}")
    gates = Table(title="gates", title_justify="left")
    for column in ("gate", "result", "measured", "limit", "detail"):
        gates.add_column(column, overflow="fold")
    for gate in result.gates:
        mark = "[green]pass[/]" if gate.passed else "[red]FAIL[/]"
        gates.add_row(escape(gate.name), mark, figure_text(gate.measured), f"{gate.limit:g}", escape(gate.detail))
    if not result.gates:
        gates.add_row("(no gates given)", "[green]pass[/]", "", "", "")
    console.print(gates)
    figures = Table(title="figures", title_justify="left")
    figures.add_column("figure")
    figures.add_column("candidate", justify="right", overflow="fold")
    if result.champion_figures:
        figures.add_column("champion", justify="right")
    for name, value in result.figures.items():
        row = [name, escape(figure_text(value, result.missing.get(name)))]
        if result.champion_figures:
            theirs = result.champion_figures.get(name)
            row.append(figure_text(theirs) if name in result.champion_figures else "")
        figures.add_row(*row)
    console.print(figures)
    if result.comparison is not None:
        console.print(f"paired comparison: {escape(result.comparison.decided_on)}")
    for note in result.notes:
        console.print(f"note: {escape(note)}")
