"""Shipyard's CBPE on the same files, in a fresh process: the calibrators fitted on the reference (what
registration does), then from the analysis rows' raw probabilities to the estimates (the window's class
histograms, as a serving worker builds them, and the estimate from them). Prints one JSON line."""

from __future__ import annotations

import importlib
import json
import sys
import time

import numpy as np
import pyarrow.parquet as pq

from shipyard.monitoring.calibration import fit_confidence_calibrator
from shipyard.monitoring.cbpe import ClassProbabilities, estimate_performance

REPEATS = 3


def _proba(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    table = pq.read_table(path)
    columns = sorted((c for c in table.column_names if c.startswith("p_")), key=lambda c: int(c[2:]))
    proba = np.column_stack([table.column(c).to_numpy() for c in columns])
    labels = table.column("y_true").to_numpy() if "y_true" in table.column_names else None
    return proba, labels


def main() -> None:
    reference, labels = _proba(sys.argv[1])
    analysis, _ = _proba(sys.argv[2])
    classes = list(range(reference.shape[1]))
    # Imported before the timer, as NannyML's are (a registering process has scikit-learn loaded already).
    for module in ("sklearn.isotonic", "sklearn.metrics", "sklearn.model_selection"):
        importlib.import_module(module)
    started = time.perf_counter()
    calibrator = fit_confidence_calibrator(labels, reference, classes)
    fit_s = time.perf_counter() - started
    runs = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        state = ClassProbabilities.of(analysis, calibrator)
        estimate = estimate_performance(state, classes, calibrated=True)
        runs.append(time.perf_counter() - started)
    estimates = {name: metric.value for name, metric in estimate.metrics.items()}
    print(json.dumps({"fit_s": fit_s, "estimate_s": min(runs), "runs_s": runs, "estimates": estimates}))


if __name__ == "__main__":
    main()
