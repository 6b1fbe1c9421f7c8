"""``shipyard demo``: a real model on a bundled dataset, registered, behind an endpoint, served."""

from __future__ import annotations

import json
import shlex
import sys
from typing import Annotated, Any

import typer

from shipyard.cli.context import console, state
from shipyard.cli.serve import check_port
from shipyard.errors import EndpointNotFoundError


def _training_data() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    features = data.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    labels = data.target.map(dict(enumerate(data.target_names))).astype(str)
    return features, labels


def curl_command(host: str, port: int, endpoint: str, row: dict[str, Any]) -> str:
    body = json.dumps({"instances": [row]})
    return (
        f"curl -s -X POST http://{host}:{port}/v1/endpoints/{endpoint}/predict "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )


def demo(
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.", callback=check_port)] = 8000,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve after registering.")] = True,
) -> None:
    """Train a classifier on scikit-learn's iris data, register it, create endpoint 'demo' and serve it.

    Example: shipyard demo --port 8000
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from shipyard.cli.cards import render_card
    from shipyard.config import Settings

    features, labels = _training_data()
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.3, random_state=0, stratify=labels
    )
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    accuracy = float(model.score(x_test, y_test))
    workspace = state.workspace
    registry = workspace.registry
    version = registry.register(
        model,
        name="demo",
        sample_input=x_train.head(20),
        training_data=x_train,
        training_target=y_train.to_numpy(),
        metrics={"accuracy": round(accuracy, 4)},
        tags={"dataset": "sklearn.iris"},
        notes="Demo model: logistic regression on the iris dataset bundled with scikit-learn.",
        source="shipyard demo",
    )
    registry.set_alias(version.ref, "champion")
    try:
        workspace.endpoints.get("demo")
        workspace.endpoints.set_model("demo", model="demo@champion")
    except EndpointNotFoundError:
        workspace.endpoints.create("demo", model="demo@champion")
    console.print(
        f"registered {version.ref} (test accuracy {accuracy:.3f}); demo@champion -> {version.ref}; "
        "endpoint demo serves demo@champion\n"
    )
    render_card(console, registry.get(version.ref))
    row = {k: float(v) for k, v in x_test.iloc[0].items()}
    curl = curl_command(host, port, "demo", row)
    if not serve:
        console.print(f"\nserve it with `shipyard serve --port {port}`, then:\n{curl}")
        return

    from shipyard.serving.server import serve as run_server

    def ready() -> None:
        # Plain stdout, one line: the command must work exactly as printed, so no wrapping.
        sys.stdout.write(f"\nserving endpoint 'demo' on http://{host}:{port} (Ctrl-C stops). Try:\n{curl}\n\n")
        sys.stdout.flush()

    run_server(Settings.load(), host=host, port=port, workers=1, on_ready=ready)
