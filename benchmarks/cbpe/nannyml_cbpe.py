"""Run by NannyML's own Python: fit ``nannyml.CBPE`` on the labelled reference, estimate the analysis rows
as one chunk; print the fit and estimate times and the estimates as one JSON line."""

import json
import sys
import time
import warnings

import nannyml
import pandas as pd

METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]


def main() -> None:
    warnings.filterwarnings("ignore")
    reference, analysis = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
    classes = sorted(int(c[2:]) for c in reference.columns if c.startswith("p_"))
    if len(classes) == 2:
        proba, problem = "p_1", "classification_binary"
    else:
        proba, problem = {c: f"p_{c}" for c in classes}, "classification_multiclass"
    cbpe = nannyml.CBPE(
        y_pred_proba=proba, y_pred="y_pred", y_true="y_true", metrics=METRICS, problem_type=problem, chunk_number=1
    )
    started = time.perf_counter()
    cbpe.fit(reference)
    fitted = time.perf_counter()
    result = cbpe.estimate(analysis).filter(period="analysis").to_df()
    done = time.perf_counter()
    estimates = {}
    for metric in METRICS:
        column = next(c for c in result.columns if c[0] == metric and c[1] == "value")
        estimates[metric] = float(result[column].iloc[0])
    print(
        json.dumps(
            {
                "fit_s": fitted - started,
                "estimate_s": done - fitted,
                "estimates": estimates,
                "version": nannyml.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
