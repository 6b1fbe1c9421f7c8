"""Every flavor through the same contract suite, on small real models with fixed seeds."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import onnx
import pandas as pd
import pytest
import xgboost
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import LinearSVC

from shipyard.core.inference import default_feature_names
from shipyard.errors import (
    ConversionError,
    MissingDependencyError,
    ModelLoadError,
    UnsupportedModelError,
    UntrustedArtifactError,
)
from shipyard.flavors.checks import CHECKS, Check, flavor_checks
from shipyard.flavors.onnx import to_onnx
from shipyard.flavors.registry import flavor_for_file, get_flavor
from shipyard.flavors.skops_trust import untrusted_types
from tests import models
from tests.contracts.pyfunc_models import LinearScorer, ThresholdClassifier, WithBuffer, WithHelper

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*:DeprecationWarning")


@dataclass(frozen=True)
class Case:
    """A model, rows it accepts, and how its loaded copy is compared with it."""

    flavor: str
    model: Any
    sample: Any
    options: dict[str, Any] = field(default_factory=dict)


# -- data ------------------------------------------------------------------------------------


def iris() -> tuple[np.ndarray, np.ndarray]:
    x, y, _ = models.iris()
    return x, y


@cache
def mixed_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """A frame with a string column, an integer column and a float column, and string labels."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "color": rng.choice(["red", "green", "blue"], 240),
            "size": rng.normal(size=240),
            "count": rng.integers(0, 10, 240),
        }
    )
    score = frame["size"] + (frame["color"] == "red") - 0.1 * frame["count"]
    return frame, np.where(score > 0.0, "big", "small")


@cache
def diabetes_frame() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_diabetes(as_frame=True)
    return data.data, data.target.to_numpy()


@cache
def cancer() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    return x, y


@cache
def cancer_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """Breast-cancer features under plain names (LightGBM rewrites names with spaces), string labels."""
    x, y = cancer()
    frame = pd.DataFrame(x[:, :8], columns=[f"m{i}" for i in range(8)])
    return frame, np.where(y == 1, "benign", "malignant")


@cache
def fitted_pipeline() -> Pipeline:
    frame, labels = mixed_frame()
    columns = ColumnTransformer(
        [
            ("onehot", OneHotEncoder(handle_unknown="ignore"), ["color"]),
            ("scale", StandardScaler(), ["size", "count"]),
        ]
    )
    return Pipeline([("columns", columns), ("model", LogisticRegression())]).fit(frame, labels)


def fitted_logreg() -> LogisticRegression:
    return models.iris()[2]


# -- cases -----------------------------------------------------------------------------------

BUILDERS: dict[str, Callable[[], Case]] = {}


def case(name: str) -> Callable[[Callable[[], Case]], Callable[[], Case]]:
    def register(build: Callable[[], Case]) -> Callable[[], Case]:
        BUILDERS[name] = build
        return build

    return register


@case("sklearn-logreg-array")
def _sklearn_logreg() -> Case:
    return Case("sklearn", fitted_logreg(), iris()[0][::5])


@case("sklearn-pipeline-frame")
def _sklearn_pipeline() -> Case:
    return Case("sklearn", fitted_pipeline(), mixed_frame()[0].iloc[:60])


@case("sklearn-ridge-frame")
def _sklearn_ridge() -> Case:
    x, y = diabetes_frame()
    return Case("sklearn", Ridge(alpha=0.5).fit(x, y), x.iloc[:50])


@case("xgboost-classifier-array")
def _xgb_classifier() -> Case:
    x, y = iris()
    model = xgboost.XGBClassifier(n_estimators=8, max_depth=3, random_state=0, n_jobs=1).fit(x, y)
    return Case("xgboost", model, x[::5])


@case("xgboost-regressor-frame")
def _xgb_regressor() -> Case:
    x, y = diabetes_frame()
    model = xgboost.XGBRegressor(n_estimators=8, max_depth=3, random_state=0, n_jobs=1).fit(x, y)
    return Case("xgboost", model, x.iloc[:50])


