"""CBPE for 1,000,000 predictions: Shipyard against NannyML's CBPE, on the same files, in the same run.

Seeded model-like probabilities (``cbpe/data.py``): a labelled reference of 50,000 rows and 1,000,000
unlabelled analysis rows, binary and 4-class, the model overconfident and the analysis rows shifted. Both
tools fit on the reference (per-class isotonic calibration where it lowers the cross-validated error) and
estimate accuracy, precision, recall, F1 and ROC AUC (macro for 4 classes) of the analysis rows as one chunk:

- Shipyard, in a fresh process: from the raw probabilities to the estimates, i.e. the calibrated class
  histograms a serving worker keeps per window (``ClassProbabilities.of``) plus the estimate from them;
  fastest of three. The calibrator fit (registration's work) is timed apart.
- NannyML 0.13.1 in its own venv: ``CBPE.fit`` on the reference and ``CBPE.estimate`` on the analysis rows,
  timed apart; run once.

The issue's target: Shipyard's estimate at least 10x faster than NannyML's. The largest gap between the two
tools' estimates is reported beside the times (the tests hold it to 0.01).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cbpe.peer import ensure_nannyml

HERE = Path(__file__).resolve().parent / "cbpe"
TARGET_SPEEDUP = 10.0


def _child(command: list[str], *, timeout_s: float) -> dict[str, Any]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(command[1]).name} failed: {(done.stderr or done.stdout).strip()[-800:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run(*, quick: bool = False, peers: bool = True) -> dict[str, Any]:
    rows = 100_000 if quick else 1_000_000
    results: dict[str, Any] = {"rows": rows, "cases": {}}
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-cbpe-") as tmp:
        subprocess.run([sys.executable, str(HERE / "data.py"), tmp, str(rows)], check=True, timeout=900)
        for classes in (2, 4):
            reference, analysis = (
                str(Path(tmp) / f"reference_{classes}.parquet"),
                str(Path(tmp) / f"analysis_{classes}.parquet"),
            )
            case: dict[str, Any] = {
                "shipyard": _child([sys.executable, str(HERE / "shipyard_cbpe.py"), reference, analysis], timeout_s=900)
            }
            if not peers:
                case["nannyml"] = {"skipped": "SHIPYARD_BENCH_PEERS=0"}
            else:
                try:
                    python = ensure_nannyml()
                    case["nannyml"] = _child(
                        [str(python), str(HERE / "nannyml_cbpe.py"), reference, analysis], timeout_s=1800
                    )
                except Exception as exc:  # a peer that cannot run is reported, not fatal to the other benches
                    traceback.print_exc()
                    case["nannyml"] = {"error": f"{type(exc).__name__}: {exc}"}
            ours, theirs = case["shipyard"], case["nannyml"]
            if "estimate_s" in theirs:
                case["speedup"] = theirs["estimate_s"] / ours["estimate_s"]
                case["fit_speedup"] = theirs["fit_s"] / ours["fit_s"]
                case["max_gap"] = max(abs(ours["estimates"][m] - theirs["estimates"][m]) for m in ours["estimates"])
            results["cases"][str(classes)] = case
    return results


def report(results: dict[str, Any]) -> str:
    lines = [
        "## CBPE (label-free classification performance)",
        "",
        f"{results['rows']:,} unlabelled predictions estimated as one chunk after fitting on 50,000 labelled "
        "reference rows (seeded, overconfident model, shifted analysis rows). Shipyard: from raw probabilities "
        "to the estimates (calibrated class histograms + estimate), fastest of 3 in a fresh process; NannyML's "
        f"CBPE in its own venv, once. Target: estimate >= {TARGET_SPEEDUP:.0f}x faster than NannyML.",
        "",
        "| classes | Shipyard estimate s | NannyML estimate s | speedup | Shipyard fit s | NannyML fit s "
        "| largest gap |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for classes, case in results["cases"].items():
        ours, theirs = case["shipyard"], case["nannyml"]
        if "estimate_s" not in theirs:
            why = theirs.get("skipped") or theirs.get("error", "no result")
            why = " ".join(str(why).split())[:200]
            lines.append(f"| {classes} | {ours['estimate_s']:.3f} | - | - | {ours['fit_s']:.2f} | - | {why} |")
            continue
        lines.append(
            f"| {classes} | {ours['estimate_s']:.3f} | {theirs['estimate_s']:.2f} | {case['speedup']:.0f}x "
            f"| {ours['fit_s']:.2f} | {theirs['fit_s']:.2f} | {case['max_gap']:.1e} |"
        )
    return "\n".join(lines)
