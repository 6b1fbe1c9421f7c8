"""``shipyard monitor``, ``shipyard report`` and ``shipyard feedback export``: what the monitoring saw.

Each reads the local store, or a remote server when ``--url`` / ``SHIPYARD_URL`` is set (monitor and
report), so the same command works on a laptop and against a shared deployment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli.context import console, print_json, state
from shipyard.config import Settings
from shipyard.errors import InvalidArgumentError, NotFoundError, ShipyardError

EndpointArg = Annotated[str, typer.Argument(help="Endpoint name, e.g. fraud.")]
SinceOption = Annotated[
    str, typer.Option("--since", help="How far back to merge windows: 30m, 1h, 7d, or 'all' (since deploy).")
]
VersionOption = Annotated[str | None, typer.Option("--version", help="Only this version, e.g. fraud:3.")]
UrlOption = Annotated[
    str | None, typer.Option("--url", help="Server URL; defaults to SHIPYARD_URL, else reads the local store.")
]

feedback_app = typer.Typer(help="Feedback joined with predictions: export it for retraining.", no_args_is_help=True)


def _report(endpoint: str, since: str, version: str | None, url: str | None) -> dict[str, Any]:
    target = url or Settings.load().url
    if target:
        return _remote_report(target, endpoint, since, version)
    return state.workspace.monitoring.report(endpoint, window=since, version=version)


def _remote_report(url: str, endpoint: str, since: str, version: str | None) -> dict[str, Any]:
    import httpx

    params = {"window": since, **({"version": version} if version else {})}
    headers = {}
    api_key = Settings.load().api_key
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    try:
        response = httpx.get(
            f"{url.rstrip('/')}/v1/endpoints/{endpoint}/monitoring", params=params, headers=headers, timeout=60
        )
    except httpx.HTTPError as exc:
        raise ShipyardError(f"cannot reach the Shipyard server at {url}: {exc}") from exc
    if response.status_code == 404:
        raise NotFoundError(_message(response))
    if response.status_code >= 400:
        raise InvalidArgumentError(f"the server answered {response.status_code}: {_message(response)}")
    return dict(response.json())


def _message(response: Any) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:300]


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
        print_json(report)
        return
    from shipyard.reporting.terminal import render_terminal

    render_terminal(report, console)


def report(
    endpoint: EndpointArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the HTML file.")],
    since: SinceOption = "1d",
    version: VersionOption = None,
    url: UrlOption = None,
) -> None:
    """Write a self-contained HTML report (plots included, no network needed to read it).

    Example: shipyard report fraud -o fraud.html --since 7d
    """
    if output.suffix.lower() not in (".html", ".htm"):
        raise InvalidArgumentError(f"the report is HTML; name the output *.html, not {output.name!r}")
    data = _report(endpoint, since, version, url)
    from shipyard.reporting.html import render_html

    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.tmp")
    temporary.write_text(render_html(data), encoding="utf-8")
    temporary.replace(output)
    console.print(f"wrote {output} ({len(data.get('versions', []))} version(s), {since} back)")


@feedback_app.command("export")
def export(
    endpoint: EndpointArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Parquet file to write.")],
) -> None:
    """Write every feedback item joined with its logged prediction (inputs, outputs), ready for retraining.

    Prediction columns are empty where the prediction was not logged (sampled out or lost).
    Example: shipyard feedback export fraud -o fraud-feedback.parquet
    """
    rows = state.workspace.feedback.export(endpoint, output)
    console.print(f"wrote {rows} feedback row(s) to {output}")