@case("xgboost-booster-array")
def _xgb_booster() -> Case:
    x, y = cancer()
    params = {"objective": "binary:logistic", "max_depth": 3, "seed": 0, "nthread": 1}
    booster = xgboost.train(params, xgboost.DMatrix(x, label=y), num_boost_round=8)
    expected = booster.predict(xgboost.DMatrix(x[:60]))
    return Case("xgboost", booster, x[:60], {"expected": expected})


@case("lightgbm-binary-frame")
def _lgbm_binary() -> Case:
    x, y = cancer_frame()
    model = lightgbm.LGBMClassifier(n_estimators=10, num_leaves=7, random_state=0, verbose=-1).fit(x, y)
    return Case("lightgbm", model, x.iloc[:60])


@case("lightgbm-multiclass-array")
def _lgbm_multiclass() -> Case:
    x, y = iris()
    model = lightgbm.LGBMClassifier(n_estimators=10, num_leaves=7, random_state=0, verbose=-1).fit(x, y)
    return Case("lightgbm", model, x[::5])


@case("lightgbm-regressor-array")
def _lgbm_regressor() -> Case:
    x, y = diabetes_frame()
    model = lightgbm.LGBMRegressor(n_estimators=10, num_leaves=7, random_state=0, verbose=-1)
    model.fit(x.to_numpy(), y)
    return Case("lightgbm", model, x.to_numpy()[:50])


@case("onnx-logreg-array")
def _onnx_logreg() -> Case:
    x, _ = iris()
    source = fitted_logreg()
    model = to_onnx(source, x, feature_names=default_feature_names(4), all_numeric=True)
    sample = x[::5]
    expected = {"expected": source.predict(sample), "expected_proba": source.predict_proba(sample)}
    return Case("onnx", model, sample, {**expected, "rtol": 1e-4, "proba_atol": 1e-4})


@case("onnx-pipeline-frame")
def _onnx_pipeline() -> Case:
    frame, _ = mixed_frame()
    source = fitted_pipeline()
    model = to_onnx(source, frame, feature_names=list(frame.columns), all_numeric=False)
    sample = frame.iloc[:60]
    expected = {"expected": source.predict(sample), "expected_proba": source.predict_proba(sample)}
    # onnxruntime returns string labels as an object array where scikit-learn returns a '<U' array.
    return Case("onnx", model, sample, {**expected, "rtol": 1e-4, "proba_atol": 1e-4, "exact_dtype": False})


@case("torch-script-array")
def _torch_script() -> Case:
    torch = pytest.importorskip("torch")
    module = torch.jit.script(_softmax_net(torch))
    sample = iris()[0][::5]
    with torch.inference_mode():
        expected = module(torch.from_numpy(sample.astype(np.float32))).numpy()
    return Case("torch", module, sample, {"expected": expected})


@case("pyfunc-linear-frame")
def _pyfunc_linear() -> Case:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    return Case("pyfunc", LinearScorer(), frame, {"trusted": True})


@case("pyfunc-classifier-frame")
def _pyfunc_classifier() -> Case:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    return Case("pyfunc", ThresholdClassifier(), frame, {"trusted": True})


def _softmax_net(torch: Any) -> Any:
    torch.manual_seed(0)

    class SoftmaxNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.linear(x), dim=1)

    return SoftmaxNet()


@cache
def build(name: str) -> Case:
    return BUILDERS[name]()


@cache
def checks_for(name: str) -> dict[str, Check]:
    """One set of checks per case, so the save and load they share happen once."""
    c = build(name)
    return dict(flavor_checks(c.flavor, c.model, c.sample, **c.options))


@pytest.mark.parametrize("check_name", CHECKS)
@pytest.mark.parametrize("case_name", list(BUILDERS))
def test_flavor_contract(case_name: str, check_name: str) -> None:
    checks_for(case_name)[check_name]()


