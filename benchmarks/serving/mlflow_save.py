"""Run inside the mlflow venv: save the joblib model with ``mlflow.sklearn.save_model``.

python mlflow_save.py MODEL.joblib SAMPLE.json OUTPUT_DIR
"""

from __future__ import annotations

import json
import sys

import joblib
import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature


def main(model_path: str, sample_path: str, output_dir: str) -> None:
    model = joblib.load(model_path)
    with open(sample_path) as f:
        sample = pd.DataFrame(json.load(f))
    mlflow.sklearn.save_model(model, output_dir, signature=infer_signature(sample, model.predict(sample)))


if __name__ == "__main__":
    main(*sys.argv[1:4])
