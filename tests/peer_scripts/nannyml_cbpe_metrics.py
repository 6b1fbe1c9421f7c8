"""Run by NannyML's own Python (see ``tests/peers.py``), never imported by the suite.

Reads a JSON list of cases (reference and analysis Parquet files, the model's classes), fits ``nannyml.CBPE``
with accuracy, precision, recall, F1 and ROC AUC on each reference, estimates the whole analysis set as one
chunk, and prints one JSON object: case name -> {metric: estimate, "seconds": fit + estimate time}.
"""

import json
import sys
import time
import warnings

import nannyml
import pandas as pd

METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]


def estimate(case: dict) -> dict:
    reference = pd.read_parquet(case["reference"])
    analysis = pd.read_parquet(case["analysis"])
    classes = case["classes"]
    if len(classes) == 2:
        proba, problem = case["proba_columns"][1], "classification_binary"
    else:
        proba, problem = dict(zip(classes, case["proba_columns"], strict=True)), "classification_multiclass"
    started = time.perf_counter()
    cbpe = nannyml.CBPE(
        y_pred_proba=proba,
        y_pred="y_pred",
        y_true="y_true",
        metrics=METRICS,
        problem_type=problem,
        chunk_number=1,
    )
    cbpe.fit(reference)
    result = cbpe.estimate(analysis).filter(period="analysis").to_df()
    seconds = time.perf_counter() - started
    out = {"seconds": seconds}
    for metric in METRICS:
        column = next(c for c in result.columns if c[0] == metric and c[1] == "value")
        out[metric] = float(result[column].iloc[0])
    return out


def main() -> None:
    warnings.filterwarnings("ignore")
    with open(sys.argv[1]) as file:
        cases = json.load(file)
    print(json.dumps({case["name"]: estimate(case) for case in cases}))


if __name__ == "__main__":
    main()
