"""Run with the project's python and SHIPYARD_HOME set: register the joblib model as ``bench`` through the API.

python shipyard_register.py MODEL.joblib
"""

from __future__ import annotations

import sys
from pathlib import Path

import joblib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import shipyard
from serving.model import load_frame


def main(model_path: str) -> None:
    frame, _ = load_frame()
    version = shipyard.register(joblib.load(model_path), "bench", sample_input=frame[:50], training_data=frame)
    print(version.ref)


if __name__ == "__main__":
    main(sys.argv[1])
