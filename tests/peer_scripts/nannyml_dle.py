"""Run by NannyML's own Python (see ``tests/peers.py``), never imported by the suite.

Reads a JSON list of cases (reference and analysis Parquet files with the feature columns, ``y_pred`` and, in
the reference, ``y_true``), fits ``nannyml.DLE`` on each reference at its default settings and prints one JSON
object: case name -> {"mae": ..., "rmse": ...}, NannyML's estimates for the whole analysis set (one chunk).
"""

import json
import sys
import warnings

import nannyml
import pandas as pd


def estimate(case: dict) -> dict:
    reference = pd.read_parquet(case["reference"])
    analysis = pd.read_parquet(case["analysis"])
    dle = nannyml.DLE(
        feature_column_names=case["features"],
        y_pred="y_pred",
        y_true="y_true",
        metrics=["mae", "rmse"],
        chunk_number=1,
    )
    dle.fit(reference)
    result = dle.estimate(analysis).filter(period="analysis").to_df()
    return {
        metric: float(result[next(c for c in result.columns if c[0] == metric and c[1] == "value")].iloc[0])
        for metric in ("mae", "rmse")
    }


def main() -> None:
    warnings.filterwarnings("ignore")
    with open(sys.argv[1]) as file:
        cases = json.load(file)
    print(json.dumps({case["name"]: estimate(case) for case in cases}))


if __name__ == "__main__":
    main()
