"""Run with the project's python and SHIPYARD_HOME set: the rollouts benchmark's store, and its shadow count.

python shipyard_rollouts.py setup MODEL.joblib   register bench:1 and bench:2 (the same model) and create
                                                 the endpoints single, canary (50%) and shadow (100%)
python shipyard_rollouts.py status               print each rollout's status as JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import shipyard
from serving.model import load_frame
from shipyard.workspace import default_workspace

# Every gate off: the benchmark measures routing, and a noisy latency ratio must not roll the canary back.
NO_GATES = {"max_error_rate": None, "max_error_rate_ratio": None, "max_latency_ratio": None,
            "max_prediction_shift": None}  # fmt: skip


def setup(model_path: str) -> None:
    frame, _ = load_frame()
    model = joblib.load(model_path)
    stable = shipyard.register(model, "bench", sample_input=frame[:50], training_data=frame)
    candidate = shipyard.register(model, "bench", sample_input=frame[:50], training_data=frame)
    workspace = default_workspace()
    for name in ("single", "canary", "shadow"):
        workspace.endpoints.create(name, model=stable.ref)
    # A 24-hour step keeps the canary at 50% for the whole run.
    workspace.rollouts.start(
        "canary", to=candidate.ref, strategy="canary", steps="50,100", interval_s="24h", gates=NO_GATES
    )
    workspace.rollouts.start("shadow", to=candidate.ref, strategy="shadow", sample=1.0)
    print(json.dumps({"stable": stable.ref, "candidate": candidate.ref}))


def status() -> None:
    workspace = default_workspace()
    out = {}
    for endpoint in ("canary", "shadow"):
        view = workspace.rollouts.status(endpoint)
        out[endpoint] = {
            "status": view.state.status.value,
            "weight": view.state.weight,
            "shadow_requests": view.shadow.requests if view.shadow is not None else 0,
            "shadow_errors": view.shadow.errors if view.shadow is not None else 0,
            "arms": {arm: ev.requests for arm, ev in view.evidence.items()},
        }
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1:2] == ["setup"] and len(sys.argv) == 3:
        setup(sys.argv[2])
    elif sys.argv[1:] == ["status"]:
        status()
    else:
        raise SystemExit(__doc__)
