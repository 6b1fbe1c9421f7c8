"""Save, load back and predict: a model is stored only if its artifact survives its own format.

Each step that fails is named in the error (save, load or predict) with what the framework raised, so a
model that cannot be registered says why; bugs are not dressed up as a model's failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from shipyard.errors import ModelLoadError, ShipyardError, UnsupportedModelError
from shipyard.flavors.base import Flavor, Predictor, SavedModel

# Errors that are bugs (in Shipyard, or in the model's own code) rather than a model failing its round trip:
# they propagate untouched. Anything else is reported with the step it failed at, since framework errors share
# no base class to catch instead (LightGBMError and onnxruntime's Fail derive straight from Exception).
_BUGS: tuple[type[Exception], ...] = (NameError, AssertionError, SyntaxError)


def save(flavor: Flavor, model: Any, *, trusted: bool, name: str) -> SavedModel:
    """The model's bytes in its flavor's format; an object the flavor cannot write is unsupported."""
    with _step("save", flavor.name, name, UnsupportedModelError):
        return flavor.save(model, trusted=trusted)


def load_back(flavor: Flavor, saved: SavedModel, name: str) -> Predictor:
    """Load what was just saved, so a model that does not survive its own format is never stored."""
    with _step("load", flavor.name, name, ModelLoadError):
        return flavor.load(saved.data, saved.options, trusted=True)


def check_predictions(model: Any, predictor: Predictor, x: Any, flavor: str, name: str) -> None:
    """The stored artifact must predict what the live object predicts, on the sample."""
    original_predict = getattr(model, "predict", None)
    if not callable(original_predict):
        return
    try:
        expected = np.asarray(original_predict(x))
    except _BUGS:
        raise
    except Exception:
        # The live object wants another input form (an XGBoost Booster a DMatrix), so there is nothing to
        # compare; the stored artifact already predicted on the sample, and the flavor contract tests cover it.
        return
    with _step("predict", flavor, name, ModelLoadError):
        actual = np.asarray(predictor.predict(x))
    difference = _difference(expected, actual)
    if difference is not None:
        raise ModelLoadError(
            f"{_where('predict', flavor, name)}: the saved artifact does not reproduce the model's predictions "
            f"on sample_input ({difference}); nothing was registered"
        )


def _where(step: str, flavor: str, name: str) -> str:
    return f"{name!r} failed its {flavor} round trip (save, load, predict) at {step}"


@contextmanager
def _step(step: str, flavor: str, name: str, error: type[ShipyardError]) -> Iterator[None]:
    """Say at which step a model failed, and how; our own errors keep their class (and so their HTTP status)."""
    try:
        yield
    except ShipyardError as exc:
        raise type(exc)(f"{_where(step, flavor, name)}: {exc}") from exc
    except _BUGS:
        raise
    except Exception as exc:
        raise error(f"{_where(step, flavor, name)}: {type(exc).__name__}: {exc}; nothing was registered") from exc


def _difference(expected: np.ndarray, actual: np.ndarray) -> str | None:
    """Where the reloaded model's predictions part from the live model's, in words; None when they agree."""
    if expected.shape != actual.shape:
        return f"the model gives shape {expected.shape}, the reloaded artifact {actual.shape}"
    if expected.size == 0:
        return None
    if expected.dtype.kind in "fc" and actual.dtype.kind in "fc":
        equal = np.isclose(expected, actual, rtol=1e-6, atol=1e-9, equal_nan=True)
    else:
        equal = np.asarray(expected == actual)
        if equal.shape != expected.shape:  # a comparison NumPy could not make elementwise
            equal = np.full(expected.shape, bool(np.all(equal)))
    if expected.ndim == 0:
        if bool(equal):
            return None
        return f"the model gives {_plain(expected)!r}, the reloaded artifact {_plain(actual)!r}"
    rows = equal.reshape(len(equal), -1).all(axis=1)
    wrong = np.flatnonzero(~rows)
    if len(wrong) == 0:
        return None
    row = int(wrong[0])
    return (
        f"{len(wrong)} of {len(rows)} rows differ; first at row {row}: the model gives {_plain(expected[row])!r}, "
        f"the reloaded artifact {_plain(actual[row])!r}"
    )


def _plain(value: Any) -> Any:
    """A NumPy value as plain Python, so the message reads 1.5 rather than np.float64(1.5)."""
    return value.tolist() if isinstance(value, np.ndarray | np.generic) else value
