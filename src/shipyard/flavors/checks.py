"""The contract every flavor passes, in the spirit of scikit-learn's ``check_estimator``.

``flavor_checks(flavor, model, sample)`` returns named checks, each a callable that raises
``AssertionError`` with a message saying what broke. A test suite parametrises over them (see
``tests/contracts/test_flavors.py``); a third-party flavor runs the same list on its own models.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.inference import as_frame, infer_features, infer_output
from shipyard.core.inputs import InputAdapter, InputLayout
from shipyard.core.signature import Signature
from shipyard.core.versions import CodeInfo, ModelVersion, VersionStatus
from shipyard.errors import ShipyardError
from shipyard.flavors.base import Flavor, Predictor, SavedModel, layout_option
from shipyard.flavors.loaded import LoadedModel
from shipyard.flavors.registry import detect_flavor, get_flavor

CHECKS: tuple[str, ...] = (
    "check_detected_as_own_flavor",
    "check_rejects_foreign_objects",
    "check_options_are_json_with_input",
    "check_save_is_repeatable",
    "check_round_trip_predictions",
    "check_classes_match_probabilities",
    "check_hyperparameters_are_json",
    "check_feature_names",
    "check_corrupt_artifact_raises_shipyard_error",
    "check_loaded_model_matches_original",
)
"""Names of the checks ``flavor_checks`` returns, in order; stable, so tests can parametrise on them."""

# Objects no flavor may claim: without this, a greedy ``handles`` would swallow models of later flavors.
_FOREIGN: tuple[Any, ...] = (object(), {"predict": None}, np.zeros((2, 2)), "model.pkl", 3.0)
_GARBAGE = b"\x00\xffshipyard contract check: these bytes are not a model\n" * 8
Check = Callable[[], None]


def flavor_checks(
    flavor: Flavor | str,
    model: Any,
    sample: Any,
    *,
    expected: Any = None,
    expected_proba: Any = None,
    rtol: float = 1e-5,
    proba_atol: float = 1e-6,
    exact_dtype: bool = True,
    trusted: bool = False,
) -> list[tuple[str, Check]]:
    """The named contract checks for ``model`` under ``flavor``, given rows ``sample`` it accepts.

    ``expected`` / ``expected_proba`` are what the loaded model must return on ``sample``; by default
    the model's own ``predict`` / ``predict_proba``. Pass them for models that have no such methods (an
    ONNX graph: the estimator it was converted from; a TorchScript module: its outputs). Labels must
    be equal (and of the same dtype unless ``exact_dtype`` is False); floats within ``rtol``.
    ``trusted`` is passed to save and load, for flavors whose artifacts run code (pyfunc).
    """
    contract = _Contract(
        get_flavor(flavor) if isinstance(flavor, str) else flavor,
        model,
        sample,
        expected=expected,
        expected_proba=expected_proba,
        rtol=rtol,
        proba_atol=proba_atol,
        exact_dtype=exact_dtype,
        trusted=trusted,
    )
    return [(name, getattr(contract, name)) for name in CHECKS]


def check_flavor(flavor: Flavor | str, model: Any, sample: Any, **kwargs: Any) -> None:
    """Run every check, stopping at the first failure (for a quick check outside a test suite)."""
    for _, check in flavor_checks(flavor, model, sample, **kwargs):
        check()


def assert_same_predictions(
    got: Any, want: Any, *, rtol: float, exact_dtype: bool = True, what: str = "predictions"
) -> None:
    """Labels equal, floats close: the rule every check applies to a loaded model's outputs."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, but the original gives {want.shape}"
    if exact_dtype:
        assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, but the original gives {want.dtype}"
    if want.dtype.kind in "fc" or got.dtype.kind in "fc":
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=rtol, err_msg=what)
    else:
        mismatched = int(np.sum(got != want))
        assert mismatched == 0, f"{what}: {mismatched} of {want.size} differ from the original's"


