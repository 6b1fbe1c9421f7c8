"""Find the flavor for a live object, a file or a name, importing only the one needed."""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidArgumentError, UnsupportedModelError
from shipyard.flavors.base import Flavor

# Order matters: XGBoost and LightGBM estimators are scikit-learn estimators too, and anything with a
# ``predict`` method is a pyfunc, so the specific flavors are asked first.
_FLAVORS: dict[str, str] = {
    "onnx": "shipyard.flavors.onnx:OnnxFlavor",
    "xgboost": "shipyard.flavors.xgboost:XGBoostFlavor",
    "lightgbm": "shipyard.flavors.lightgbm:LightGBMFlavor",
    "torch": "shipyard.flavors.torch:TorchFlavor",
    "sklearn": "shipyard.flavors.sklearn:SklearnFlavor",
    "pyfunc": "shipyard.flavors.pyfunc:PyfuncFlavor",
}

FLAVOR_NAMES: tuple[str, ...] = tuple(_FLAVORS)


@cache
def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``; an unknown name lists the known ones."""
    try:
        target = _FLAVORS[name]
    except KeyError:
        raise InvalidArgumentError(f"unknown flavor {name!r}; choose one of: {', '.join(FLAVOR_NAMES)}") from None
    module_name, _, attr = target.partition(":")
    flavor: Flavor = getattr(importlib.import_module(module_name), attr)()
    return flavor


def detect_flavor(model: Any) -> Flavor:
    """The flavor that can save ``model``; an unsupported object gets an error naming its type."""
    for name in FLAVOR_NAMES:
        flavor = get_flavor(name)
        if flavor.handles(model):
            return flavor
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    raise UnsupportedModelError(
        f"cannot register an object of type {kind}: it is not a scikit-learn, XGBoost, LightGBM, ONNX "
        "or TorchScript model, and has no predict() method for the pyfunc flavor"
    )


_SUFFIXES: dict[str, str] = {
    ".skops": "sklearn",
    ".pkl": "sklearn",
    ".pickle": "sklearn",
    ".joblib": "sklearn",
    ".onnx": "onnx",
    ".ubj": "xgboost",
    ".xgb": "xgboost",
    ".lgb": "lightgbm",
    ".pt": "torch",
    ".pth": "torch",
    ".torchscript": "torch",
    ".py": "pyfunc",
}


def flavor_for_file(path: str) -> Flavor:
    """Guess a file's flavor from its name and, for ambiguous text formats, its first bytes."""
    # A pyfunc is named as ``my_model.py:MyModel``: the source file and the class in it.
    file = Path(path.partition(".py:")[0] + ".py" if ".py:" in path else path)
    suffix = file.suffix.lower()
    if suffix in _SUFFIXES:
        return get_flavor(_SUFFIXES[suffix])
    if suffix in (".json", ".txt", ".model", ".bin", ""):
        try:
            head = file.read_bytes()[:4096]
        except OSError:
            head = b""
        if b'"learner"' in head:
            return get_flavor("xgboost")
        if head.startswith(b"tree\n") or b"\nversion=v" in head:
            return get_flavor("lightgbm")
    raise UnsupportedModelError(
        f"cannot tell the flavor of {str(file)!r} from its name; pass --flavor with one of: {', '.join(FLAVOR_NAMES)}"
    )
