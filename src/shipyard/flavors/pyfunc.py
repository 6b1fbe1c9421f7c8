"""Any object with a ``predict`` method, stored together with the source file of its class.

The artifact is a zip with the module's source (``source.py``), which class to build (``meta.json``)
and the instance's attributes (``state.skops``). Loading one EXECUTES THAT SOURCE: running the user's
code is what a pyfunc is, so a pyfunc loads only for a caller who passes trusted=True (the registry
passes the trust its registering caller gave). A pickle of the attributes is written only with
trusted=True too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import pickle
import sys
import types
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.core.inputs import InputLayout
from shipyard.errors import ModelLoadError, UnsupportedModelError, UntrustedArtifactError
from shipyard.flavors import skops_canonical, skops_trust
from shipyard.flavors.base import Predictor, SavedModel, jsonable_params, plain_classes
from shipyard.flavors.skops_trust import skops_io

FORMAT = "pyfunc-zip"
SOURCE, META, STATE_SKOPS, STATE_PICKLE = "source.py", "meta.json", "state.skops", "state.pickle"
# Fixed zip timestamps so that the same source and state give the same bytes (and the same sha256).
_EPOCH = (1980, 1, 1, 0, 0, 0)
_LOADED_PREFIX = "shipyard_pyfunc_"


class PyfuncPredictor:
    """Calls the rebuilt instance's own ``predict`` / ``predict_proba`` on a DataFrame."""

    def __init__(self, instance: Any) -> None:
        self.instance = instance
        classes = getattr(instance, "classes_", None)
        self.classes: tuple[Any, ...] | None = plain_classes(classes)
        self._predict = instance.predict
        proba = getattr(instance, "predict_proba", None)
        self._proba = proba if callable(proba) else None

    def predict(self, x: Any) -> np.ndarray:
        return np.asarray(self._predict(x))

    def predict_proba(self, x: Any) -> np.ndarray | None:
        return np.asarray(self._proba(x)) if self._proba is not None else None


class PyfuncFlavor:
    """The fallback for models no framework flavor knows: a class from a module file, with ``predict``."""

    name = "pyfunc"

    def handles(self, model: Any) -> bool:
        return not isinstance(model, type) and callable(getattr(model, "predict", None))

    def save(self, model: Any, *, trusted: bool = False) -> SavedModel:
        cls = type(model)
        source = _class_source(cls)
        try:
            state = dict(vars(model))
        except TypeError as exc:
            raise UnsupportedModelError(
                f"{cls.__qualname__} keeps its attributes in __slots__, not __dict__; the pyfunc flavor "
                "stores an instance's __dict__"
            ) from exc
        state_name, state_bytes = _dump_state(cls.__qualname__, state, trusted=trusted)
        meta = {"module": cls.__module__, "qualname": cls.__qualname__, "state": state_name}
        data = _zip({SOURCE: source, META: json.dumps(meta, sort_keys=True).encode(), state_name: state_bytes})
        options = {
            "format": FORMAT,
            "input": InputLayout.FRAME.value,
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "state": "pickle" if state_name == STATE_PICKLE else "skops",
        }
        return SavedModel(data, options)

    def load(self, data: bytes, options: Mapping[str, Any], *, trusted: bool = False) -> Predictor:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                meta = json.loads(archive.read(META))
                source = archive.read(SOURCE)
                state_name = str(meta["state"])
                state_bytes = archive.read(state_name)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
            raise ModelLoadError(f"the artifact is not a pyfunc archive: {exc}") from exc
        if not trusted:
            raise UntrustedArtifactError(
                f"it is a pyfunc, and loading it runs its stored source (module {meta.get('module', '?')!r}); "
                "load it with trusted=True (register with --trusted) only if you vouch for that code"
            )
        name = _LOADED_PREFIX + hashlib.sha256(data).hexdigest()[:16]
        module = _source_module(name, source, origin=str(meta.get("module", "?")))
        cls = _resolve(module, str(meta["qualname"]))
        with _aliased(str(meta["module"]), module):
            if state_name == STATE_PICKLE:
                state = _unpickle(state_bytes, original=str(meta["module"]), module=module)
            else:
                state = skops_trust.loads(state_bytes, trusted=trusted)
        if not isinstance(state, dict):
            raise ModelLoadError(f"the pyfunc state is a {type(state).__name__}, not a dict of attributes")
        instance = cls.__new__(cls)
        instance.__dict__.update(state)
        return PyfuncPredictor(instance)

    def hyperparameters(self, model: Any) -> dict[str, Any]:
        get_params = getattr(model, "get_params", None)
        if callable(get_params):
            try:
                return jsonable_params(get_params())
            except Exception:  # a user class with a broken get_params still registers
                return {}
        # Public plain settings only: arrays and fitted objects are state, not hyperparameters.
        plain = {
            k: v
            for k, v in getattr(model, "__dict__", {}).items()
            if not k.startswith("_") and not k.endswith("_") and (v is None or isinstance(v, bool | int | float | str))
        }
        return jsonable_params(plain)

    def feature_names(self, model: Any) -> tuple[str, ...] | None:
        names = getattr(model, "feature_names_in_", None)
        return tuple(str(n) for n in names) if names is not None else None

    def read_file(self, path: str, *, trusted: bool = False) -> Any:
        file_part, sep, class_name = path.rpartition(":")
        if not sep or not file_part.endswith(".py") or not class_name:
            raise UnsupportedModelError(f"a pyfunc is named as 'path/to/my_model.py:ClassName'; got {path!r}")
        file = Path(file_part).resolve()
        if not file.is_file():
            raise UnsupportedModelError(f"no such file {str(file)!r} for pyfunc {path!r}")
        module = _import_file(file)
        cls = _resolve(module, class_name)
        try:
            return cls()
        except TypeError as exc:
            raise UnsupportedModelError(
                f"{class_name}() cannot be built without arguments ({exc}); give its __init__ defaults, or "
                "register an instance from Python"
            ) from exc