class _Contract:
    """One model under one flavor; what is saved and loaded is computed once and shared by checks."""

    def __init__(
        self,
        flavor: Flavor,
        model: Any,
        sample: Any,
        *,
        expected: Any,
        expected_proba: Any,
        rtol: float,
        proba_atol: float,
        exact_dtype: bool,
        trusted: bool = False,
    ) -> None:
        self.flavor = flavor
        self.trusted = trusted
        self.model = model
        self.sample = sample
        self._expected = expected
        self._expected_proba = expected_proba
        self.rtol = rtol
        self.proba_atol = proba_atol
        self.exact_dtype = exact_dtype

    # -- shared state ------------------------------------------------------------------------

    @cached_property
    def saved(self) -> SavedModel:
        return self.flavor.save(self.model, trusted=self.trusted)

    @cached_property
    def options(self) -> dict[str, Any]:
        """The options as the store gives them back: through JSON, so tuples come back as lists."""
        return json.loads(json.dumps(dict(self.saved.options), allow_nan=False))

    @cached_property
    def predictor(self) -> Predictor:
        return self.flavor.load(self.saved.data, self.options, trusted=self.trusted)

    @cached_property
    def expected(self) -> np.ndarray:
        if self._expected is not None:
            return np.asarray(self._expected)
        return np.asarray(self.model.predict(self.sample))

    @cached_property
    def expected_proba(self) -> np.ndarray | None:
        if self._expected_proba is not None:
            return np.asarray(self._expected_proba)
        proba = getattr(self.model, "predict_proba", None)
        if self._expected is None and callable(proba) and getattr(self.model, "classes_", None) is not None:
            return np.asarray(proba(self.sample))
        return None

    @cached_property
    def signature(self) -> Signature:
        names = None
        if not isinstance(self.sample, pd.DataFrame):
            names = self.flavor.feature_names(self.model)
        features = infer_features(as_frame(self.sample, feature_names=names))
        output = infer_output(
            self.expected,
            classes=self.predictor.classes,
            has_probabilities=self.predictor.predict_proba is not None and self.predictor.classes is not None,
        )
        return Signature(features, output)

    @cached_property
    def prepared(self) -> Any:
        """The sample shaped for the predictor exactly as serving shapes it."""
        adapter = InputAdapter(self.signature, layout=layout_option(self.options), label="contract check")
        return adapter(self.sample)

    # -- the checks --------------------------------------------------------------------------

    def check_detected_as_own_flavor(self) -> None:
        assert self.flavor.handles(self.model), (
            f"flavor {self.flavor.name!r} does not claim {type(self.model).__qualname__}"
        )
        found = detect_flavor(self.model)
        assert found.name == self.flavor.name, (
            f"detect_flavor picks {found.name!r} for {type(self.model).__qualname__}, not "
            f"{self.flavor.name!r}: a flavor earlier in the registry order claims it"
        )

    def check_rejects_foreign_objects(self) -> None:
        for thing in _FOREIGN:
            assert not self.flavor.handles(thing), (
                f"flavor {self.flavor.name!r} claims a {type(thing).__name__}, which is no model"
            )

    def check_options_are_json_with_input(self) -> None:
        saved = self.saved
        assert isinstance(saved.data, bytes) and saved.data, "save() must return non-empty bytes"
        try:
            text = json.dumps(dict(saved.options), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise AssertionError(f"options are not JSON: {exc}: {saved.options!r}") from exc
        assert json.loads(text) == self.options
        allowed = {layout.value for layout in InputLayout}
        assert self.options.get("input") in allowed, (
            f"options['input'] is {self.options.get('input')!r}; it must be one of {sorted(allowed)}"
        )

    def check_save_is_repeatable(self) -> None:
        # Every save must load to the same behaviour (built-in flavors also give the same bytes).
        again = self.flavor.save(self.model, trusted=self.trusted)
        assert json.loads(json.dumps(dict(again.options))) == self.options, "options differ between saves"
        twin = self.flavor.load(again.data, self.options, trusted=self.trusted)
        assert_same_predictions(
            twin.predict(self.prepared), self.predictor.predict(self.prepared), rtol=0.0, what="second save"
        )

    def check_round_trip_predictions(self) -> None:
        got = self.predictor.predict(self.prepared)
        assert_same_predictions(got, self.expected, rtol=self.rtol, exact_dtype=self.exact_dtype)

    def check_classes_match_probabilities(self) -> None:
        classes = self.predictor.classes
        proba = self.predictor.predict_proba(self.prepared)
        if classes is None:
            assert proba is None, "predict_proba returns probabilities, but classes is None"
            return
        assert isinstance(classes, tuple) and classes, f"classes must be a non-empty tuple; got {classes!r}"
        assert not any(isinstance(c, np.generic) for c in classes), f"classes must be plain Python: {classes!r}"
        json.dumps(list(classes))
        original = getattr(self.model, "classes_", None)
        if original is not None:
            assert list(classes) == np.asarray(original).tolist(), (
                f"classes {classes!r} differ from the original's {list(original)!r}"
            )
        predictions = np.asarray(self.predictor.predict(self.prepared)).tolist()
        unknown = sorted({str(p) for p in predictions} - {str(c) for c in classes})
        assert not unknown, f"predict returns labels that are not among the classes: {unknown}"
        if proba is None:
            return
        proba = np.asarray(proba)
        rows = len(predictions)
        assert proba.shape == (rows, len(classes)), (
            f"predict_proba has shape {proba.shape}; expected ({rows}, {len(classes)}), one column per class"
        )
        assert np.all((proba >= -1e-6) & (proba <= 1 + 1e-6)), "probabilities outside [0, 1]"
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-4, err_msg="probability rows must add to 1")
        if self.expected_proba is not None:
            np.testing.assert_allclose(
                proba, self.expected_proba, rtol=0, atol=self.proba_atol, err_msg="predict_proba"
            )

    def check_hyperparameters_are_json(self) -> None:
        params = self.flavor.hyperparameters(self.model)
        assert isinstance(params, dict), f"hyperparameters must be a dict; got {type(params).__name__}"
        try:
            json.dumps(params, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise AssertionError(f"hyperparameters are not strict JSON: {exc}: {params!r}") from exc

    def check_feature_names(self) -> None:
        names = self.flavor.feature_names(self.model)
        if names is None:
            return
        assert isinstance(names, tuple) and all(isinstance(n, str) for n in names), (
            f"feature_names must be a tuple of str; got {names!r}"
        )
        assert self.options["input"] == InputLayout.FRAME.value, (
            "the model knows its feature names, so it must take a frame (options['input'] == 'frame')"
        )
        if isinstance(self.sample, pd.DataFrame):
            assert names == tuple(str(c) for c in self.sample.columns), (
                f"feature_names {names} differ from the sample's columns {list(self.sample.columns)}"
            )

    def check_corrupt_artifact_raises_shipyard_error(self) -> None:
        data = self.saved.data
        # Garbage and nothing must be refused; a truncated artifact may still load if what was cut
        # was not needed, but any failure must be one of ours, never a library's own exception.
        for label, damaged, must_fail in (
            ("garbage", _GARBAGE, True),
            ("empty", b"", True),
            ("truncated", data[: len(data) // 2], False),
        ):
            try:
                self.flavor.load(damaged, self.options, trusted=self.trusted)
            except ShipyardError:
                continue
            except Exception as exc:
                raise AssertionError(
                    f"loading {label} bytes raised {type(exc).__module__}.{type(exc).__name__}: {exc}; "
                    "flavors must translate library errors into ModelLoadError"
                ) from exc
            assert not must_fail, f"loading {label} bytes succeeded; it must raise ModelLoadError"

    def check_loaded_model_matches_original(self) -> None:
        loaded = LoadedModel(_version(self.flavor.name, self.saved, self.signature), self.predictor)
        assert_same_predictions(
            loaded.predict(self.sample), self.expected, rtol=self.rtol, exact_dtype=self.exact_dtype
        )
        batch = loaded.predict_batch(self.sample)
        assert_same_predictions(
            batch.predictions,
            self.expected,
            rtol=self.rtol,
            exact_dtype=self.exact_dtype,
            what="predict_batch",
        )
        if self.expected_proba is not None and loaded.classes is not None:
            np.testing.assert_allclose(
                loaded.predict_proba(self.sample), self.expected_proba, rtol=0, atol=self.proba_atol
            )


def _version(flavor: str, saved: SavedModel, signature: Signature) -> ModelVersion:
    """The least ModelVersion a LoadedModel needs; nothing in it is stored anywhere."""
    options: Mapping[str, Any] = saved.options
    return ModelVersion(
        name="contract",
        version=1,
        sha256=hashlib.sha256(saved.data).hexdigest(),
        size_bytes=len(saved.data),
        flavor=flavor,
        flavor_options=options,
        signature=signature,
        reference_profile=None,
        training_data_hash=None,
        hyperparameters={},
        code=CodeInfo(),
        metrics={},
        tags={},
        notes="",
        owner="contract-check",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        parent_version=None,
        status=VersionStatus.REGISTERED,
        source="contract-check",
    )
