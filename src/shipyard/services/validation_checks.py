"""The parts of a validation run that are measurements, not orchestration: reading the holdout, scoring it,
the quality figures gates name, fairness, per-row latency, the signature check and the paired comparison.

Each returns what it measured, or the reason it could not, in the words the report shows; none of them
stores anything.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.core.signature import FeatureType, OutputKind, Signature
from shipyard.errors import InvalidArgumentError
from shipyard.flavors.loaded import LoadedModel, Prediction
from shipyard.monitoring.paired import mcnemar, paired_bootstrap
from shipyard.monitoring.validation_records import Latency, PairedComparison, SignatureCheck

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.monitoring.metrics import ClassificationPerformance, RegressionPerformance

WARMUP_CALLS = 3
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_holdout(data: Any, target: str) -> tuple[pd.DataFrame, str]:
    """A DataFrame, or a CSV or Parquet file, with ``target`` among its columns; refused in one line otherwise."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        frame, name = data.rename(columns=str), "a DataFrame"
    elif isinstance(data, str | Path):
        path = Path(data)
        if not path.is_file():
            raise InvalidArgumentError(f"holdout file {path} {'is a directory' if path.is_dir() else 'does not exist'}")
        kind = SUFFIXES.get(path.suffix.lower())
        if kind is None:
            raise InvalidArgumentError(
                f"holdout file {path}: unknown format {path.suffix or '(no suffix)'!r}; use .csv or .parquet"
            )
        try:
            frame = pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path, low_memory=False)
        except Exception as exc:  # pyarrow and pandas raise many kinds for a damaged file; all mean "unreadable"
            raise InvalidArgumentError(f"cannot read {path} as {kind}: {' '.join(str(exc).split())[:300]}") from exc
        frame, name = frame.rename(columns=str), str(path)
    else:
        raise InvalidArgumentError(
            f"the holdout must be a CSV or Parquet path or a DataFrame, got {type(data).__name__}"
        )
    if target not in frame.columns:
        shown = ", ".join(list(frame.columns)[:20])
        raise InvalidArgumentError(f"holdout {name} has no target column {target!r}; its columns: {shown}")
    if frame[target].notna().sum() == 0:
        raise InvalidArgumentError(f"holdout {name}: the target column {target!r} has no values")
    return frame, name


def features_for(frame: pd.DataFrame, signature: Signature, ref: str, name: str) -> pd.DataFrame:
    """The columns ``ref`` takes, in its order; a holdout missing any is refused naming them."""
    missing = [f for f in signature.names if f not in frame.columns]
    if missing:
        raise InvalidArgumentError(
            f"holdout {name} does not fit {ref}'s signature: missing feature(s) {missing} "
            f"of {len(signature.names)} it takes"
        )
    return frame[list(signature.names)]


def score(model: LoadedModel, features: pd.DataFrame) -> tuple[Prediction, float | None]:
    """The whole holdout as one batch, and its throughput in rows per second."""
    start = time.perf_counter()
    prediction = model.predict_batch(features)
    elapsed = time.perf_counter() - start
    return prediction, (len(features) / elapsed if elapsed > 0 else None)


def latency(model: LoadedModel, features: pd.DataFrame, *, rows: int, throughput: float | None) -> Latency:
    """Rows sent one at a time as a caller's JSON would arrive (a list with one row object), after a short
    warm-up, so the figure is the model's per-request cost and not the first call's import and cache misses."""
    records = features.iloc[: max(1, rows)].to_dict("records")
    for record in records[:WARMUP_CALLS]:
        model.predict_batch([record])
    timings = np.empty(len(records), dtype=np.float64)
    for i, record in enumerate(records):
        start = time.perf_counter()
        model.predict_batch([record])
        timings[i] = (time.perf_counter() - start) * 1000.0
    p50, p99 = np.percentile(timings, [50, 99])
    return Latency(len(records), float(p50), float(p99), len(features), throughput)


def label(value: Any) -> Any:
    """1.0 and 1 are one class (a CSV column with a gap reads as floats); NumPy scalars as Python values."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True, slots=True)
class Quality:
    """One model's quality on the labelled rows: the figures gates name, why any is missing, the full result,
    and each row's loss (0/1 error or absolute error) for the paired comparison."""

    figures: dict[str, float | None]
    missing: dict[str, str]
    result: dict[str, Any]
    loss: np.ndarray
    predictions: np.ndarray


_CLASSIFICATION_FIGURES = {
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "f1",
    "roc_auc": "roc_auc",
    "log_loss": "log_loss",
    "brier": "brier_score",
}


def quality(signature: Signature, prediction: Prediction, labels: np.ndarray) -> Quality:
    """The monitoring package's figures for the task (classes from the signature, probabilities when given)."""
    from shipyard.monitoring.metrics import classification_performance, regression_performance

    if signature.output.kind is OutputKind.REGRESSION:
        y = _numbers(labels, "the target")
        p = _numbers(np.asarray(prediction.predictions).reshape(len(labels), -1)[:, 0], "the predictions")
        regression = regression_performance(y, p)
        errors = {"mae": regression.mae, "rmse": regression.rmse, "r2": regression.r2}
        return Quality(errors, _missing(errors, regression), regression.to_dict(), np.abs(p - y), p)
    y = np.asarray([label(v) for v in labels.tolist()], dtype=object)
    p = np.asarray([label(v) for v in np.asarray(prediction.predictions).tolist()], dtype=object)
    classes = list(signature.output.classes or prediction.classes or ())
    performance = classification_performance(
        y, p, prediction.probabilities, classes=[label(c) for c in classes] or None
    )
    figures: dict[str, float | None] = {k: getattr(performance, v) for k, v in _CLASSIFICATION_FIGURES.items()}
    figures["ece"] = performance.calibration.ece if performance.calibration is not None else None
    missing = _missing(figures, performance)
    if prediction.probabilities is None:
        for name in ("roc_auc", "log_loss", "brier", "ece"):
            missing[name] = "the model gives no class probabilities"
    result = performance.to_dict()
    result.pop("precision_recall_curve", None)  # hundreds of points: the stored evidence keeps the figures
    return Quality(figures, missing, result, (y != p).astype(np.float64), p)