def _class_source(cls: type) -> bytes:
    """The text of the file that defines ``cls``, refused when no such file can be read again."""
    module_name = cls.__module__
    if module_name == "__main__":
        raise UnsupportedModelError(
            f"{cls.__qualname__} is defined in __main__ (a script or a notebook), so its code cannot be "
            "stored with it; move the class into a module file (e.g. my_model.py), import it from there, "
            "and register an instance of the imported class"
        )
    if "<locals>" in cls.__qualname__:
        raise UnsupportedModelError(
            f"{cls.__qualname__} is defined inside a function; define it at the top level of a module file "
            "so that it can be rebuilt when the model is loaded"
        )
    module = sys.modules.get(module_name)
    origin = getattr(module, "__file__", None)
    if origin is None or not str(origin).endswith(".py"):
        raise UnsupportedModelError(
            f"{cls.__qualname__} comes from module {module_name!r}, which has no .py source file; move the "
            "class into a module file (e.g. my_model.py)"
        )
    try:
        return Path(origin).read_bytes()
    except OSError as exc:
        raise UnsupportedModelError(f"cannot read the source of {cls.__qualname__} from {origin}: {exc}") from exc


def _dump_state(qualname: str, state: dict[str, Any], *, trusted: bool) -> tuple[str, bytes]:
    try:
        return STATE_SKOPS, skops_canonical.dumps(state)
    except Exception as exc:  # skops raises TypeError and others for objects it cannot represent
        culprit = _unserialisable_attribute(state)
        where = f"attribute {culprit!r} ({type(state[culprit]).__name__})" if culprit else "its attributes"
        if trusted:
            try:
                return STATE_PICKLE, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as pickle_exc:
                raise UnsupportedModelError(
                    f"cannot store {qualname}: neither skops nor pickle can serialise {where}: {pickle_exc}"
                ) from pickle_exc
        raise UnsupportedModelError(
            f"cannot store {qualname}: skops cannot serialise {where}: {exc}; keep only arrays, numbers, "
            "strings and scikit-learn objects as attributes, or pass trusted=True to store them as a pickle"
        ) from exc


def _unserialisable_attribute(state: Mapping[str, Any]) -> str | None:

    for key, value in state.items():
        try:
            skops_io().dumps(value)
        except Exception:
            return key
    return None


def _zip(entries: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in entries.items():
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, payload)
    return buffer.getvalue()


def _source_module(name: str, source: bytes, *, origin: str) -> types.ModuleType:
    """Run stored source as a fresh module; the same artifact reuses the module it made before."""
    existing = sys.modules.get(name)
    if existing is not None:
        return existing
    module = types.ModuleType(name)
    module.__file__ = f"<shipyard pyfunc {origin}>"
    # Registered before running, as an import would be: dataclasses and pickle look classes up there.
    sys.modules[name] = module
    try:
        code = compile(source, module.__file__, "exec")
        exec(code, module.__dict__)
    except Exception as exc:
        del sys.modules[name]
        raise ModelLoadError(
            f"the stored source of module {origin!r} failed to run: {type(exc).__name__}: {exc}"
        ) from exc
    return module


def _import_file(file: Path) -> types.ModuleType:
    """Import a user's module file under its own name, so a saved instance points back at it."""
    name = file.stem
    existing = sys.modules.get(name)
    if existing is not None and Path(getattr(existing, "__file__", "") or "").resolve() == file:
        return existing
    if existing is not None or not name.isidentifier():
        # Another module already has that name: use one derived from the path instead of shadowing it.
        name = f"shipyard_user_{hashlib.sha256(str(file).encode()).hexdigest()[:12]}_{file.stem}"
        if name in sys.modules:
            return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise UnsupportedModelError(f"cannot import {str(file)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ModelLoadError(f"importing {file.name} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _resolve(module: types.ModuleType, qualname: str) -> Any:
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            defined = sorted(k for k, v in vars(module).items() if isinstance(v, type) and not k.startswith("_"))
            raise ModelLoadError(f"class {qualname!r} is not defined in the pyfunc's source; it defines: {defined}")
    if not isinstance(target, type):
        raise ModelLoadError(f"{qualname!r} in the pyfunc's source is a {type(target).__name__}, not a class")
    if not callable(getattr(target, "predict", None)):
        raise UnsupportedModelError(f"class {qualname!r} has no predict() method")
    return target


@contextmanager
def _aliased(original: str, module: types.ModuleType) -> Iterator[None]:
    """Let state that names the original module find the stored one, when the original is absent."""
    if original in sys.modules:
        yield
        return
    sys.modules[original] = module
    try:
        yield
    finally:
        sys.modules.pop(original, None)


def _unpickle(data: bytes, *, original: str, module: types.ModuleType) -> Any:
    class _Unpickler(pickle.Unpickler):
        def find_class(self, module_name: str, name: str) -> Any:
            # Classes of the pyfunc's own module come from the stored source, not whatever is installed.
            if module_name == original:
                return _resolve_attr(module, name)
            return super().find_class(module_name, name)

    try:
        return _Unpickler(io.BytesIO(data)).load()
    except Exception as exc:
        raise ModelLoadError(f"the pyfunc state could not be unpickled: {type(exc).__name__}: {exc}") from exc


def _resolve_attr(module: types.ModuleType, qualname: str) -> Any:
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part)
    return target
