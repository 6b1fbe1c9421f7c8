"""``shipyard drift``: compare two datasets offline, and ``report --model``'s version-against-file path.

Both stream CSV or Parquet files in chunks and write the same sections as the live report (drift, data
quality and, with target and prediction columns, performance) as HTML or JSON, then print one summary line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.context import check_output, console, print_json
from shipyard.errors import InvalidArgumentError

if TYPE_CHECKING:
    from shipyard.reporting.comparison import Comparison

FORMATS = ("html", "json")
TargetOption = Annotated[str | None, typer.Option("--target", help="The true label or value column, for performance.")]
PredictionOption = Annotated[
    str | None, typer.Option("--prediction", help="The model's prediction column, for performance.")
]
FormatOption = Annotated[
    str | None, typer.Option("--format", help="html or json; by default from the output's suffix (html otherwise).")
]
OutputOption = Annotated[
    Path | None, typer.Option("-o", "--output", help="Where to write the report; without it, only the summary.")
]


def drift(
    reference: Annotated[str, typer.Argument(help="Reference data: a .csv or .parquet file (e.g. training data).")],
    current: Annotated[str, typer.Argument(help="Current data to compare with it: a .csv or .parquet file.")],
    target: TargetOption = None,
    prediction: PredictionOption = None,
    output_format: FormatOption = None,
    output: OutputOption = None,
    multivariate: Annotated[
        bool,
        typer.Option(
            "--multivariate/--no-multivariate",
            help="Also fit the domain classifier on a 2,000-row sample of each side (seconds).",
        ),
    ] = True,
) -> None:
    """Compare CURRENT with REFERENCE: drift per feature, data quality, and performance with --target and
    --prediction. Files are streamed in chunks, so memory does not grow with their size.

    Example: shipyard drift train.parquet today.parquet --target label --prediction score -o drift.html
    """
    chosen = _format(output_format, output)
    if output is not None:
        check_output(output)
    from shipyard.api import compare

    result = compare(reference, current, target=target, prediction=prediction, multivariate=multivariate)
    _emit(result, chosen, output)


def report_for_version(
    model: str, data: str, *, target: str | None, prediction: str | None, output: Path | None, output_format: str | None
) -> None:
    """``shipyard report --model REF --data FILE``: the version's reference profile against the file."""
    chosen = _format(output_format, output)
    if output is not None:
        check_output(output)
    from shipyard.cli.context import state
    from shipyard.reporting.comparison import Comparison
    from shipyard.services.compare import compare_with_version

    version = state.workspace.registry.get(model)
    report = compare_with_version(version, data, target=target, prediction=prediction)
    _emit(Comparison(report), chosen, output)


def _format(chosen: str | None, output: Path | None) -> str:
    if chosen is None:
        return "json" if output is not None and output.suffix.lower() == ".json" else "html"
    value = chosen.strip().lower()
    if value not in FORMATS:
        raise InvalidArgumentError(f"--format must be one of {', '.join(FORMATS)}, got {chosen!r}")
    return value


def _emit(result: Comparison, chosen: str, output: Path | None) -> None:
    if output is None:
        if chosen == "json" and output is None:
            print_json(result.to_dict())
            return
    elif chosen == "json":
        _write(output, json.dumps(result.to_dict(), indent=1) + "\n")
    else:
        result.save_html(output)
    console.print(result.summary() + (f" (wrote {output})" if output is not None else ""), soft_wrap=True)


def _write(output: Path, text: str) -> None:
    temporary = output.with_name(f".{output.name}.tmp")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(output)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise InvalidArgumentError(f"cannot write {output}: {exc.strerror or exc}") from exc