@pytest.mark.parametrize("case_name", list(BUILDERS))
def test_every_flavor_saves_byte_identical_artifacts(case_name: str) -> None:
    c = build(case_name)
    flavor = get_flavor(c.flavor)
    trusted = bool(c.options.get("trusted"))
    assert flavor.save(c.model, trusted=trusted).data == flavor.save(c.model, trusted=trusted).data


# -- trust: what loads without --trusted ---------------------------------------------------------


def _iris_fit(estimator: Any) -> tuple[Any, Any]:
    x, y = iris()
    return estimator.fit(x, y), x[::5]


def _text_pipeline() -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = ["cheap pills now", "meeting at noon", "win cheap prizes", "lunch at noon", "prizes now", "notes"]
    model = Pipeline([("tfidf", TfidfVectorizer(stop_words="english")), ("clf", LogisticRegression())])
    return model.fit(docs, [1, 0, 1, 0, 1, 0]), docs


def _selector_pipeline() -> tuple[Any, Any]:
    from sklearn.compose import make_column_selector

    frame, labels = mixed_frame()
    columns = ColumnTransformer(
        [("onehot", OneHotEncoder(), make_column_selector(dtype_include=object))], remainder="passthrough"
    )
    return Pipeline([("columns", columns), ("model", LogisticRegression())]).fit(frame, labels), frame.iloc[:30]


def _hist_gradient_boosting_categorical() -> tuple[Any, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame, labels = mixed_frame()
    frame = frame.astype({"color": "category"})
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features="from_dtype").fit(frame, labels)
    return model, frame.iloc[:30]


def _sparse_svc() -> tuple[Any, Any]:
    import scipy.sparse
    from sklearn.svm import SVC

    x, y = iris()
    return SVC().fit(scipy.sparse.csr_matrix(x), y), scipy.sparse.csr_matrix(x[::5])


def _sklearn_zoo() -> dict[str, Callable[[], tuple[Any, Any]]]:
    """Estimators users register every day, beyond the contract cases: each must load without trust."""
    from sklearn import ensemble, neighbors, neural_network, preprocessing, tree
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import GridSearchCV
    from sklearn.naive_bayes import GaussianNB
    from sklearn.svm import SVC

    return {
        "decision-tree": lambda: _iris_fit(tree.DecisionTreeClassifier(random_state=0)),
        "random-forest": lambda: _iris_fit(ensemble.RandomForestClassifier(n_estimators=5, random_state=0)),
        "extra-trees": lambda: _iris_fit(ensemble.ExtraTreesRegressor(n_estimators=5, random_state=0)),
        "gradient-boosting": lambda: _iris_fit(ensemble.GradientBoostingClassifier(n_estimators=5)),
        "hist-gradient-boosting": lambda: _iris_fit(ensemble.HistGradientBoostingClassifier(max_iter=5)),
        "hist-gradient-boosting-categorical": _hist_gradient_boosting_categorical,
        "bagging": lambda: _iris_fit(ensemble.BaggingClassifier(n_estimators=3, max_features=0.5, random_state=0)),
        "isolation-forest": lambda: _iris_fit(ensemble.IsolationForest(n_estimators=5, random_state=0)),
        "adaboost": lambda: _iris_fit(ensemble.AdaBoostClassifier(n_estimators=5)),
        "stacking": lambda: _iris_fit(ensemble.StackingClassifier([("nb", GaussianNB())])),
        "knn-kd-tree": lambda: _iris_fit(neighbors.KNeighborsClassifier(algorithm="kd_tree")),
        "knn-ball-tree": lambda: _iris_fit(neighbors.KNeighborsClassifier(algorithm="ball_tree")),
        "svc-probability": lambda: _iris_fit(SVC(probability=True, random_state=0)),
        "svc-sparse": _sparse_svc,
        "mlp": lambda: _iris_fit(neural_network.MLPClassifier(max_iter=50, random_state=0)),
        "grid-search": lambda: _iris_fit(GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.5, 1.0]}, cv=2)),
        "calibrated": lambda: _iris_fit(CalibratedClassifierCV(LogisticRegression(), cv=2)),
        "log1p-pipeline": lambda: _iris_fit(
            Pipeline([("log", preprocessing.FunctionTransformer(np.log1p)), ("clf", LogisticRegression())])
        ),
        "spline-pipeline": lambda: _iris_fit(
            Pipeline([("spline", preprocessing.SplineTransformer()), ("clf", LogisticRegression(max_iter=500))])
        ),
        "column-selector-pipeline": _selector_pipeline,
        "text-pipeline": _text_pipeline,
    }


