"""Content-addressed artifact stores: every blob is named by, and checked against, its sha256."""

from shipyard.artifacts.base import ArtifactStore
from shipyard.artifacts.factory import open_artifact_store

__all__ = ["ArtifactStore", "open_artifact_store"]
