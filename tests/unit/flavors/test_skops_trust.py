"""The skops allow-list: exact reviewed names only, and index structures checked before they are trusted."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from shipyard.errors import UntrustedArtifactError
from shipyard.flavors import skops_canonical, skops_trust
from shipyard.flavors.skops_trust import is_reviewed


@pytest.mark.parametrize(
    "name",
    [
        "builtins.eval",
        "builtins.exec",
        "builtins.getattr",
        "builtins.__import__",
        "builtins.compile",
        "builtins.open",
        "builtins.iter",
        "builtins.next",
        "builtins.max",
        "collections.deque",
        "functools.reduce",
        "_operator.methodcaller",
        "_operator.attrgetter",
        "importlib.import_module",
        "os.system",
        "subprocess.Popen",
        "numpy.load",
        "numpy.fromfile",
        "numpy.lib.npyio.load",
        "sklearn.utils._testing.MinimalClassifier",
        "sklearn.metrics._dist_metrics.PyFuncDistance64",
        "xgboost.sklearn.XGBClassifier",
    ],
)
def test_names_that_can_run_or_reach_code_are_not_reviewed(name: str) -> None:
    assert not is_reviewed(name)


@pytest.mark.parametrize(
    "name",
    [
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._function_transformer.FunctionTransformer",
        "sklearn.model_selection._split.StratifiedKFold",
        "numpy.ndarray",
        "numpy.random._generator.Generator",
        "numpy.dtypes.Float64DType",
        "scipy.sparse._csr.csr_matrix",
        "numpy.clip",
    ],
)
def test_estimators_and_reviewed_data_types_pass(name: str) -> None:
    assert is_reviewed(name)


def test_reviewing_a_name_imports_nothing_outside_the_array_libraries() -> None:
    script = textwrap.dedent(
        """
        import sys
        from shipyard.flavors.skops_trust import is_reviewed
        names = ["scipy._lib.array_api_compat.torch.asarray", "sklearn.externals.array_api_compat.torch.asarray",
                 "scipy.datasets._fetchers.face", "sklearn.utils._testing.MinimalClassifier", "torch.load"]
        assert not any(is_reviewed(n) for n in names)
        loaded = [m for m in ("torch", "pooch", "pytest", "cupy", "jax", "dask") if m in sys.modules]
        assert not loaded, loaded
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def _iris() -> tuple[np.ndarray, np.ndarray]:
    return load_iris(return_X_y=True)


def _reload(model: object) -> object:
    return skops_trust.loads(skops_canonical.dumps(model), trusted=False)


def _tampered_tree(field: str, value: int) -> DecisionTreeClassifier:
    x, y = _iris()
    model = DecisionTreeClassifier(random_state=0).fit(x, y)
    state = model.tree_.__getstate__()
    nodes = state["nodes"].copy()
    nodes[field][0] = value
    model.tree_.__setstate__({**state, "nodes": nodes})
    return model


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("left_child", 10**6, "child index outside"),
        ("right_child", 0, "child index outside"),  # a cycle back to the root: predict would never end
        ("feature", 7, "feature outside 0..3"),
    ],
)
def test_a_decision_tree_with_out_of_range_indices_needs_trust(field: str, value: int, problem: str) -> None:
    model = _tampered_tree(field, value)
    with pytest.raises(UntrustedArtifactError, match=problem):
        _reload(model)
    assert skops_trust.loads(skops_canonical.dumps(model), trusted=True) is not None


def test_a_forest_whose_tree_reads_wider_rows_than_it_is_given_needs_trust() -> None:
    x, y = _iris()
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(x, y)
    forest.estimators_[1].n_features_in_ = 9
    with pytest.raises(UntrustedArtifactError, match="tree taking 9 features, not 4"):
        _reload(forest)


def test_a_boosting_tree_with_a_child_outside_its_nodes_needs_trust() -> None:
    x, y = _iris()
    model = HistGradientBoostingClassifier(max_iter=2).fit(x, y)
    model._predictors[0][0].nodes["right"][0] = 50
    with pytest.raises(UntrustedArtifactError, match="boosting tree has a child index outside"):
        _reload(model)


def test_a_neighbour_tree_that_is_not_what_its_data_builds_needs_trust() -> None:
    x, y = _iris()
    model = KNeighborsClassifier(algorithm="kd_tree").fit(x, y)
    idx = model._tree.get_arrays()[1]
    state = list(model._tree.__getstate__())
    state[1] = np.asarray(idx)[::-1].copy()  # a different order of the rows: not the tree scikit-learn builds
    model._tree.__setstate__(tuple(state))
    with pytest.raises(UntrustedArtifactError, match="KDTree differs from the tree its own data builds"):
        _reload(model)


def test_a_sparse_matrix_with_indices_outside_its_shape_needs_trust() -> None:
    x, y = _iris()
    model = SVC().fit(scipy.sparse.csr_matrix(x), y)
    model.support_vectors_.indices[0] = 40
    with pytest.raises(UntrustedArtifactError, match="sparse csr matrix is malformed"):
        _reload(model)


def test_untouched_structures_load_and_predict_as_before() -> None:
    x, y = _iris()
    for model in (
        DecisionTreeClassifier(random_state=0).fit(x, y),
        RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y),
        HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        KNeighborsClassifier(algorithm="ball_tree").fit(x, y),
    ):
        np.testing.assert_array_equal(_reload(model).predict(x), model.predict(x))  # type: ignore[attr-defined]


@pytest.mark.parametrize("function", ["numpy.log1p", "scipy.special.expit"])
def test_pipelines_of_numpy_and_scipy_ufuncs_load_without_trust(function: str) -> None:
    """Shipyard reviews ufuncs itself (skops' own scan of SciPy's ufuncs is skipped at import, for speed)."""
    import importlib

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    module, _, name = function.rpartition(".")
    ufunc = getattr(importlib.import_module(module), name)
    x, y = load_iris(return_X_y=True)
    model = Pipeline([("f", FunctionTransformer(ufunc)), ("clf", LogisticRegression(max_iter=500))]).fit(x, y)
    data = skops_canonical.dumps(model)
    loaded = skops_trust.loads(data, trusted=False)
    assert (loaded.predict(x[:20]) == model.predict(x[:20])).all()
    assert all(is_reviewed(n) for n in skops_trust.reported_types(data))
