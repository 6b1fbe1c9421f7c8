"""A retraining job's training set: feedback labels joined to the inputs the prediction log kept, for a window.

The same join as ``shipyard feedback export`` (``FeedbackService.joined``), narrowed to what a trainer needs:
the parent's feature columns under their own names and the label as ``_label``, one row per labelled
prediction whose inputs were logged. Rows the join cannot use are counted, not silently dropped, so the job's
log says why a window gave fewer rows than feedback items. The set is kept as a Parquet artifact, so a later
job can train on it again (``--include-training-data``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.artifacts.base import ArtifactStore
from shipyard.core.versions import ModelVersion
from shipyard.errors import InvalidArgumentError
from shipyard.services.feedback import FeedbackService
from shipyard.services.lineage import frame_hash

LABEL = "_label"
"""The target column a trainer reads (as in the feedback export)."""
ROW_ID_COLUMNS = ("_request_id", "_row")
KEPT_TAG = "shipyard.training_data"
"""The tag of a retrained version naming the sha256 of its training set, kept in the artifact store."""


@dataclass(frozen=True, slots=True)
class TrainingSet:
    """The rows a trainer gets, with where they came from; ``notes`` are lines for the job's log."""

    frame: pd.DataFrame
    features: tuple[str, ...]
    feedback_rows: int
    previous_rows: int
    notes: tuple[str, ...]

    @property
    def data_hash(self) -> str:
        """The features' content hash, as registration computes a version's ``training_data_hash``."""
        return frame_hash(self.frame[list(self.features)])

    def parquet(self) -> bytes:
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(self.frame, preserve_index=False), sink)
        return sink.getvalue()


def build(
    feedback: FeedbackService,
    artifacts: ArtifactStore,
    parent: ModelVersion,
    *,
    endpoint: str,
    since: datetime | None,
    until: datetime,
    include_previous: bool,
) -> TrainingSet:
    """The joined rows of ``endpoint`` observed in [since, until), plus the parent's kept set when asked."""
    features = tuple(parent.signature.names)
    joined = feedback.joined(endpoint, since=since, until=until).to_pandas()
    notes: list[str] = [f"feedback items in the window: {len(joined)}"]
    if len(joined):
        labelled = joined[joined[LABEL].notna()] if LABEL in joined.columns else joined.iloc[0:0]
        unlabelled = len(joined) - len(labelled)
        present = [f for f in features if f in labelled.columns]
        if len(present) < len(features):
            logged = labelled.iloc[0:0]
        else:
            logged = labelled[labelled["_version"].notna()] if "_version" in labelled.columns else labelled.iloc[0:0]
        if unlabelled:
            notes.append(f"left out {unlabelled} item(s) without a label (rewards only)")
        if len(labelled) - len(logged):
            notes.append(
                f"left out {len(labelled) - len(logged)} labelled item(s) whose prediction was not logged "
                "(sampled out, or logged by a version with other features)"
            )
        rows = logged[[*ROW_ID_COLUMNS, *features, LABEL]].reset_index(drop=True)
    else:
        rows = pd.DataFrame({c: pd.Series(dtype="object") for c in (*ROW_ID_COLUMNS, *features, LABEL)})
    feedback_rows = len(rows)
    previous_rows = 0
    if include_previous:
        kept = parent.tags.get(KEPT_TAG)
        if kept is None:
            notes.append(
                f"{parent.ref} kept no training set (it was not trained by a retraining job): feedback rows only"
            )
        else:
            previous = pd.read_parquet(io.BytesIO(artifacts.get(kept, label=f"training set of {parent.ref}")))
            previous = previous[[c for c in (*ROW_ID_COLUMNS, *features, LABEL) if c in previous.columns]]
            previous_rows = len(previous)
            rows = pd.concat([previous, rows], ignore_index=True)
            notes.append(f"added {previous_rows} row(s) of {parent.ref}'s training set (sha256 {kept[:12]})")
    if len(rows) == 0:
        window = f"since {since.isoformat()}" if since is not None else "since the endpoint first served"
        raise InvalidArgumentError(
            f"no training rows for {endpoint!r} {window}: no labelled feedback joins a logged prediction "
            "(send labels to POST /v1/endpoints/{endpoint}/feedback, or widen --since); nothing was trained"
        )
    notes.append(f"training rows: {len(rows)} ({feedback_rows} from feedback, {previous_rows} kept before)")
    return TrainingSet(rows, features, feedback_rows, previous_rows, tuple(notes))
