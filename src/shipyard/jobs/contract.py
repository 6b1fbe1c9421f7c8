"""What a trainer receives: the contract between Shipyard and the user's training code.

A callable trainer (``shipyard models set-trainer fraud train:main``) is called as
``main(data_path, parent)`` and returns the fitted model (any object a flavor saves: a scikit-learn estimator,
an XGBoost or LightGBM booster, ...). ``data_path`` is a Parquet file with the parent's feature columns,
the label as ``_label``, and ``_request_id``/``_row`` naming the prediction each row came from.

A command trainer (``--command 'python train.py'``) runs in the project directory with these variables set,
and writes exactly one model file named ``model.<ext>`` (``.skops``, ``.onnx``, ``.json`` for XGBoost,
``.txt`` for LightGBM, ``.pt``) into ``$SHIPYARD_MODEL_OUTPUT``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRAINING_DATA_ENV = "SHIPYARD_TRAINING_DATA"
"""The training set's Parquet file."""
MODEL_OUTPUT_ENV = "SHIPYARD_MODEL_OUTPUT"
"""The directory a command trainer writes ``model.<ext>`` into."""
PARENT_REF_ENV = "SHIPYARD_PARENT_REF"
"""The version being retrained, e.g. ``fraud:3``; ``shipyard.load`` loads it (the store is in the environment)."""
PARENT_ARTIFACT_ENV = "SHIPYARD_PARENT_ARTIFACT"
"""The parent's artifact file as its flavor saved it (verified against its sha256 before it was written)."""
TARGET_COLUMN_ENV = "SHIPYARD_TARGET_COLUMN"
"""The label's column in the training set: ``_label``."""
JOB_ID_ENV = "SHIPYARD_JOB_ID"


@dataclass(frozen=True, slots=True)
class ParentVersion:
    """The version being retrained: its ref, flavor and features, and where its artifact lies on disk."""

    ref: str
    flavor: str
    features: tuple[str, ...]
    artifact_path: Path
    target_column: str = "_label"

    def load(self) -> Any:
        """The parent, loaded and verified as ``shipyard.load(ref)`` would (e.g. to warm-start from it)."""
        import shipyard

        return shipyard.load(self.ref)
