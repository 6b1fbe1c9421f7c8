"""What the label-free error estimate (DLE) costs: the loss model's fit at registration and its background work.

In-process, on a regressor over 10 numeric features and one categorical: the fit of the loss model (two
100-tree ensembles, NannyML's LightGBM defaults) on 5,000 labelled rows; the loss model alone applied to
batches of served rows (rows/s); and the recorder's whole background batch per one-row request for the same
regressor registered with a target (loss model) and without (none), so the loss model's own share of the
background work shows apart from the rest. None of it is on the request path: the recorder's ``add`` is the
same either way.

``python benchmarks/bench_dle.py`` prints the figures; ``SHIPYARD_BENCH_ONLY=dle`` runs it from ``run.py``.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FEATURES = 10
FIT_ROWS = 5_000
BATCHES = (100, 1_000, 10_000)
REPEATS = 5


def _data(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, FEATURES)), columns=[f"f{i}" for i in range(FEATURES)])
    frame["region"] = rng.choice(["north", "south", "east", "west"], size=rows)
    noise = rng.normal(size=rows) * (0.5 + 2.0 * (frame["f1"] > 0.5) + (frame["region"] == "west"))
    return frame, (frame["f0"] * 3 - frame["f2"] + noise).to_numpy()


def _model(frame: pd.DataFrame, target: np.ndarray) -> Any:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["region"]), remainder="passthrough")
    return make_pipeline(encode, Ridge()).fit(frame, target)


def _apply_rate(model: Any, frame: pd.DataFrame, target: np.ndarray) -> tuple[float, dict[int, float]]:
    from shipyard.monitoring.dle import LossScorer, fit_loss_model

    predictions = model.predict(frame)
    columns = {name: frame[name].to_numpy() for name in frame.columns}
    started = time.perf_counter()
    loss_model = fit_loss_model(columns, predictions, target, categorical={"region"}, data="holdout")
    fit_s = time.perf_counter() - started
    scorer = LossScorer(loss_model)
    live, _ = _data(max(BATCHES), seed=7)
    live_predictions = model.predict(live)
    rates = {}
    for batch in BATCHES:
        part = {name: live[name].to_numpy()[:batch] for name in live.columns}
        timings = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            scorer.summary(part, live_predictions[:batch])
            timings.append(time.perf_counter() - started)
        rates[batch] = batch / statistics.median(timings)
    return fit_s, rates


def _drain_us(model: Any, frame: pd.DataFrame, target: np.ndarray, *, with_target: bool, requests: int) -> float:
    """The recorder's background batch per one-row request (profile, log rows, windows, loss model if any)."""
    from shipyard.config import Settings
    from shipyard.flavors.loaded import Prediction
    from shipyard.serving.recorder import Recorder, RecorderConfig
    from shipyard.workspace import Workspace

    batch = 1_000
    with tempfile.TemporaryDirectory() as home:
        workspace = Workspace(Settings(home=Path(home)))
        try:
            version = workspace.registry.register(
                model,
                name="price",
                sample_input=frame[:50],
                training_data=frame,
                training_target=target if with_target else None,
                outlier_model="none",
            )
            assert (version.loss_model is not None) == with_target
            recorder = Recorder(RecorderConfig(capacity=batch * 2), log_store=workspace.prediction_log, sink=None)
            rows = frame.to_dict(orient="records")
            predictions = model.predict(frame)
            drain_s = 0.0
            for start in range(0, requests, batch):
                for i in range(start, start + batch):
                    k = i % len(rows)
                    recorder.add(
                        "price",
                        version,
                        arm="stable",
                        inputs=[rows[k]],
                        prediction=Prediction(predictions[k : k + 1], None, None),
                        request_id=f"r{i}",
                        rows=1,
                        latency_s=4e-4,
                        status=200,
                    )
                started = time.perf_counter()
                recorder.drain()
                drain_s += time.perf_counter() - started
            return drain_s / requests * 1e6
        finally:
            workspace.close()


def run(quick: bool = False) -> dict[str, Any]:
    frame, target = _data(FIT_ROWS, seed=1)
    model = _model(frame, target)
    fit_s, rates = _apply_rate(model, frame, target)
    requests = 5_000 if quick else 20_000
    with_loss = _drain_us(model, frame, target, with_target=True, requests=requests)
    without = _drain_us(model, frame, target, with_target=False, requests=requests)
    return {
        "config": {"features": FEATURES + 1, "fit_rows": FIT_ROWS, "requests": requests, "quick": quick},
        "fit_s": fit_s,
        "apply_rows_per_s": {str(batch): rate for batch, rate in rates.items()},
        "drain_us_per_request": {"with_loss_model": with_loss, "without": without},
    }


def report(results: dict[str, Any]) -> str:
    rates = results["apply_rows_per_s"]
    drain = results["drain_us_per_request"]
    lines = [
        "## DLE (label-free MAE/RMSE) background cost",
        "",
        "| figure | value |",
        "|---|---|",
        f"| loss model fit, {results['config']['fit_rows']:,} rows x {results['config']['features']} features | "
        f"{results['fit_s']:.2f} s |",
        *(f"| loss model applied, batches of {int(b):,} rows | {rate:,.0f} rows/s |" for b, rate in rates.items()),
        f"| recorder background batch per one-row request, with loss model | {drain['with_loss_model']:.1f} µs |",
        f"| the same without a loss model | {drain['without']:.1f} µs |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    figures = run(quick="--quick" in sys.argv)
    print(report(figures))
    print(json.dumps(figures))