# Warnings scikit-learn and pandas raise while a zoo model is *fitted*: each case is a model as users train it,
# and this test is about loading it.
_ZOO_FIT_WARNINGS = {
    # scikit-learn 1.9 deprecates SVC(probability=True); models trained before it still carry the option.
    "svc-probability": "ignore:The `probability` parameter was deprecated:FutureWarning",
    # Fifty epochs keep the zoo fast; a network that has not converged loads like one that has.
    "mlp": "ignore::sklearn.exceptions.ConvergenceWarning",
    # make_column_selector(dtype_include=object), the usual spelling (and the `object` type skops must accept),
    # makes pandas 3 warn that it still selects str columns too.
    "column-selector-pipeline": "ignore:For backward compatibility, 'str' dtypes:DeprecationWarning",
}


@pytest.mark.parametrize(
    "case_name",
    [n for n in BUILDERS if n.startswith("sklearn-")]
    + [
        pytest.param(
            f"zoo-{n}", marks=[pytest.mark.filterwarnings(_ZOO_FIT_WARNINGS[n])] if n in _ZOO_FIT_WARNINGS else []
        )
        for n in _sklearn_zoo()
    ],
)
def test_sklearn_estimators_load_without_trust(case_name: str) -> None:
    if case_name.startswith("zoo-"):
        model, sample = _sklearn_zoo()[case_name.removeprefix("zoo-")]()
    else:
        model, sample = build(case_name).model, build(case_name).sample
    flavor = get_flavor("sklearn")
    saved = flavor.save(model)
    assert saved.options["format"] == "skops"
    assert untrusted_types(saved.data) == []
    predictor = flavor.load(saved.data, saved.options, trusted=False)
    np.testing.assert_array_equal(predictor.predict(sample), model.predict(sample))


# -- refusals with a way out -------------------------------------------------------------------


def test_pyfunc_class_defined_in_main_is_rejected_with_module_hint() -> None:
    cls = type("InlineModel", (), {"predict": lambda self, x: x, "__module__": "__main__"})
    with pytest.raises(UnsupportedModelError, match=r"move the class into a module file \(e\.g\. my_model\.py\)"):
        get_flavor("pyfunc").save(cls())


def test_plain_torch_module_is_rejected_with_script_or_trace_hint() -> None:
    torch = pytest.importorskip("torch")
    module = _softmax_net(torch)
    flavor = get_flavor("torch")
    assert flavor.handles(module)
    with pytest.raises(UnsupportedModelError, match=r"torch\.jit\.script\(model\).*torch\.jit\.trace"):
        flavor.save(module)


@pytest.mark.parametrize(
    ("flavor", "hidden", "extra", "call"),
    [
        ("xgboost", "xgboost", "xgboost", lambda f: f.load(b"{}", {})),
        ("lightgbm", "lightgbm", "lightgbm", lambda f: f.load(b"tree\n", {})),
        ("onnx", "onnxruntime", "onnx", lambda f: f.load(b"\x08\x07", {})),
        ("onnx", "onnx", "onnx", lambda f: f.read_file("model.onnx")),
        ("torch", "torch", "torch", lambda f: f.load(b"PK", {})),
    ],
)
def test_missing_library_names_package_and_extra(
    monkeypatch: pytest.MonkeyPatch, flavor: str, hidden: str, extra: str, call: Callable[[Any], Any]
) -> None:
    monkeypatch.setitem(sys.modules, hidden, None)  # makes `import <hidden>` raise ImportError
    with pytest.raises(MissingDependencyError) as info:
        call(get_flavor(flavor))
    assert (
        str(info.value)
        == f"the {flavor} flavor needs {hidden}, which is not installed: pip install 'shipyard[{extra}]'"
    )


