"""Run by NannyML's own Python (see ``tests/peers.py``), never imported by the suite.

Reads a JSON list of cases (reference and analysis Parquet files, the model's classes), fits
``nannyml.CBPE`` on each reference and prints one JSON object: case name -> estimated accuracy of the
whole analysis set (one chunk).
"""

import json
import sys
import warnings

import nannyml
import pandas as pd


def estimate(case: dict) -> float:
    reference = pd.read_parquet(case["reference"])
    analysis = pd.read_parquet(case["analysis"])
    classes = case["classes"]
    if len(classes) == 2:
        proba, problem = case["proba_columns"][1], "classification_binary"
    else:
        proba, problem = dict(zip(classes, case["proba_columns"], strict=True)), "classification_multiclass"
    cbpe = nannyml.CBPE(
        y_pred_proba=proba,
        y_pred="y_pred",
        y_true="y_true",
        metrics=["accuracy"],
        problem_type=problem,
        chunk_number=1,
    )
    cbpe.fit(reference)
    result = cbpe.estimate(analysis).filter(period="analysis").to_df()
    column = next(c for c in result.columns if c[0] == "accuracy" and c[1] == "value")
    return float(result[column].iloc[0])


def main() -> None:
    warnings.filterwarnings("ignore")
    with open(sys.argv[1]) as file:
        cases = json.load(file)
    print(json.dumps({case["name"]: estimate(case) for case in cases}))


if __name__ == "__main__":
    main()
