"""Validation gates: the thresholds a CI job sets on a candidate, parsed once and judged against its figures.

A gate names a figure of the validation (``accuracy``, ``p99_ms``, ``drift`` ...); an unknown name, or one
that cannot apply to the model's task (``rmse`` on a classifier), is bad input refused before any scoring,
so a typo never turns into a gate that silently passes. A figure that could not be measured on this holdout
(ROC AUC with one class present) fails its gate with the reason: a CI gate that cannot be checked is not
a pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shipyard.core.jsonsafe import finite_or_none
from shipyard.errors import InvalidArgumentError

Task = Literal["classification", "regression"]
Bound = Literal["min", "max"]


@dataclass(frozen=True, slots=True)
class Figure:
    """A figure gates may name: what it means and the tasks it exists for (None: every task)."""

    description: str
    tasks: tuple[Task, ...] | None = None
    lower_is_better: bool = False


_CLASSIFICATION: tuple[Task, ...] = ("classification",)
_REGRESSION: tuple[Task, ...] = ("regression",)

FIGURES: dict[str, Figure] = {
    "accuracy": Figure("share of rows classified right", _CLASSIFICATION),
    "precision": Figure("precision (binary, or macro over classes)", _CLASSIFICATION),
    "recall": Figure("recall (binary, or macro over classes)", _CLASSIFICATION),
    "f1": Figure("F1 (binary, or macro over classes)", _CLASSIFICATION),
    "roc_auc": Figure("ROC AUC (binary, or macro one-vs-rest)", _CLASSIFICATION),
    "log_loss": Figure("log loss of the class probabilities", _CLASSIFICATION, lower_is_better=True),
    "brier": Figure("Brier score of the class probabilities", _CLASSIFICATION, lower_is_better=True),
    "ece": Figure("expected calibration error", _CLASSIFICATION, lower_is_better=True),
    "mae": Figure("mean absolute error", _REGRESSION, lower_is_better=True),
    "rmse": Figure("root mean squared error", _REGRESSION, lower_is_better=True),
    "r2": Figure("coefficient of determination R²", _REGRESSION),
    "p50_ms": Figure("median latency of one-row predictions, ms", lower_is_better=True),
    "p99_ms": Figure("99th percentile latency of one-row predictions, ms", lower_is_better=True),
    "throughput_rows_s": Figure("rows per second scoring the whole holdout in one batch"),
    "size_mb": Figure("artifact size, MB (10^6 bytes)", lower_is_better=True),
    "drift": Figure("share of the tested features that drifted against the reference profile", lower_is_better=True),
    "fairness_gap": Figure(
        "largest demographic parity or equalized odds difference over sensitive features", _CLASSIFICATION, True
    ),
}


@dataclass(frozen=True, slots=True)
class Threshold:
    """``--min accuracy=0.9`` is ``Threshold("accuracy", "min", 0.9)``: the figure must be >= 0.9."""

    figure: str
    bound: Bound
    value: float

    @property
    def name(self) -> str:
        return f"{self.bound} {self.figure}"

    def to_dict(self) -> dict[str, Any]:
        return {"figure": self.figure, "bound": self.bound, "value": self.value}


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgumentError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise InvalidArgumentError(f"{what} must be a finite number, got {text!r}")
    return value


def parse_threshold(text: str, bound: Bound) -> Threshold:
    """``accuracy=0.9`` (as ``--min``/``--max`` take it); the figure must be one of ``FIGURES``."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name or not value.strip():
        raise InvalidArgumentError(f"--{bound} takes FIGURE=VALUE, e.g. --{bound} accuracy=0.9; got {text!r}")
    if name not in FIGURES:
        raise InvalidArgumentError(f"--{bound} {text}: unknown figure {name!r}; known figures: {', '.join(FIGURES)}")
    return Threshold(name, bound, _number(value.strip(), f"--{bound} {name}"))