def test_to_onnx_without_skl2onnx_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    with pytest.raises(MissingDependencyError, match=r"needs skl2onnx.*pip install 'shipyard\[onnx\]'"):
        to_onnx(fitted_logreg(), iris()[0], feature_names=default_feature_names(4), all_numeric=True)


class _HandRolledRegressor(RegressorMixin, BaseEstimator):
    """A scikit-learn-compatible estimator skl2onnx has no converter for."""

    def fit(self, x: Any, y: Any) -> _HandRolledRegressor:
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, x: Any) -> np.ndarray:
        return np.full(len(x), self.mean_)


def test_to_onnx_names_the_estimator_it_cannot_convert() -> None:
    x, y = iris()
    model = _HandRolledRegressor().fit(x, y)
    with pytest.raises(ConversionError, match="_HandRolledRegressor"):
        to_onnx(model, x, feature_names=default_feature_names(4), all_numeric=True)


def test_to_onnx_classifier_without_probabilities_gives_labels_but_no_probabilities() -> None:
    x, y = iris()
    model = LinearSVC().fit(x, np.asarray(["setosa", "versicolor", "virginica"])[y])
    flavor = get_flavor("onnx")
    saved = flavor.save(to_onnx(model, x, feature_names=default_feature_names(4), all_numeric=True))
    predictor = flavor.load(saved.data, saved.options)
    assert predictor.classes == ("setosa", "versicolor", "virginica")
    assert predictor.predict_proba(x) is None  # skl2onnx's "probabilities" output holds decision scores here
    np.testing.assert_array_equal(predictor.predict(x), model.predict(x))


