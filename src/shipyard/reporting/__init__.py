"""Renderers of the monitoring report: a self-contained offline HTML file and a Rich terminal view.

The report is the plain, JSON-safe dict that `MonitoringService.report()` returns and
`GET /v1/endpoints/{endpoint}/monitoring` answers. The renderers take it as a `Mapping` rather than a
typed object so that the CLI can render what a remote server sent, and so that a report saved as
JSON renders the same later. They import nothing else from Shipyard: any edge (CLI, HTTP routes,
dashboard) may use them.

Its shape (all values JSON-safe, None instead of NaN; any section may be null or empty: no traffic,
no labels, no sensitive feature, no reference profile; the renderers cope with every section
missing)::

    {
      "endpoint": "fraud",
      "generated_at": "2026-11-21T10:00:00+00:00",
      # range covered; window_seconds = size of one stored window
      "window": {"start": ISO, "end": ISO, "seconds": 3600, "window_seconds": 300},
      # requests refused before a version was chosen (malformed body…), and records the recorder had to drop
      "unrouted": {"requests": 3, "errors": {"400": 3}, "dropped": 0},
      # one entry per model version that served in the range (newest first)
      "versions": [
        {
          "version": "fraud:3",
          "arms": ["stable"],                             # arms it served in
          "operational": {"requests": 1200, "rows": 1500, "request_rate_per_s": 0.33,
                           "errors": {"422": 3, "500": 0}, "error_rate": 0.0025,
                           "latency_ms": {"p50": 1.2, "p95": 3.4, "p99": 7.9, "mean": 1.5},
                       "dropped": 0},                # requests not profiled because the recorder's buffer was full
          "drift": {                                      # null when the version has no reference profile
            "drifted": true, "drifted_features": ["f3", "f7"],
            "features": [                                 # drifted first, then by score
              {"feature": "f3", "kind": "numeric", "test": "psi", "score": 0.41, "threshold": 0.2, "drifted": true,
               "p_value": null, "scores": {"psi": 0.41, "ks": 0.22, "wasserstein": 0.8, "wasserstein_norm": 0.5},
               "rows": 1500, "reference": {"bins": ["<= -1.2", "(-1.2, -0.8]", "..."], "proportions": [0.1, ...]},
               "live": {"proportions": [0.02, ...]}, "note": null},
              {"feature": "country", "kind": "categorical", "test": "chi2", "score": 3.1, "threshold": 0.05,
           "drifted": false,
               "p_value": 0.54, "scores": {"chi2": 3.1, "js": 0.01}, "rows": 1500,
               "reference": {"bins": ["DE", "FR", "rare"], "proportions": [...]}, "live": {"proportions": [...]},
           "note": null}
            ],
            "prediction": { same shape as a feature item, feature = "prediction" } or null
          },
          "quality": {"rejected_requests": 3,
                      "features": [{"feature": "f3", "missing_rate": 0.01, "reference_missing_rate": 0.0,
                                    "out_of_range": 12, "out_of_range_rate": 0.008, "unseen": 0, "unseen_rate": 0.0,
                                    "type_violations": 2}],
                  "unknown_features": ["colour"]},            # sent, but not in the signature
          "performance": null or {"labelled": 1000, "kind": "classification",
                      "accuracy": 0.93, "precision": 0.9, "recall": 0.88, "f1": 0.89, "roc_auc": 0.97, "log_loss": 0.2,
                      "average": "binary",
                      "calibration": {"ece": 0.03, "method": "positive-class probability",
                                      "curve": [{"low": 0.0, "high": 0.1, "count": 40, "mean_predicted": 0.05,
                                             "fraction_positive": 0.04}, ...]},
                      # regression instead: "mae", "rmse", "r2", "bias"
                      "reward": {"n": 400, "mean": 0.61, "ci_low": 0.56, "ci_high": 0.66} or null},
          "estimated": null or {"method": "cbpe", "accuracy": 0.91, "rows": 1500, "mean_confidence": 0.95,
                            "calibrated": true,   # false: the model's own mean confidence, and "note" says why
                            "calibration": {"data": "training" or "holdout", "rows": 3000, "bins": 20} or null,
                            "note": null or "uncalibrated: registered without a training target",
                            "realised_accuracy": 0.93, "difference": -0.02},
          "fairness": null or {"feature": "gender", "positive": 1, "demographic_parity_difference": 0.04,
                               "equalized_odds_difference": 0.07,
                               "groups": [{"group": "F", "count": 500, "selection_rate": 0.3, "tpr": 0.8, "fpr": 0.1},
                                      ...]},
          "timeline": [                                   # one item per stored window, oldest first
            {"start": ISO, "end": ISO, "requests": 240, "error_rate": 0.0, "latency_p99_ms": 7.1,
             "drift_max_score": 0.4,   # the worst feature's severity: 1.0 = at its threshold
             "drifted_features": [], "accuracy": 0.94 or null,
             "estimated_accuracy": 0.92 or null, "reward_rate": 0.6 or null}
          ]
        }
      ]
    }
"""

from shipyard.reporting.html import render_html
from shipyard.reporting.terminal import render_terminal, summary_lines

__all__ = ["render_html", "render_terminal", "summary_lines"]