def _fraction(value: float | None, option: str) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(f"{option} must be a number >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class GateSpec:
    """Everything a run is judged on. ``max_regression`` is how much worse than the champion the candidate may
    be, decided on the paired bound: accuracy points for a classifier, a fraction of the champion's MAE for a
    regressor."""

    thresholds: tuple[Threshold, ...] = ()
    max_regression: float | None = None
    max_fairness_gap: float | None = None
    max_drift: float | None = None

    @classmethod
    def parse(
        cls,
        *,
        minimum: Iterable[str] = (),
        maximum: Iterable[str] = (),
        max_regression: float | None = None,
        max_fairness_gap: float | None = None,
        max_drift: float | None = None,
    ) -> GateSpec:
        thresholds = [parse_threshold(t, "min") for t in minimum] + [parse_threshold(t, "max") for t in maximum]
        return cls(
            tuple(thresholds),
            _fraction(max_regression, "--max-regression"),
            _fraction(max_fairness_gap, "--max-fairness-gap"),
            _fraction(max_drift, "--max-drift"),
        )

    def check_task(self, task: str, *, has_champion: bool) -> None:
        """Refuse gates that cannot apply to this model before anything is scored."""
        for threshold in self.thresholds:
            tasks = FIGURES[threshold.figure].tasks
            if tasks is not None and task not in tasks:
                raise InvalidArgumentError(
                    f"--{threshold.bound} {threshold.figure}: {threshold.figure} is a {tasks[0]} figure, and the "
                    f"model is a {task} model; its figures: {', '.join(figures_for(task))}"
                )
        if self.max_regression is not None and not has_champion:
            raise InvalidArgumentError("--max-regression compares against a champion: give one with --vs")
        if self.max_fairness_gap is not None and task != "classification":
            raise InvalidArgumentError(f"--max-fairness-gap applies to classifiers; the model is a {task} model")

    def to_dict(self) -> dict[str, Any]:
        return {
            "thresholds": [t.to_dict() for t in self.thresholds],
            "max_regression": self.max_regression,
            "max_fairness_gap": self.max_fairness_gap,
            "max_drift": self.max_drift,
        }


def figures_for(task: str) -> list[str]:
    return [name for name, f in FIGURES.items() if f.tasks is None or task in f.tasks]


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate's verdict: the measured figure (None when it could not be measured, with why in ``detail``)."""

    name: str
    passed: bool
    measured: float | None
    limit: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "measured": finite_or_none(self.measured),
            "limit": self.limit,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        measured = data.get("measured")
        return cls(
            str(data["name"]),
            bool(data["passed"]),
            None if measured is None else float(measured),
            float(data["limit"]),
            str(data.get("detail", "")),
        )


def _format(value: float) -> str:
    return f"{value:.4g}"


def _bounded(name: str, bound: Bound, limit: float, measured: float | None, missing: str | None) -> GateResult:
    if measured is None or not math.isfinite(measured):
        return GateResult(name, False, None, limit, f"not measured: {missing or 'no value'}")
    passed = measured >= limit if bound == "min" else measured <= limit
    sign = ">=" if bound == "min" else "<="
    verb = "meets" if passed else "misses"
    return GateResult(name, passed, measured, limit, f"{_format(measured)} {verb} {sign} {_format(limit)}")


@dataclass(frozen=True, slots=True)
class RegressionCheck:
    """The paired comparison's figures a ``max_regression`` gate reads (see ``monitoring.paired``)."""

    upper: float | None
    allowed: float | None
    method: str
    missing: str | None = None


def evaluate(
    spec: GateSpec,
    figures: Mapping[str, float | None],
    missing: Mapping[str, str],
    *,
    regression: RegressionCheck | None = None,
) -> list[GateResult]:
    """Every gate in ``spec`` against the candidate's ``figures`` (``missing`` says why a figure is absent)."""
    results = [
        _bounded(t.name, t.bound, t.value, figures.get(t.figure), missing.get(t.figure)) for t in spec.thresholds
    ]
    if spec.max_fairness_gap is not None:
        results.append(
            _bounded(
                "max fairness_gap",
                "max",
                spec.max_fairness_gap,
                figures.get("fairness_gap"),
                missing.get("fairness_gap"),
            )
        )
    if spec.max_drift is not None:
        results.append(_bounded("max drift", "max", spec.max_drift, figures.get("drift"), missing.get("drift")))
    if spec.max_regression is not None:
        results.append(_regression_gate(spec.max_regression, regression))
    return results


def _regression_gate(margin: float, check: RegressionCheck | None) -> GateResult:
    name = "max regression vs champion"
    if check is None or check.upper is None or check.allowed is None:
        reason = check.missing if check is not None and check.missing else "no paired comparison"
        return GateResult(name, False, None, margin, f"not measured: {reason}")
    passed = check.upper <= check.allowed
    verdict = "within" if passed else "beyond"
    return GateResult(
        name,
        passed,
        check.upper,
        check.allowed,
        f"worse by at most {_format(check.upper)}, {verdict} the allowed {_format(check.allowed)} ({check.method})",
    )


def all_passed(results: Sequence[GateResult]) -> bool:
    return all(r.passed for r in results)
