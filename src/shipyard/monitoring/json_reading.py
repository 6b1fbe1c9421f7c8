"""Monitoring results read back from their JSON: a strict field reader and ``from_dict`` for the result records.

The report crosses processes (server to CLI, a saved file to a later release), so reading it checks every
field's presence and type and names the path of the first one that is wrong ("report.versions[0].drift.
features[2].kind is missing") instead of failing later with a KeyError. Unknown keys are ignored, so a
newer server's extra figures do not stop an older client. The result records of ``drift``, ``metrics``,
``calibration`` and ``fairness`` have only ``to_dict``; their readers live here, beside the reader they use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast, get_args

from shipyard.core.inputs import describe_value
from shipyard.errors import InvalidArgumentError
from shipyard.monitoring.calibration import CalibrationResult, ReliabilityBin
from shipyard.monitoring.drift_records import (
    FeatureDrift,
    Kind,
    MultivariateDrift,
    StatResult,
    StatTest,
    WindowDrift,
)
from shipyard.monitoring.fairness import FairnessMetrics, GroupRates
from shipyard.monitoring.metrics import ClassificationPerformance, RegressionPerformance
from shipyard.monitoring.precision_recall import ClassScores, PrecisionRecallCurve
from shipyard.monitoring.rewards import RewardSummary

P_VALUE_TESTS = ("ks", "chi2")
"""Tests decided by a p-value: a null p-value in their JSON was an undefined (NaN) one, not an absent one."""


class Fields:
    """One JSON object being read into a record: each lookup checks the type and names the path when wrong."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise InvalidArgumentError(f"monitoring report: {path} must be an object, got {describe_value(data)}")
        self.data: Mapping[str, Any] = data
        self.path = path

    def _raw(self, key: str) -> Any:
        if key not in self.data:
            raise InvalidArgumentError(
                f"monitoring report: {self.path}.{key} is missing (a report from another Shipyard release?)"
            )
        return self.data[key]

    def _wrong(self, key: str, expected: str, value: Any) -> InvalidArgumentError:
        got = describe_value(value)
        return InvalidArgumentError(f"monitoring report: {self.path}.{key} must be {expected}, got {got}")

    def has(self, key: str) -> bool:
        """Whether the key is present (some sections hold a figure only when it applies)."""
        return key in self.data

    def text(self, key: str) -> str:
        value = self._raw(key)
        if not isinstance(value, str):
            raise self._wrong(key, "text", value)
        return value

    def optional_text(self, key: str) -> str | None:
        return None if self._raw(key) is None else self.text(key)

    def integer(self, key: str) -> int:
        value = self._raw(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, "a whole number", value)
        return value

    def number(self, key: str) -> float:
        """A number as written (an int stays an int, so the JSON written back is the same)."""
        value = self._raw(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong(key, "a number", value)
        return value

    def optional_number(self, key: str) -> float | None:
        return None if self._raw(key) is None else self.number(key)

    def optional_integer(self, key: str) -> int | None:
        return None if self._raw(key) is None else self.integer(key)

    def flag(self, key: str) -> bool:
        value = self._raw(key)
        if not isinstance(value, bool):
            raise self._wrong(key, "true or false", value)
        return value

    def scalar(self, key: str) -> Any:
        """A label or group value: text, a number, a boolean or null."""
        value = self._raw(key)
        if value is not None and not isinstance(value, str | int | float):
            raise self._wrong(key, "a label (text, number, boolean or null)", value)
        return value

    def moment(self, key: str) -> datetime:
        text = self.text(key)
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise self._wrong(key, "an ISO 8601 time such as 2026-11-21T10:00:00+00:00", text) from None

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.text(key)
        if value not in allowed:
            raise self._wrong(key, f"one of {list(allowed)}", value)
        return value

    def _list(self, key: str) -> list[Any]:
        value = self._raw(key)
        if not isinstance(value, list):
            raise self._wrong(key, "a list", value)
        return value

    def objects(self, key: str) -> list[Fields]:
        return [Fields(item, f"{self.path}.{key}[{i}]") for i, item in enumerate(self._list(key))]

    def texts(self, key: str) -> tuple[str, ...]:
        values = self._list(key)
        for value in values:
            if not isinstance(value, str):
                raise self._wrong(key, "a list of text", value)
        return tuple(values)

    def numbers(self, key: str) -> tuple[float, ...]:
        values = self._list(key)
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self._wrong(key, "a list of numbers", value)
        return tuple(values)

    def scalars(self, key: str) -> tuple[Any, ...]:
        values = self._list(key)
        for value in values:
            if value is not None and not isinstance(value, str | int | float):
                raise self._wrong(key, "a list of labels", value)
        return tuple(values)

    def integer_rows(self, key: str) -> tuple[tuple[int, ...], ...]:
        """A matrix of counts (a confusion matrix), row by row."""
        rows = []
        for row in self._list(key):
            if not isinstance(row, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in row):
                raise self._wrong(key, "a list of rows of whole numbers", row)
            rows.append(tuple(row))
        return tuple(rows)

    def section(self, key: str) -> Fields:
        return Fields(self._raw(key), f"{self.path}.{key}")

    def optional_section(self, key: str) -> Fields | None:
        return None if self._raw(key) is None else self.section(key)

    def counts(self, key: str) -> dict[str, int]:
        """A mapping of names (HTTP statuses, arms) to counts."""
        inner = self.section(key)
        return {name: inner.integer(name) for name in inner.data}

    def notes(self, key: str) -> dict[str, str]:
        inner = self.section(key)
        return {name: inner.text(name) for name in inner.data}

    def optional_numbers_by_name(self, key: str) -> dict[str, float | None]:
        inner = self.section(key)
        return {name: inner.optional_number(name) for name in inner.data}


# --- drift ------------------------------------------------------------------------------------------------


def _stat(fields: Fields) -> StatResult:
    test = cast(StatTest, fields.choice("test", get_args(StatTest)))
    score = fields.optional_number("score")
    p_value = fields.optional_number("p_value")
    if p_value is None and test in P_VALUE_TESTS:
        p_value = math.nan  # written as null because it was undefined; its severity must stay undefined too
    return StatResult(
        test=test,
        score=math.nan if score is None else score,
        threshold=fields.number("threshold"),
        p_value=p_value,
        drifted=fields.flag("drifted"),
    )


def feature_drift_from_dict(fields: Fields) -> FeatureDrift:
    """A feature's (or the prediction's) drift as ``FeatureDrift.to_dict`` wrote it; derived figures are
    recomputed from its tests, so they cannot disagree with them."""
    kind = cast(Kind, fields.choice("kind", get_args(Kind)))
    test = fields.optional_text("test")
    if test is not None:
        test = fields.choice("test", get_args(StatTest))
    reference, live = fields.section("reference"), fields.section("live")
    return FeatureDrift(
        feature=fields.text("feature"),
        kind=kind,
        test=cast(StatTest | None, test),
        drifted=fields.flag("drifted"),
        rows=fields.integer("rows"),
        stats=tuple(_stat(item) for item in fields.objects("tests")),
        scores=fields.optional_numbers_by_name("scores"),
        bins=reference.texts("bins"),
        edges=reference.numbers("edges") if kind == "numeric" else (),
        reference_proportions=reference.numbers("proportions"),
        live_proportions=live.numbers("proportions"),
        reference_missing_share=reference.optional_number("missing_share"),
        live_missing_share=live.optional_number("missing_share"),
        note=fields.optional_text("note"),
    )


def window_drift_from_dict(fields: Fields) -> WindowDrift:
    """A window's drift as ``WindowDrift.to_dict`` wrote it (its counts and lists of skipped features are
    derived from the features, so they are not read)."""
    prediction = fields.optional_section("prediction")
    return WindowDrift(
        drifted=fields.flag("drifted"),
        drifted_features=fields.texts("drifted_features"),
        features=tuple(feature_drift_from_dict(item) for item in fields.objects("features")),
        prediction=feature_drift_from_dict(prediction) if prediction is not None else None,
        correction=fields.text("correction"),
        # Reports written before the drift-share rule have none of its three fields.
        drift_share=fields.optional_number("drift_share") if fields.has("drift_share") else None,
        drift_share_threshold=fields.number("drift_share_threshold") if fields.has("drift_share_threshold") else 0.5,
        dataset_drifted=fields.flag("dataset_drifted") if fields.has("dataset_drifted") else False,
        multivariate=_multivariate(section) if (section := _optional(fields, "multivariate")) is not None else None,
    )


def _optional(fields: Fields, key: str) -> Fields | None:
    """A section added in a later release: absent from older reports, null when not measured."""
    return fields.optional_section(key) if fields.has(key) else None


def _multivariate(fields: Fields) -> MultivariateDrift:
    """The multivariate section as ``MultivariateDrift.to_dict`` wrote it (``outside_band`` is derived)."""
    error = fields.optional_section("error")
    return MultivariateDrift(
        drifted=fields.flag("drifted"),
        method=fields.text("method"),
        columns=fields.texts("columns"),
        left_out=fields.notes("left_out"),
        components=fields.integer("components"),
        variance_kept=fields.optional_number("variance_kept"),
        reference_mean=fields.optional_number("reference_mean"),
        reference_sd=fields.optional_number("reference_sd"),
        live_mean=fields.optional_number("live_mean"),
        lower=fields.optional_number("lower"),
        upper=fields.optional_number("upper"),
        error=feature_drift_from_dict(error) if error is not None else None,
        note=fields.optional_text("note"),
    )


# --- performance ------------------------------------------------------------------------------------------


def calibration_from_dict(fields: Fields) -> CalibrationResult:
    return CalibrationResult(
        method=fields.text("method"),
        positive=fields.scalar("positive"),
        n=fields.integer("n"),
        ece=fields.optional_number("ece"),
        bins=tuple(
            ReliabilityBin(
                low=item.number("low"),
                high=item.number("high"),
                count=item.integer("count"),
                mean_predicted=item.optional_number("mean_predicted"),
                fraction_positive=item.optional_number("fraction_positive"),
            )
            for item in fields.objects("bins")
        ),
        unknown_labels=fields.integer("unknown_labels"),
    )


def _class_scores(fields: Fields) -> ClassScores:
    return ClassScores(
        label=fields.scalar("class"),
        precision=fields.optional_number("precision"),
        recall=fields.optional_number("recall"),
        f1=fields.optional_number("f1"),
        support=fields.integer("support"),
        predicted=fields.integer("predicted"),
    )


def _precision_recall_curve(fields: Fields) -> PrecisionRecallCurve:
    return PrecisionRecallCurve(
        positive=fields.scalar("positive"),
        precision=fields.numbers("precision"),
        recall=fields.numbers("recall"),
        thresholds=fields.numbers("thresholds"),
        points=fields.integer("points"),
    )


def classification_from_dict(fields: Fields) -> ClassificationPerformance:
    """A classifier's figures; those added later (Brier score, per-class rates, the precision-recall curve) are
    read when present, so a report from an older release still reads, with them None or empty."""
    calibration = fields.optional_section("calibration")
    curve = fields.optional_section("precision_recall_curve") if fields.has("precision_recall_curve") else None
    return ClassificationPerformance(
        n=fields.integer("n"),
        classes=fields.scalars("classes"),
        average=fields.text("average"),
        positive=fields.scalar("positive"),
        accuracy=fields.optional_number("accuracy"),
        precision=fields.optional_number("precision"),
        recall=fields.optional_number("recall"),
        f1=fields.optional_number("f1"),
        roc_auc=fields.optional_number("roc_auc"),
        log_loss=fields.optional_number("log_loss"),
        calibration=calibration_from_dict(calibration) if calibration is not None else None,
        confusion_matrix=fields.section("confusion_matrix").integer_rows("matrix"),
        unknown_labels=fields.integer("unknown_labels"),
        unknown_predictions=fields.integer("unknown_predictions"),
        unknown_label_values=fields.texts("unknown_label_values"),
        notes=fields.notes("notes"),
        brier_score=fields.optional_number("brier_score") if fields.has("brier_score") else None,
        average_precision=fields.optional_number("average_precision") if fields.has("average_precision") else None,
        per_class=tuple(_class_scores(item) for item in fields.objects("per_class")) if fields.has("per_class") else (),
        precision_recall_curve=_precision_recall_curve(curve) if curve is not None else None,
    )


def regression_from_dict(fields: Fields) -> RegressionPerformance:
    return RegressionPerformance(
        n=fields.integer("n"),
        mae=fields.optional_number("mae"),
        rmse=fields.optional_number("rmse"),
        r2=fields.optional_number("r2"),
        mean_error=fields.optional_number("mean_error"),
        missing=fields.integer("missing"),
        notes=fields.notes("notes"),
    )


def reward_from_dict(fields: Fields) -> RewardSummary:
    return RewardSummary(
        n=fields.integer("n"),
        mean=fields.optional_number("mean"),
        ci_low=fields.optional_number("ci_low"),
        ci_high=fields.optional_number("ci_high"),
        confidence=fields.number("confidence"),
        interval=fields.optional_text("interval"),
        missing=fields.integer("missing"),
    )


# --- fairness ---------------------------------------------------------------------------------------------


def fairness_from_dict(fields: Fields) -> FairnessMetrics:
    return FairnessMetrics(
        n=fields.integer("n"),
        labelled=fields.integer("labelled"),
        positive=fields.scalar("positive"),
        demographic_parity_difference=fields.optional_number("demographic_parity_difference"),
        equalized_odds_difference=fields.optional_number("equalized_odds_difference"),
        true_positive_rate_difference=fields.optional_number("true_positive_rate_difference"),
        false_positive_rate_difference=fields.optional_number("false_positive_rate_difference"),
        undefined_rates=fields.text("undefined_rates"),
        groups=tuple(
            GroupRates(
                group=item.scalar("group"),
                count=item.integer("count"),
                selection_rate=item.optional_number("selection_rate"),
                positives=item.optional_integer("positives"),
                negatives=item.optional_integer("negatives"),
                true_positive_rate=item.optional_number("true_positive_rate"),
                false_positive_rate=item.optional_number("false_positive_rate"),
            )
            for item in fields.objects("groups")
        ),
        notes=fields.notes("notes"),
    )
