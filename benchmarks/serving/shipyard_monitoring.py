"""Run with the project's python and SHIPYARD_HOME set: the monitoring benchmark's store and its log count.

python shipyard_monitoring.py setup MODEL.joblib   register bench:1 with its training data; endpoint bench
python shipyard_monitoring.py count                print the prediction log's rows and the stored windows as JSON
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import joblib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import shipyard
from serving.model import load_frame
from shipyard.store import monitoring as windows_repo
from shipyard.workspace import default_workspace


def setup(model_path: str) -> None:
    frame, target = load_frame()
    version = shipyard.register(
        joblib.load(model_path), "bench", sample_input=frame[:50], training_data=frame, training_target=target
    )
    default_workspace().endpoints.create("bench", model=version.ref)
    # The monitored server does all of its per-row work: profiles against the reference, the calibrated
    # estimate, and an outlier score per row; the report says which the version carries.
    print(
        json.dumps(
            {
                "version": version.ref,
                "reference_profile": version.reference_profile is not None,
                "confidence_calibrator": version.confidence_calibrator is not None,
                "outlier_model": version.outlier_model.method if version.outlier_model is not None else None,
            }
        )
    )


def count() -> None:
    workspace = default_workspace()
    now = datetime.now(UTC)
    with workspace.db.read() as conn:
        stored = windows_repo.windows(conn, "bench", since=now - timedelta(days=1), until=now + timedelta(days=1))
    print(
        json.dumps(
            {
                "rows": workspace.prediction_log.count("bench"),
                "requests": len(
                    set(workspace.prediction_log.query("bench", columns=["_request_id"]).column(0).to_pylist())
                ),
                "windows": len(stored),
                "window_requests": sum(int(w.profile.get("requests", 0)) for w in stored),
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["setup"] and len(sys.argv) == 3:
        setup(sys.argv[2])
    elif sys.argv[1:2] == ["count"]:
        count()
    else:
        sys.exit(__doc__)
