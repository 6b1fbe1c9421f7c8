"""Peer tools the suite checks Shipyard against, each in its own virtual environment.

Their pins clash with ours (NannyML needs pandas < 3), so each lives under ``benchmarks/.peer-venvs/``
(ignored by git, shared with the benchmarks' peers), is built with pip on first use and reused after. The
suite talks to a peer over its own protocol: Parquet files in, one JSON line out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
NANNYML_VENV = ROOT / "benchmarks" / ".peer-venvs" / "nannyml"
# statsmodels is imported by nannyml but not declared by it.
NANNYML_PACKAGES = ("nannyml==0.13.1", "pandas<3", "pyarrow", "statsmodels")
NANNYML_SCRIPT = Path(__file__).resolve().parent / "peer_scripts" / "nannyml_cbpe.py"
NANNYML_METRICS_SCRIPT = Path(__file__).resolve().parent / "peer_scripts" / "nannyml_cbpe_metrics.py"
INSTALL_TIMEOUT_S = 1800


def _imports(python: Path) -> bool:
    if not python.exists():
        return False
    done = subprocess.run([str(python), "-c", "import nannyml"], capture_output=True, text=True, timeout=300)
    return done.returncode == 0


def nannyml_python() -> Path:
    """The python of NannyML's venv, built the first time (minutes). Without it the test is skipped with pip's
    error, except in CI, where a missing peer is a failure rather than a silent pass."""
    python = NANNYML_VENV / "bin" / "python"
    if _imports(python):
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(NANNYML_VENV)], check=True, timeout=300)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *NANNYML_PACKAGES]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    if done.returncode != 0 or not _imports(python):
        message = f"could not install {' '.join(NANNYML_PACKAGES)} into {NANNYML_VENV}: {done.stderr.strip()[-800:]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python


@dataclass(frozen=True)
class CbpeCase:
    """One model's labelled reference rows and unlabelled analysis rows, as class probabilities."""

    name: str
    classes: Sequence[int]
    reference_proba: np.ndarray
    reference_labels: np.ndarray
    analysis_proba: np.ndarray


def _frame(proba: np.ndarray, classes: Sequence[int], labels: np.ndarray | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({f"p_{c}": proba[:, i] for i, c in enumerate(classes)})
    frame["y_pred"] = np.asarray(classes)[proba.argmax(axis=1)]
    if labels is not None:
        frame["y_true"] = labels
    return frame


def _write_cases(cases: Sequence[CbpeCase], workdir: Path) -> Path:
    spec = []
    for case in cases:
        reference, analysis = workdir / f"{case.name}_reference.parquet", workdir / f"{case.name}_analysis.parquet"
        _frame(case.reference_proba, case.classes, case.reference_labels).to_parquet(reference)
        _frame(case.analysis_proba, case.classes).to_parquet(analysis)
        spec.append(
            {
                "name": case.name,
                "reference": str(reference),
                "analysis": str(analysis),
                "classes": [int(c) for c in case.classes],
                "proba_columns": [f"p_{c}" for c in case.classes],
            }
        )
    spec_file = workdir / "cbpe_cases.json"
    spec_file.write_text(json.dumps(spec))
    return spec_file


def _run(script: Path, spec_file: Path) -> Any:
    done = subprocess.run(
        [str(nannyml_python()), str(script), str(spec_file)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def nannyml_cbpe_accuracy(cases: Sequence[CbpeCase], workdir: Path) -> dict[str, float]:
    """NannyML's CBPE accuracy estimate for each case's analysis rows (one chunk), by case name."""
    found = _run(NANNYML_SCRIPT, _write_cases(cases, workdir))
    return {str(k): float(v) for k, v in found.items()}


def nannyml_cbpe_metrics(cases: Sequence[CbpeCase], workdir: Path) -> dict[str, dict[str, float]]:
    """NannyML's CBPE accuracy, precision, recall, F1 and ROC AUC (macro for multiclass) for each case's
    analysis rows as one chunk, by case name; ``seconds`` is its fit and estimate time."""
    found = _run(NANNYML_METRICS_SCRIPT, _write_cases(cases, workdir))
    return {str(k): {str(m): float(v) for m, v in metrics.items()} for k, metrics in found.items()}
