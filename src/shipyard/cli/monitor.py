"""``shipyard monitor``, ``shipyard report`` and ``shipyard feedback export``: what the monitoring saw.

Each reads the local store, or a remote server when ``--url`` / ``SHIPYARD_URL`` is set (monitor and
report), so the same command works on a laptop and against a shared deployment.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.context import check_output, console, output_error, print_json, state
from shipyard.errors import InvalidArgumentError

if TYPE_CHECKING:
    from shipyard.monitoring.report import MonitoringReport

EndpointArg = Annotated[str, typer.Argument(help="Endpoint name, e.g. fraud.")]
SinceOption = Annotated[
    str, typer.Option("--since", help="How far back to merge windows: 30m, 1h, 7d, or 'all' (since deploy).")
]
VersionOption = Annotated[str | None, typer.Option("--version", help="Only this version, e.g. fraud:3.")]
UrlOption = Annotated[
    str | None, typer.Option("--url", help="Server URL; defaults to SHIPYARD_URL, else reads the local store.")
]

feedback_app = typer.Typer(
    help="Feedback joined with predictions: export it for retraining.\n\n"
    "Example: shipyard feedback export fraud -o fraud-feedback.parquet",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _report(endpoint: str, since: str, version: str | None, url: str | None) -> MonitoringReport:
    """The report from the local store, or rebuilt from a remote server's JSON (checked field by field)."""
    from shipyard.config import Settings

    settings = Settings.load()
    target = url or settings.url
    if target:
        from shipyard.client import Client
        from shipyard.monitoring.report import MonitoringReport

        with Client.from_settings(settings, url=target, timeout_s=60) as client:
            return MonitoringReport.from_dict(client.monitoring(endpoint, window=since, version=version))
    return state.workspace.monitoring.report(endpoint, window=since, version=version)


def monitor(
    endpoint: EndpointArg,
    since: SinceOption = "1h",
    version: VersionOption = None,
    url: UrlOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Drift, data quality, performance and service figures for ENDPOINT, drifted features first.

    Example: shipyard monitor fraud --since 1d
    """
    report = _report(endpoint, since, version, url)
    if as_json:
        print_json(report.to_dict())
        return
    from shipyard.reporting.terminal import render_terminal

    render_terminal(report, console)


def report(
    endpoint: Annotated[
        str | None, typer.Argument(help="Endpoint name, e.g. fraud (or --model and --data for a file).")
    ] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where to write the HTML file.")] = None,
    since: SinceOption = "1d",
    version: VersionOption = None,
    url: UrlOption = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="A registered version (fraud:3, fraud@champion): compare --data with it."),
    ] = None,
    data_file: Annotated[
        str | None, typer.Option("--data", help="With --model: a .csv or .parquet file to compare.")
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="With --model: the label column.")] = None,
    prediction: Annotated[str | None, typer.Option("--prediction", help="With --model: the prediction column.")] = None,
    output_format: Annotated[str | None, typer.Option("--format", help="With --model: html or json.")] = None,
) -> None:
    """Write a self-contained HTML report (plots included, no network needed to read it): an endpoint's
    monitoring, or with --model and --data a file compared with a registered version's reference profile.

    Example: shipyard report fraud -o fraud.html --since 7d
    Example: shipyard report --model fraud:3 --data today.parquet --target label --prediction score -o today.html
    """
    if model is not None or data_file is not None:
        if endpoint is not None or model is None or data_file is None:
            raise InvalidArgumentError("give an ENDPOINT, or --model REF with --data FILE, not both or a half")
        from shipyard.cli.drift import report_for_version

        report_for_version(
            model, data_file, target=target, prediction=prediction, output=output, output_format=output_format
        )
        return
    if endpoint is None or output is None:
        raise InvalidArgumentError("give an ENDPOINT and -o report.html (or --model REF --data FILE)")
    if output.suffix.lower() not in (".html", ".htm"):
        raise InvalidArgumentError(f"the report is HTML; name the output *.html, not {output.name!r}")
    check_output(output)
    data = _report(endpoint, since, version, url)
    from shipyard.reporting.html import render_html

    _write_text(output, render_html(data))
    console.print(f"wrote {output} ({len(data.versions)} version(s), {since} back)")


def _write_text(output: Path, text: str) -> None:
    """Write through a temporary file beside the output, so a failed write leaves no half a report."""
    temporary = output.with_name(f".{output.name}.tmp")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(output)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise output_error(output, exc) from exc


@feedback_app.command("export")
def export(
    endpoint: EndpointArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Parquet file to write.")],
) -> None:
    """Write every feedback item joined with its logged prediction (inputs, outputs), ready for retraining.

    Prediction columns are empty where the prediction was not logged (sampled out or lost).
    Example: shipyard feedback export fraud -o fraud-feedback.parquet
    """
    check_output(output)
    rows = state.workspace.feedback.export(endpoint, output)
    console.print(f"wrote {rows} feedback row(s) to {output}")
