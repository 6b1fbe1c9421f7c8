"""Which names a skops file may hold before loading it needs the caller's trust.

skops rebuilds an object from the names in a file: a class is instantiated, a function is looked up
and stored where the file says (a ``FunctionTransformer``'s ``func``, a ``partial``'s target). A
name such as ``builtins.eval`` or ``collections.deque`` is harmless to look up but runs whatever the
file arranges once the model is called, so trust is an allow-list of exact names, never a module
prefix. A name passes the review when it is:

* a scikit-learn estimator class (a ``BaseEstimator`` subclass defined by scikit-learn itself);
* one of the reviewed data types scikit-learn keeps as fitted state (``REVIEWED_TYPES``, NumPy
  arrays, dtypes, scalars and random generators, SciPy sparse matrices, CV splitters, distance metrics
  without user functions);
* one of the few reviewed functions (``REVIEWED_FUNCTIONS``): pure array maths, no I/O, no
  evaluation, no attribute access; or a NumPy or SciPy ufunc (``numpy.log1p``,
  ``scipy.special.expit``): a ufunc computes element-wise on numbers and can do nothing else.

Types whose internal index arrays scikit-learn reads without bounds checks (decision trees, the
histogram-boosting predictor, KD/ball trees, sparse matrices, B-splines) pass the review only
together with ``sklearn_structures.check_structures``, run on the loaded object.

Deciding whether ``sklearn.x.Y`` is an estimator imports ``sklearn.x``, scikit-learn's own code;
no module outside scikit-learn, NumPy and SciPy is ever imported to decide.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import sys
from functools import lru_cache
from types import ModuleType
from typing import Any

from shipyard.errors import ModelLoadError, UntrustedArtifactError

LIBRARIES = ("sklearn", "numpy", "scipy")
# Parts of scikit-learn that hold no estimator and import other packages (tests, vendored code, datasets).
_NEVER_IMPORTED = frozenset(
    {"tests", "_testing", "conftest", "externals", "_build_utils", "datasets", "callback", "experimental", "__main__"}
)
# NumPy and SciPy names are looked up only in these modules' own (already imported) submodules.
_ARRAY_MODULES = ("numpy", "numpy.dtypes", "numpy.random", "numpy.ma", "scipy.sparse")

REVIEWED_TYPES = frozenset(
    {
        # A dtype selector, e.g. make_column_selector(dtype_include=object); building one runs nothing.
        "builtins.object",
        # Calls only its target, which skops reports (and this review checks) like any other name.
        "functools.partial",
        "numpy.dtype",
        "sklearn.utils._bunch.Bunch",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.compose._column_transformer.make_column_selector",
        "sklearn.metrics._scorer._PassthroughScorer",
        "sklearn.metrics._scorer._Scorer",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        # Distance metrics without user parameters or functions (PyFuncDistance calls user code).
        *(
            f"sklearn.metrics._dist_metrics.{kind}Distance{bits}"
            for kind in ("Euclidean", "Manhattan", "Chebyshev", "Minkowski")
            for bits in ("64", "32")
        ),
    }
)

# Data structures of scikit-learn and SciPy trusted only after their index arrays are checked.
CHECKED_TYPES = frozenset(
    {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "scipy.interpolate._bsplines.BSpline",
    }
)

REVIEWED_FUNCTIONS = frozenset(
    {
        # What HistGradientBoosting* stores for categorical features, and common FunctionTransformer
        # choices: pure array maths on the values they are given.
        "sklearn.utils.validation.check_array",
        "sklearn.preprocessing._data.normalize",
        "numpy.clip",
        "numpy.round",
        "numpy.around",
        "numpy.nan_to_num",
        "scipy._lib.array_api_compat.numpy._aliases.asarray",
    }
)


def skops_io() -> ModuleType:
    """``skops.io``, imported without its two scans at import time.

    At import, skops imports all of scikit-learn (and torch, when installed) only to list the estimator
    types it trusts by default, and looks every SciPy ufunc up in every loaded module (hundreds of thousands
    of attribute reads, a quarter to half a second of a server's cold start) only to name the ufuncs it
    trusts. Shipyard relies on neither list: ``is_reviewed`` decides which names pass, ufuncs included.
    Skipping the estimator scan also keeps a serving worker over 100 MB smaller.
    """
    loaded = sys.modules.get("skops.io")
    if loaded is not None:
        return loaded
    import sklearn.utils

    original = sklearn.utils.all_estimators
    sklearn.utils.all_estimators = lambda *args, **kwargs: []
    finder = _WithoutScipyUfuncScan()
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module("skops.io")
    finally:
        sklearn.utils.all_estimators = original
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(finder)


class _WithoutScipyUfuncScan(importlib.abc.MetaPathFinder):
    """Loads ``skops.io._utils`` as usual, then makes its ``get_public_type_names`` skip ``scipy.special``.

    skops' ``_trusted_types`` imports that helper by name right after, so the module's own list of SciPy
    ufuncs comes out empty; NumPy's list is cheap (NumPy ufuncs name their module) and is kept.
    """

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "skops.io._utils":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_skip_scan(module: ModuleType) -> None:
            exec_module(module)
            scan = module.get_public_type_names

            def public_type_names(module: ModuleType, oftype: type) -> list[str]:
                return [] if module.__name__ == "scipy.special" else list(scan(module=module, oftype=oftype))

            setattr(module, "get_public_type_names", public_type_names)  # noqa: B010 (a module's global)

        spec.loader.exec_module = exec_then_skip_scan  # type: ignore[method-assign]
        return spec


def reported_types(data: bytes) -> list[str]:
    """Every name in the file that skops does not trust by default (primitives, ufuncs, dtypes are)."""
    try:
        return list(skops_io().get_untrusted_types(data=data))
    except Exception as exc:  # a damaged zip or schema surfaces as many different errors
        raise ModelLoadError(f"the artifact is not a readable skops file: {exc}") from exc


def untrusted_types(data: bytes) -> list[str]:
    """The names in a skops file that fail the review, so that loading it needs trusted=True."""
    return [name for name in reported_types(data) if not is_reviewed(name)]


def loads(data: bytes, *, trusted: bool) -> Any:
    """Rebuild a skops file; without trust, only reviewed names, and checked index structures."""
    from shipyard.flavors.sklearn_structures import check_structures

    reported = reported_types(data)
    refused = [name for name in reported if not is_reviewed(name)]
    if refused and not trusted:
        raise UntrustedArtifactError(
            f"it names types or functions outside the reviewed scikit-learn, NumPy and SciPy set, which "
            f"could run code when the model is loaded or called: {', '.join(refused)}; load it with "
            "trusted=True (CLI: --trusted) only if you trust where it came from"
        )
    try:
        model = skops_io().loads(data, trusted=reported)
    except Exception as exc:
        raise ModelLoadError(f"skops could not rebuild the model: {exc}") from exc
    if not trusted:
        check_structures(model)
    return model


@lru_cache(maxsize=4096)
def is_reviewed(name: str) -> bool:
    """True when ``name`` (``module.Name``, as skops reports it) passes the review."""
    if name in REVIEWED_TYPES or name in CHECKED_TYPES or name in REVIEWED_FUNCTIONS:
        return True
    module_name, _, attribute = name.rpartition(".")
    found = getattr(_module(module_name), attribute, None) if attribute.isidentifier() else None
    if module_name.split(".")[0] in ("numpy", "scipy") and _is_ufunc(found):
        return True
    if not isinstance(found, type) or found.__module__.split(".")[0] not in LIBRARIES:
        return False
    return _is_estimator(found) or _is_array_type(found) or _is_cv_splitter(found)


def _module(name: str) -> ModuleType | None:
    """The module a name points into, imported only if it is scikit-learn's own code.

    A scikit-learn module is imported to look at the class (as skops would to build it); a NumPy or
    SciPy name must be in a module already imported with the array libraries, so a file can never
    make this review import anything else (SciPy's vendored array-API wrappers would import torch).
    """
    parts = name.split(".")
    if parts[0] == "sklearn" and not _NEVER_IMPORTED.intersection(parts):
        try:
            return importlib.import_module(name)
        except Exception:  # not a module of this scikit-learn (or it fails to import)
            return None
    if parts[0] in ("numpy", "scipy"):
        for array_module in _ARRAY_MODULES:
            importlib.import_module(array_module)
        return sys.modules.get(name)
    return None


def _is_ufunc(found: Any) -> bool:
    """A NumPy or SciPy ufunc (``numpy.log1p``, ``scipy.special.expit``): element-wise maths on numbers only."""
    import numpy as np

    if isinstance(found, np.ufunc):
        return True
    from skops.utils._fixes import get_scipy_ufunc_wrapper_type

    wrapper = get_scipy_ufunc_wrapper_type()
    return wrapper is not None and isinstance(found, wrapper)


def _is_estimator(cls: type) -> bool:
    from sklearn.base import BaseEstimator

    return cls.__module__.startswith("sklearn.") and issubclass(cls, BaseEstimator)


def _is_array_type(cls: type) -> bool:
    """NumPy arrays, dtypes, scalar types and random generators; SciPy sparse matrices (checked later)."""
    import numpy as np
    import scipy.sparse

    numpy_data = (np.ndarray, np.dtype, np.generic, np.random.Generator, np.random.RandomState)
    numpy_random = (np.random.BitGenerator, np.random.SeedSequence)
    if issubclass(cls, numpy_data + numpy_random):
        return True
    return cls.__module__.startswith("scipy.sparse") and issubclass(cls, scipy.sparse.sparray | scipy.sparse.spmatrix)


def _is_cv_splitter(cls: type) -> bool:
    """Cross-validation splitters (GridSearchCV keeps one): index generators, unused when predicting."""
    from sklearn.model_selection._split import BaseCrossValidator, BaseShuffleSplit

    return cls.__module__.startswith("sklearn.") and issubclass(cls, BaseCrossValidator | BaseShuffleSplit)
