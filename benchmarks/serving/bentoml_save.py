"""Run inside the bentoml venv (with BENTOML_HOME set): save the joblib model to BentoML's model store.

python bentoml_save.py MODEL.joblib NAME
"""

from __future__ import annotations

import sys

import bentoml
import joblib


def main(model_path: str, name: str) -> None:
    print(bentoml.sklearn.save_model(name, joblib.load(model_path)).tag)


if __name__ == "__main__":
    main(*sys.argv[1:3])
