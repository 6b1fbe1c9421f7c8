"""``shipyard predict``: one request to an endpoint, over HTTP or straight from the local store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli.context import print_json, read_table, state
from shipyard.errors import InvalidArgumentError


def _payload(data: str) -> Any:
    text = data.strip()
    if not text.startswith(("{", "[")):
        path = Path(data)
        if not path.is_file():
            raise InvalidArgumentError(f"--data is neither JSON nor an existing file: {data!r}")
        if path.suffix.lower() in (".csv", ".parquet"):
            return read_table(data, what="data").to_dict(orient="records")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgumentError(f"cannot read --data file {data}: {exc}") from None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"--data is not valid JSON: {exc}") from None
    if isinstance(parsed, dict) and "instances" in parsed:
        return parsed["instances"]
    if isinstance(parsed, dict) and "inputs" in parsed:
        return parsed["inputs"]
    if isinstance(parsed, dict):
        return [parsed]
    return parsed


def predict(
    endpoint: Annotated[str, typer.Argument(help="Endpoint name.")],
    data: Annotated[
        str,
        typer.Option("--data", "-d", help="JSON (a row, a list of rows, or {'instances': …}) or a .json/.csv file."),
    ],
    url: Annotated[
        str | None, typer.Option(help="Server URL; defaults to SHIPYARD_URL, else predicts in-process.")
    ] = None,
    ca_file: Annotated[
        str | None,
        typer.Option("--ca-file", help="PEM file of the CA that signed the server's certificate; or SHIPYARD_CA_FILE."),
    ] = None,
) -> None:
    """Predict with an endpoint's model and print the JSON answer.

    Example: shipyard predict demo --data '{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}'
    """
    from shipyard.config import Settings

    payload = _payload(data)
    settings = Settings.load(ca_file=ca_file)
    target = url or settings.url
    if target:
        from shipyard.client import Client

        with Client.from_settings(settings, url=target) as client:
            result = client.predict(endpoint, payload)
        out: dict[str, Any] = {
            "request_id": result.request_id,
            "endpoint": endpoint,
            "model": result.model,
            "version": result.version,
            "predictions": result.predictions,
        }
        if result.probabilities is not None:
            out["probabilities"] = result.probabilities
            out["classes"] = result.classes
        print_json(out)
        return
    workspace = state.workspace
    version = workspace.registry.get(workspace.endpoints.get(endpoint).model)
    prediction = workspace.registry.load(version).predict_batch(payload)
    out = {
        "endpoint": endpoint,
        "model": version.name,
        "version": version.version,
        "predictions": prediction.predictions.tolist(),
    }
    if prediction.probabilities is not None:
        out["probabilities"] = prediction.probabilities.tolist()
        out["classes"] = list(prediction.classes or ())
    print_json(out)
