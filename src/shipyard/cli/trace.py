"""``shipyard trace REQUEST_ID``: which version served a request, from which artifact, data and code, and what
came of it. Reads the local store, or a remote server when ``--url`` / ``SHIPYARD_URL`` is set."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from shipyard.cli.context import console, print_json, state


def trace(
    request_id: Annotated[str, typer.Argument(help="The request id (the X-Request-ID header of the answer).")],
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="The endpoint that served it; faster, and finds deleted ones.")
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="Server URL; defaults to SHIPYARD_URL, else reads the local store.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the trace as JSON.")] = False,
) -> None:
    """The version, arm, artifact sha256, training-data hash and commit that served REQUEST_ID, its inputs and
    outputs from the prediction log, its latency, the feedback joined to it and the rollout state then.

    Example: shipyard trace 3f2c9a41 --endpoint fraud
    """
    from shipyard.config import Settings

    settings = Settings.load()
    target = url or settings.url
    if target:
        from shipyard.client import Client

        with Client.from_settings(settings, url=target) as client:
            data = client.trace(request_id, endpoint=endpoint)
    else:
        from shipyard.services.tracing import TracingService

        workspace = state.workspace
        data = (
            TracingService(workspace.endpoints, workspace.prediction_log).trace(request_id, endpoint=endpoint).to_dict()
        )
    if as_json:
        print_json(data)
        return
    _render(data)


def _render(data: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    latency = f" in {data['latency_ms']:.2f} ms" if data.get("latency_ms") is not None else ""
    console.print(
        f"request {escape(data['request_id'])} on endpoint {data['endpoint']}, served {data['served_at']}{latency}"
    )
    code = data.get("code") or {}
    commit = code.get("commit") or "unknown (not registered from a git checkout)"
    if code.get("dirty"):
        commit += " (uncommitted changes)"
    facts = Table.grid(padding=(0, 2))
    facts.add_row("version", f"{data['version']} (arm {data['arm']})")
    facts.add_row("artifact sha256", data.get("sha256") or "unknown (the version is no longer in the registry)")
    facts.add_row("training data", data.get("training_data_hash") or "not recorded at registration")
    facts.add_row("code commit", commit)
    rollout = data.get("rollout")
    if rollout:
        facts.add_row(
            "rollout",
            f"{rollout['strategy']} {rollout['rollout_id']}: {rollout['stable']} -> {rollout['candidate']}, "
            f"candidate weight {rollout['weight']:g}, {rollout['status']} then ({rollout['status_now']} now)",
        )
    else:
        facts.add_row("rollout", "none in progress then")
    console.print(facts)
    rows = Table("row", "inputs", "prediction", "probabilities")
    for row in data["rows"]:
        probabilities = row.get("probabilities")
        rows.add_row(
            str(row["row"]),
            escape(json.dumps(row["inputs"], default=str)),
            escape(json.dumps(row["prediction"], default=str)),
            ", ".join(f"{p:.3f}" for p in probabilities) if probabilities else "",
        )
    console.print(rows)
    if not data["feedback"]:
        console.print("feedback: none yet")
        return
    feedback = Table("row", "label", "reward", "observed", "corrections")
    for item in data["feedback"]:
        feedback.add_row(
            str(item["row"]),
            escape(json.dumps(item["label"], default=str)),
            "" if item["reward"] is None else f"{item['reward']:g}",
            item["observed_at"],
            str(item["corrections"]),
        )
    console.print(feedback)