def test_handles_imports_no_optional_library() -> None:
    script = textwrap.dedent(
        """
        import sys
        from shipyard.flavors.registry import FLAVOR_NAMES, get_flavor
        for name in FLAVOR_NAMES:
            get_flavor(name).handles(object())
        optional = ("xgboost", "lightgbm", "onnx", "onnxruntime", "skl2onnx", "torch")
        loaded = [m for m in optional if m in sys.modules]
        assert not loaded, loaded
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


# -- pyfunc state and trust ---------------------------------------------------------------------


def test_pyfunc_loads_only_when_trusted_because_its_source_runs() -> None:
    flavor = get_flavor("pyfunc")
    saved = flavor.save(WithHelper())
    source_runs = r"runs its stored source \(module 'tests\.contracts\.pyfunc_models'\)"
    with pytest.raises(UntrustedArtifactError, match=source_runs):
        flavor.load(saved.data, saved.options)
    rows = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    predictor = flavor.load(saved.data, saved.options, trusted=True)
    np.testing.assert_array_equal(predictor.predict(rows), WithHelper().predict(rows))


def test_pyfunc_state_skops_cannot_store_needs_trust_and_names_the_attribute() -> None:
    flavor = get_flavor("pyfunc")
    with pytest.raises(UnsupportedModelError, match=r"attribute 'buffer' \(BytesIO\)"):
        flavor.save(WithBuffer())
    saved = flavor.save(WithBuffer(), trusted=True)
    assert saved.options["state"] == "pickle"
    with pytest.raises(UntrustedArtifactError):
        flavor.load(saved.data, saved.options)
    rows = pd.DataFrame({"a": [1.0, 2.0]})
    np.testing.assert_array_equal(flavor.load(saved.data, saved.options, trusted=True).predict(rows), [12.0, 12.0])


def test_pyfunc_runs_stored_source_not_the_installed_module(tmp_path: Path) -> None:
    file = tmp_path / "drifting_model.py"
    file.write_text("class Model:\n    def predict(self, x):\n        return [1.0] * len(x)\n")
    flavor = get_flavor("pyfunc")
    saved = flavor.save(flavor.read_file(f"{file}:Model"))
    file.write_text("class Model:\n    def predict(self, x):\n        return [2.0] * len(x)\n")
    rows = pd.DataFrame({"a": [0.0, 0.0]})
    np.testing.assert_array_equal(flavor.load(saved.data, saved.options, trusted=True).predict(rows), [1.0, 1.0])


# -- native files -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".ubj"])
def test_xgboost_read_file_round_trips_wrapper_files(tmp_path: Path, suffix: str) -> None:
    c = build("xgboost-classifier-array")
    path = tmp_path / f"model{suffix}"
    c.model.save_model(path)
    flavor = flavor_for_file(str(path))
    assert flavor.name == "xgboost"
    loaded = flavor.read_file(str(path))
    assert type(loaded) is xgboost.XGBClassifier
    np.testing.assert_array_equal(loaded.predict(c.sample), c.model.predict(c.sample))
    np.testing.assert_array_equal(loaded.predict_proba(c.sample), c.model.predict_proba(c.sample))


def test_xgboost_read_file_gives_a_booster_for_booster_files(tmp_path: Path) -> None:
    c = build("xgboost-booster-array")
    path = tmp_path / "booster.json"
    c.model.save_model(path)
    loaded = flavor_for_file(str(path)).read_file(str(path))
    assert isinstance(loaded, xgboost.Booster)
    np.testing.assert_array_equal(loaded.predict(xgboost.DMatrix(c.sample)), c.options["expected"])


def test_xgboost_keeps_the_wrappers_missing_value_marker() -> None:
    x, y = iris()
    x = x.copy()
    x[::7, 0] = -1.0
    model = xgboost.XGBRegressor(n_estimators=5, missing=-1.0, n_jobs=1).fit(x, y)
    flavor = get_flavor("xgboost")
    saved = flavor.save(model)
    np.testing.assert_array_equal(flavor.load(saved.data, saved.options).predict(x), model.predict(x))


def test_lightgbm_read_file_round_trips_text_model(tmp_path: Path) -> None:
    c = build("lightgbm-binary-frame")
    path = tmp_path / "model.txt"
    c.model.booster_.save_model(path)
    flavor = flavor_for_file(str(path))
    assert flavor.name == "lightgbm"
    booster = flavor.read_file(str(path))
    np.testing.assert_array_equal(booster.predict(c.sample), c.model.predict_proba(c.sample)[:, 1])
    saved = flavor.save(booster)
    np.testing.assert_array_equal(flavor.load(saved.data, saved.options).predict(c.sample), booster.predict(c.sample))


def test_lightgbm_refuses_a_cut_model_before_lightgbm_parses_it() -> None:
    # LightGBM aborts the process on these (std::terminate) rather than raising; reaching this
    # assertion at all is the point.
    c = build("lightgbm-multiclass-array")
    text = c.model.booster_.model_to_string()
    flavor = get_flavor("lightgbm")
    for cut in (
        text[: text.index("Tree=0")],
        text[: text.index("Tree=1")],
        text[: text.index("end of trees")],
    ):
        with pytest.raises(ModelLoadError, match="not a complete LightGBM text model"):
            flavor.load(cut.encode(), {})


def categorical_frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(5)
    kinds = pd.Categorical(rng.choice(["a", "b", "c"], 300))
    frame = pd.DataFrame({"x": rng.normal(size=300), "kind": kinds})
    return frame, np.where(frame["x"] + (frame["kind"] == "a") > 0.3, 1, 0)


@pytest.mark.parametrize(
    "model",
    [
        lightgbm.LGBMClassifier(n_estimators=10, min_child_samples=5, verbose=-1),
        xgboost.XGBClassifier(n_estimators=10, enable_categorical=True, n_jobs=1),
    ],
    ids=["lightgbm", "xgboost"],
)
def test_categorical_frame_models_take_strings_as_serving_sends_them(model: Any) -> None:
    frame, labels = categorical_frame()
    model.fit(frame, labels)
    flavor = get_flavor("lightgbm" if isinstance(model, lightgbm.LGBMModel) else "xgboost")
    saved = flavor.save(model)
    assert saved.options["input"] == "frame"
    predictor = flavor.load(saved.data, json.loads(json.dumps(saved.options)))
    as_served = frame.astype({"kind": object})
    np.testing.assert_array_equal(predictor.predict(as_served), model.predict(frame))
    # A batch holding one category only must map it to the training code, not to code 0.
    only_c = frame["kind"] == "c"
    np.testing.assert_array_equal(predictor.predict(as_served[only_c]), model.predict(frame[only_c]))


def test_onnx_read_file_round_trips(tmp_path: Path) -> None:
    c = build("onnx-pipeline-frame")
    path = tmp_path / "model.onnx"
    onnx.save(c.model, path)
    flavor = flavor_for_file(str(path))
    assert flavor.name == "onnx"
    loaded = flavor.read_file(str(path))
    assert loaded.SerializeToString() == c.model.SerializeToString()
    assert flavor.feature_names(loaded) == ("color", "size", "count")
    assert flavor.save(loaded).options["classes"] == ["big", "small"]


def test_torchscript_read_file_round_trips(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    c = build("torch-script-array")
    path = tmp_path / "model.pt"
    torch.jit.save(c.model, str(path))
    flavor = flavor_for_file(str(path))
    assert flavor.name == "torch"
    loaded = flavor.read_file(str(path))
    with torch.inference_mode():
        got = loaded(torch.from_numpy(c.sample.astype(np.float32))).numpy()
    np.testing.assert_array_equal(got, c.options["expected"])


def test_pyfunc_read_file_builds_the_class_from_its_file(tmp_path: Path) -> None:
    file = tmp_path / "scoring_model.py"
    file.write_text(
        textwrap.dedent(
            """
            import numpy as np

            class Doubler:
                def __init__(self, factor=2.0):
                    self.factor = factor

                def predict(self, x):
                    return np.asarray(x, dtype=float).sum(axis=1) * self.factor
            """
        )
    )
    flavor = flavor_for_file(f"{file}:Doubler")
    assert flavor.name == "pyfunc"
    model = flavor.read_file(f"{file}:Doubler")
    assert type(model).__name__ == "Doubler"
    rows = pd.DataFrame({"a": [1.0, 2.0], "b": [0.5, 0.5]})
    saved = flavor.save(model)
    np.testing.assert_array_equal(flavor.load(saved.data, saved.options, trusted=True).predict(rows), [3.0, 5.0])
    assert flavor.hyperparameters(model) == {"factor": 2.0}


def test_pyfunc_read_file_needs_path_and_class() -> None:
    with pytest.raises(UnsupportedModelError, match=r"path/to/my_model\.py:ClassName"):
        get_flavor("pyfunc").read_file("my_model.py")


def test_one_call_labels_equal_predict_for_every_argmax_exact_classifier() -> None:
    """The server takes labels from predict_proba for these estimators; they must equal predict."""
    from sklearn.datasets import load_breast_cancer, load_wine
    from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

    from shipyard.flavors.sklearn import ARGMAX_EXACT, SklearnPredictor

    estimators = [
        LogisticRegression(max_iter=5000),
        DecisionTreeClassifier(random_state=0),
        ExtraTreeClassifier(random_state=0),
        RandomForestClassifier(n_estimators=10, random_state=0),
        ExtraTreesClassifier(n_estimators=10, random_state=0),
        HistGradientBoostingClassifier(max_iter=10),
        GaussianNB(),
    ]
    assert {type(e).__name__ for e in estimators} == ARGMAX_EXACT
    for x, y in (load_breast_cancer(return_X_y=True), load_wine(return_X_y=True)):
        labels = np.asarray([f"class-{v}" for v in y])
        for estimator in estimators:
            model = estimator.fit(x, labels)
            both = SklearnPredictor(model).predict_with_proba
            assert both is not None
            predictions, proba = both(x)
            np.testing.assert_array_equal(predictions, model.predict(x))
            np.testing.assert_array_equal(proba, model.predict_proba(x))