def _numbers(values: np.ndarray, what: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what} holds text, so a regressor's errors cannot be computed") from None


def _missing(
    figures: dict[str, float | None], result: ClassificationPerformance | RegressionPerformance
) -> dict[str, str]:
    notes = dict(result.notes)
    fallback = notes.get("all", "undefined on this holdout")
    return {
        name: notes.get(name, notes.get(_CLASSIFICATION_FIGURES.get(name, name), fallback))
        for name, value in figures.items()
        if value is None or not math.isfinite(value)
    }


def fairness(
    signature: Signature, frame: pd.DataFrame, labels: np.ndarray, predictions: np.ndarray
) -> tuple[list[dict[str, Any]], float | None, str | None]:
    """Demographic parity and equalized odds per sensitive feature; the gap is the largest of them."""
    from shipyard.monitoring.fairness import fairness_metrics

    sensitive = [f.name for f in signature.features if f.sensitive]
    if signature.output.kind is not OutputKind.CLASSIFICATION:
        return [], None, "fairness gaps are computed for classifiers"
    if not sensitive:
        return [], None, "the version declares no sensitive features (register it with sensitive_features=[...])"
    classes = [label(c) for c in signature.output.classes or ()]
    positive = classes[-1] if classes else None
    labels = np.asarray([label(v) for v in labels.tolist()], dtype=object)
    sections: list[dict[str, Any]] = []
    gaps: list[float] = []
    for name in sensitive:
        groups = np.asarray([str(v) if present(v) else None for v in frame[name].tolist()], dtype=object)
        result = fairness_metrics(labels, predictions, groups, positive=positive)
        sections.append({"feature": name, **result.to_dict()})
        gaps.extend(
            g for g in (result.demographic_parity_difference, result.equalized_odds_difference) if g is not None
        )
    if not gaps:
        return sections, None, "every fairness difference is undefined on this holdout (see the groups)"
    return sections, max(gaps), None


def _compatible_types(candidate: FeatureType, sent: FeatureType) -> bool:
    return candidate is sent or (candidate is FeatureType.FLOAT and sent is FeatureType.INTEGER)


def signature_check(candidate: Signature, current: Signature, *, against: str) -> SignatureCheck:
    """What breaks for callers of ``against`` if the candidate replaced it: inputs they do not send, inputs
    they send as another type, outputs (classes, probabilities) they read that the candidate no longer gives."""
    problems: list[str] = []
    sent = {f.name: f for f in current.features}
    unsent = [f.name for f in candidate.features if f.name not in sent and not f.nullable]
    if unsent:
        problems.append(f"needs input(s) callers do not send: {unsent}")
    for spec in candidate.features:
        theirs = sent.get(spec.name)
        if theirs is not None and not _compatible_types(spec.type, theirs.type):
            problems.append(f"input {spec.name!r} is {spec.type.value}, callers send {theirs.type.value}")
    before, after = current.output, candidate.output
    if before.kind is not after.kind:
        problems.append(f"output kind changed from {before.kind.value} to {after.kind.value}")
    removed = [c for c in before.classes or () if c not in set(after.classes or ())]
    if removed and after.kind is OutputKind.CLASSIFICATION:
        problems.append(f"no longer returns class(es) {removed}")
    if before.has_probabilities and not after.has_probabilities:
        problems.append("no longer returns class probabilities")
    return SignatureCheck(against, tuple(problems))


def paired(
    task: str, candidate: Quality, champion: Quality, *, confidence: float, resamples: int, seed: int
) -> tuple[PairedComparison | None, str | None]:
    """Paired bootstrap of the per-row loss difference (and McNemar for classifiers) on rows both scored."""
    keep = np.isfinite(candidate.loss) & np.isfinite(champion.loss)
    if int(keep.sum()) < 2:
        return None, "fewer than 2 labelled rows scored by both models"
    interval = paired_bootstrap(
        candidate.loss[keep], champion.loss[keep], confidence=confidence, resamples=resamples, seed=seed
    )
    share = f"one-sided {confidence:.0%} upper bound"
    if task == "classification":
        test = mcnemar(candidate.loss[keep] == 0, champion.loss[keep] == 0)
        decided = (
            f"paired bootstrap ({resamples} resamples, seed {seed}), {share} of the accuracy lost; "
            f"McNemar mid-p {test.p_mid:.3g} reported beside it"
        )
        return PairedComparison("0/1 error", interval.to_dict(), test.to_dict(), decided), None
    decided = f"paired bootstrap ({resamples} resamples, seed {seed}), {share} of the MAE added"
    return PairedComparison("absolute error", interval.to_dict(), None, decided), None


def labelled_rows(values: Sequence[Any]) -> np.ndarray:
    return np.asarray([present(v) for v in values], dtype=bool)
