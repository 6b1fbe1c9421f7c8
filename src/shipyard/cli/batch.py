"""``shipyard batch``: score a CSV or Parquet file into CSV or Parquet, in chunks, with a progress bar.

The scoring service (pyarrow, pandas, the model's library) is imported when the command runs, not when
``shipyard`` lists its commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import ProgressColumn, Task
from rich.text import Text

from shipyard.cli.context import console, print_json, state
from shipyard.errors import InvalidArgumentError

if TYPE_CHECKING:
    from shipyard.services.batch import BatchSummary

# services.batch.DEFAULT_CHUNK_ROWS, restated so that `--help` shows it without importing the service.
DEFAULT_CHUNK_ROWS = 50_000


def batch(
    ref_or_endpoint: Annotated[
        str,
        typer.Argument(
            metavar="REF_OR_ENDPOINT",
            help="An endpoint name (scores with the version it serves), or a model ref: fraud:3, fraud@champion.",
        ),
    ],
    input_path: Annotated[str, typer.Argument(metavar="INPUT", help="CSV or Parquet file of rows to score.")],
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="File to write, .parquet or .csv: the input columns, prediction, one proba_<class> per class.",
        ),
    ],
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", help="Rows scored at a time; memory grows with it, not with the file.")
    ] = DEFAULT_CHUNK_ROWS,
    rejects: Annotated[
        str | None,
        typer.Option(
            help="File for rows that fail, with row number and reason (default: OUTPUT.rejects.parquet or .csv)."
        ),
    ] = None,
    trusted: Annotated[
        bool, typer.Option("--trusted", help="Allow a model stored as a pickle (it can run code when loaded).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON instead of a table.")] = False,
) -> None:
    """Score every row of a CSV or Parquet file; rows that fail go to a rejects file instead of stopping the job.

    Example: shipyard batch fraud@champion transactions.csv -o scores.parquet --chunk-rows 100000
    """
    from rich.progress import Progress

    from shipyard.services.batch import check_paths, count_rows, resolve_model, score_file

    if chunk_rows < 1:
        raise InvalidArgumentError(f"--chunk-rows must be at least 1, got {chunk_rows}")
    check_paths(input_path, output, rejects)  # before the model is loaded: a typo should fail fast
    expected = count_rows(input_path)
    model = resolve_model(state.workspace, ref_or_endpoint, trusted=trusted)
    # The bar goes to stderr, only on a terminal, and is erased when done: stdout holds only the summary.
    err = Console(stderr=True)
    with Progress(*_columns(), console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(model.ref, total=expected.rows or None, exact=expected.exact)
        done = 0

        def advance(rows: int) -> None:
            nonlocal done
            done += rows
            if expected.exact or done < expected.rows:
                bar.update(task, completed=done)
            else:  # the estimate from the CSV's size fell short: expect one more chunk
                bar.update(task, completed=done, total=done + rows)

        summary = score_file(model, input_path, output, chunk_rows=chunk_rows, rejects_path=rejects, progress=advance)
        bar.update(task, total=summary.rows_in, completed=summary.rows_in)
    if as_json:
        print_json(_as_dict(summary, model.ref))
        return
    _render(summary, model.ref)


class _RowsColumn(ProgressColumn):
    """Rows done out of the total: exact for Parquet, marked '~' where estimated from a CSV's size."""

    def render(self, task: Task) -> Text:
        done = _compact(task.completed)
        if task.total is None:
            return Text(f"{done} rows", style="progress.download")
        approx = "" if task.fields.get("exact") else "~"
        return Text(f"{done}/{approx}{_compact(task.total)} rows", style="progress.download")


class _RateColumn(ProgressColumn):
    """Throughput in rows per second (rich's own speed column assumes bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{_compact(speed)} rows/s" if speed else "- rows/s", style="progress.data.speed")


def _compact(count: float) -> str:
    """1,234 / 56.7k / 8.90M: a progress line has to fit an 80-column terminal."""
    if count < 10_000:
        return f"{count:,.0f}"
    if count < 1_000_000:
        return f"{count / 1_000:.1f}k"
    return f"{count / 1_000_000:.2f}M"


def _columns() -> tuple[ProgressColumn, ...]:
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
    from rich.table import Column

    return (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(bar_width=20),
        _RowsColumn(table_column=Column(no_wrap=True)),
        _RateColumn(table_column=Column(no_wrap=True)),
        TimeRemainingColumn(),
    )


def _as_dict(summary: BatchSummary, ref: str) -> dict[str, object]:
    return {
        "model": ref,
        "rows_in": summary.rows_in,
        "rows_scored": summary.rows_scored,
        "rows_rejected": summary.rows_rejected,
        "seconds": round(summary.seconds, 3),
        "rows_per_s": round(summary.rows_per_s, 1),
        "output": str(summary.output_path),
        "rejects": None if summary.rejects_path is None else str(summary.rejects_path),
    }


def _render(summary: BatchSummary, ref: str) -> None:
    from rich.table import Table

    title = f"batch scoring with {ref}"
    table = Table(title=title, show_header=False, title_justify="left", min_width=len(title))
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("rows in", f"{summary.rows_in:,}")
    table.add_row("scored", f"{summary.rows_scored:,}")
    rejected_style = "yellow" if summary.rows_rejected else ""
    table.add_row("rejected", Text(f"{summary.rows_rejected:,}", style=rejected_style))
    table.add_row("seconds", f"{summary.seconds:,.2f}")
    table.add_row("rows/s", f"{summary.rows_per_s:,.0f}")
    table.add_row("output", str(summary.output_path))
    table.add_row("rejects", str(summary.rejects_path) if summary.rejects_path is not None else "none")
    console.print(table)
