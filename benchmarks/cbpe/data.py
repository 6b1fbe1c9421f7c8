"""Seeded class probabilities for the CBPE benchmark: a labelled reference and a large unlabelled analysis set.

A model-like generator: each row's true class probabilities come from a softmax of Gaussian scores, the
label is drawn from them, and the model reports a sharpened version (temperature 0.6), so it is
overconfident and CBPE has something to calibrate. The analysis rows are shifted (scores moved by 0.3), as
production data would be. Written to Parquet for NannyML in the columns its CBPE reads.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 12
REFERENCE_ROWS = 50_000


def _softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(scores)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def rows(n: int, classes: int, *, shift: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(model probabilities, labels) for ``n`` rows of a ``classes``-class model."""
    centres = np.eye(classes) * 2.0
    truth_class = rng.integers(0, classes, n)
    scores = centres[truth_class] + rng.normal(0.0, 1.2, (n, classes)) + shift * rng.normal(0.0, 1.0, (n, 1))
    true_p = _softmax(scores * 0.8)
    labels = (rng.random((n, 1)) > np.cumsum(true_p, axis=1)).sum(axis=1)
    return _softmax(scores / 0.6), np.minimum(labels, classes - 1).astype(np.int64)


def frame(proba: np.ndarray, labels: np.ndarray | None) -> pd.DataFrame:
    out = pd.DataFrame({f"p_{c}": proba[:, c] for c in range(proba.shape[1])})
    out["y_pred"] = proba.argmax(axis=1)
    if labels is not None:
        out["y_true"] = labels
    return out


def write(folder: Path, analysis_rows: int) -> None:
    """reference_{k}.parquet and analysis_{k}.parquet for k = 2 and 4 classes."""
    rng = np.random.default_rng(SEED)
    for classes in (2, 4):
        reference, labels = rows(REFERENCE_ROWS, classes, shift=0.0, rng=rng)
        analysis, _ = rows(analysis_rows, classes, shift=0.3, rng=rng)
        frame(reference, labels).to_parquet(folder / f"reference_{classes}.parquet")
        frame(analysis, None).to_parquet(folder / f"analysis_{classes}.parquet")


if __name__ == "__main__":
    write(Path(sys.argv[1]), int(sys.argv[2]))
