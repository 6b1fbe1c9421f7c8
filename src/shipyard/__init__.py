"""Shipyard: take trained models to production and keep them healthy there.

The public names are loaded on first use (PEP 562), so ``import shipyard`` and the ``shipyard`` command
start in a fraction of a second instead of importing pandas, scikit-learn and SQLAlchemy up front.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Public name -> the module that defines it; imported when the name is first looked up.
_EXPORTS: dict[str, str] = {
    "Client": "shipyard.client",
    "FeatureSpec": "shipyard.core.signature",
    "FeatureType": "shipyard.core.signature",
    "LoadedModel": "shipyard.flavors.loaded",
    "ModelRef": "shipyard.core.refs",
    "ModelVersion": "shipyard.core.versions",
    "OutputKind": "shipyard.core.signature",
    "OutputSpec": "shipyard.core.signature",
    "Prediction": "shipyard.flavors.loaded",
    "PredictResult": "shipyard.client",
    "Settings": "shipyard.config",
    "ShipyardError": "shipyard.errors",
    "Signature": "shipyard.core.signature",
    "VersionStatus": "shipyard.core.versions",
    "Workspace": "shipyard.workspace",
    "compare": "shipyard.api",
    "convert": "shipyard.api",
    "load": "shipyard.api",
    "register": "shipyard.api",
    "validate": "shipyard.api",
    "__version__": "shipyard.version",
}

__all__ = [
    "Client",
    "FeatureSpec",
    "FeatureType",
    "LoadedModel",
    "ModelRef",
    "ModelVersion",
    "OutputKind",
    "OutputSpec",
    "PredictResult",
    "Prediction",
    "Settings",
    "ShipyardError",
    "Signature",
    "VersionStatus",
    "Workspace",
    "__version__",
    "compare",
    "convert",
    "load",
    "register",
    "validate",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ below does the importing
    from shipyard.api import compare, convert, load, register, validate
    from shipyard.client import Client, PredictResult
    from shipyard.config import Settings
    from shipyard.core.refs import ModelRef
    from shipyard.core.signature import FeatureSpec, FeatureType, OutputKind, OutputSpec, Signature
    from shipyard.core.versions import ModelVersion, VersionStatus
    from shipyard.errors import ShipyardError
    from shipyard.flavors.loaded import LoadedModel, Prediction
    from shipyard.version import __version__
    from shipyard.workspace import Workspace


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use and keep the name here, so later lookups are plain."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
