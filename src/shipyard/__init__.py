"""Shipyard: take trained models to production and keep them healthy there."""

from shipyard.api import convert, load, register
from shipyard.config import Settings
from shipyard.core.refs import ModelRef
from shipyard.core.signature import FeatureSpec, FeatureType, OutputKind, OutputSpec, Signature
from shipyard.core.versions import ModelVersion, VersionStatus
from shipyard.errors import ShipyardError
from shipyard.flavors.loaded import LoadedModel, Prediction
from shipyard.workspace import Workspace

__version__ = "0.1.0"

__all__ = [
    "FeatureSpec",
    "FeatureType",
    "LoadedModel",
    "ModelRef",
    "ModelVersion",
    "OutputKind",
    "OutputSpec",
    "Prediction",
    "Settings",
    "ShipyardError",
    "Signature",
    "VersionStatus",
    "Workspace",
    "__version__",
    "convert",
    "load",
    "register",
]
