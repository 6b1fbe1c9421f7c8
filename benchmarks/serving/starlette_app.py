"""The practical limit: a bare Starlette app that parses JSON, calls the model and answers.

No validation, logging or routing beyond one path: what is left is the HTTP server, orjson and the
model's own ``predict`` and ``predict_proba``. Same body as Shipyard's: ``{"instances": [row, ...]}``.

    python benchmarks/serving/starlette_app.py --model model.joblib --port 8001
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def create_app(model_path: Path) -> Starlette:
    """An app serving the joblib model at ``model_path`` on ``POST /predict``."""
    model: Any = joblib.load(model_path)
    features = [str(f) for f in model.feature_names_in_]
    # The model was fitted on a DataFrame; a bare array is the fastest correct input, so silence the
    # feature-name warning once here rather than paying for a DataFrame per request.
    warnings.filterwarnings("ignore", message="X does not have valid feature names")

    async def predict(request: Request) -> Response:
        try:
            rows = orjson.loads(await request.body())["instances"]
            x = np.array([[row[f] for f in features] for row in rows], dtype=np.float64)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            return Response(orjson.dumps({"error": str(exc)}), status_code=400, media_type="application/json")
        out = {"predictions": model.predict(x), "probabilities": model.predict_proba(x)}
        return Response(orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")

    async def ready(request: Request) -> Response:
        return Response(b"ok")

    return Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/readyz", ready)])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.model),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
