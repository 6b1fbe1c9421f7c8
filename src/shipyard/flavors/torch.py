"""PyTorch models as TorchScript, which carries its own code, so loading needs no Python class.

A plain ``nn.Module`` is refused with a hint: its ``forward`` lives in the user's Python source, which a
state dict or a pickle would need at load time. TorchScript is deprecated upstream in favour of
``torch.export``; it is what the flavor reads today, and its deprecation warnings are kept out of
serving logs.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.core.inputs import InputLayout
from shipyard.errors import ModelLoadError, UnsupportedModelError, missing_dependency
from shipyard.flavors.base import Predictor, SavedModel, jsonable_params


class TorchPredictor:
    """Calls the scripted module on a float32 tensor, without autograd, and hands back NumPy."""

    classes: tuple[Any, ...] | None = None

    def __init__(self, module: Any) -> None:
        import torch

        self._torch = torch
        self.module = module.eval()

    def predict(self, x: Any) -> np.ndarray:
        torch = self._torch
        tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        with torch.inference_mode():
            output = self.module(tensor)
        array = output.detach().cpu().numpy()
        return array.ravel() if array.ndim == 2 and array.shape[1] == 1 else array

    def predict_proba(self, x: Any) -> np.ndarray | None:
        return None


class TorchFlavor:
    """TorchScript modules (``torch.jit.script`` / ``torch.jit.trace``); plain modules get a how-to."""

    name = "torch"

    def handles(self, model: Any) -> bool:
        # nn.Module is claimed too, so that it reaches save()'s explanation instead of the pyfunc flavor.
        return _is_scripted(type(model)) or _is_module(type(model))

    def save(self, model: Any, *, trusted: bool = False) -> SavedModel:
        torch = _require_torch()
        if not _is_scripted(type(model)):
            raise UnsupportedModelError(
                f"{type(model).__name__} is a plain torch.nn.Module, whose code lives in your Python source "
                "and cannot be stored with it; register torch.jit.script(model) (or torch.jit.trace(model, "
                "example_input)) instead"
            )
        buffer = io.BytesIO()
        with _quiet_deprecation():
            torch.jit.save(model, buffer)
        return SavedModel(buffer.getvalue(), {"format": "torchscript", "input": InputLayout.ARRAY.value})

    def load(self, data: bytes, options: Mapping[str, Any], *, trusted: bool = False) -> Predictor:
        return TorchPredictor(_jit_load(data, what="the artifact"))

    def hyperparameters(self, model: Any) -> dict[str, Any]:
        parameters = list(model.parameters()) if hasattr(model, "parameters") else []
        return jsonable_params(
            {
                "module": getattr(model, "original_name", type(model).__name__),
                "parameters": int(sum(p.numel() for p in parameters)),
                "trainable_parameters": int(sum(p.numel() for p in parameters if p.requires_grad)),
            }
        )

    def feature_names(self, model: Any) -> tuple[str, ...] | None:
        return None

    def read_file(self, path: str, *, trusted: bool = False) -> Any:
        file = Path(path)
        return _jit_load(file.read_bytes(), what=file.name)


def _jit_load(data: bytes, *, what: str) -> Any:
    torch = _require_torch()
    try:
        with _quiet_deprecation():
            module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as exc:  # RuntimeError from the zip reader or the TorchScript deserialiser
        text = str(exc).strip().splitlines()
        raise ModelLoadError(
            f"{what} is not a readable TorchScript model: {text[0] if text else type(exc).__name__}"
        ) from exc
    return module.eval()


@contextmanager
def _quiet_deprecation() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r"`torch\.jit\.")
        yield


def _is_scripted(cls: type) -> bool:
    return any(k.__module__.startswith("torch.jit") and k.__name__ == "ScriptModule" for k in cls.__mro__)


def _is_module(cls: type) -> bool:
    return any(k.__module__ == "torch.nn.modules.module" and k.__name__ == "Module" for k in cls.__mro__)


def _require_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise missing_dependency("torch", "torch", "the torch flavor") from exc
    return torch
