"""The monitoring report: stored windows merged over a range, compared with each version's reference.

Service figures, drift and data quality come from the live windows the serving workers flushed (any
range is a merge of stored windows, never a rescan of the prediction log). Performance, calibration,
reward rates and fairness need labels, so they come from feedback joined with the logged predictions.
The report is a typed ``MonitoringReport`` (``shipyard.monitoring.report``), turned into JSON only at the edges.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from shipyard.core.calibrator import ConfidenceCalibrator
from shipyard.core.jsonsafe import finite_or_none
from shipyard.core.profile import OTHER, CategoricalProfile, NumericProfile, ReferenceProfile
from shipyard.core.signature import OutputKind, Signature
from shipyard.core.versions import ModelVersion
from shipyard.errors import InvalidArgumentError, ShipyardError
from shipyard.monitoring.drift import window_drift
from shipyard.monitoring.drift_records import WindowDrift
from shipyard.monitoring.label_drift import version_label_drift
from shipyard.monitoring.loss_estimate import NO_LOSS_MODEL, NO_VERSION, LossEstimate, estimate_loss
from shipyard.monitoring.multivariate import with_multivariate
from shipyard.monitoring.outlier_counts import OutlierReport
from shipyard.monitoring.quality_figures import live_quality_figures
from shipyard.monitoring.report import (
    CalibrationBasis,
    DataQuality,
    Estimate,
    Fairness,
    FeatureQuality,
    LatencySummary,
    MonitoringReport,
    Operational,
    Performance,
    ReportRange,
    TimelineWindow,
    Unrouted,
    VersionReport,
)
from shipyard.monitoring.thresholds import DriftThresholds
from shipyard.monitoring.window import StoredWindow, WindowProfile, merge_all
from shipyard.rollouts.spec import parse_duration
from shipyard.services.endpoints import EndpointService
from shipyard.services.feedback import FeedbackService
from shipyard.services.outliers import unavailable_reason
from shipyard.store import monitoring as repo
from shipyard.store.prediction_log import PredictionLog

DEFAULT_RANGE = "1h"
MAX_RANGE_S = 400 * 86_400
UNROUTED = ""
UNCALIBRATED = "uncalibrated: registered without a training target"
UNCALIBRATED_UNKNOWN = "uncalibrated: the version is no longer in the registry"
"""Windows of requests refused before a version was chosen (malformed body, unknown shape) have no version."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class MonitoringService:
    def __init__(
        self,
        endpoints: EndpointService,
        feedback: FeedbackService,
        log: PredictionLog,
        *,
        window_s: int = 300,
        drift_thresholds: Mapping[str, Mapping[str, Any]] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.endpoints = endpoints
        self.registry = endpoints.registry
        self.db = endpoints.db
        self.feedback = feedback
        self.log = log
        self.window_s = window_s
        self.drift_thresholds = dict(drift_thresholds or {})
        self.clock = clock

    def thresholds_for(self, endpoint: str) -> DriftThresholds:
        """The endpoint's drift thresholds, else those set for every endpoint ("*"), else the defaults."""
        spec = self.drift_thresholds.get(endpoint, self.drift_thresholds.get("*"))
        return DriftThresholds.from_dict(spec) if spec else DriftThresholds()

    def store_windows(self, rows: Sequence[StoredWindow]) -> None:
        """The serving workers' sink: upsert their partial windows in one transaction."""
        with self.db.write() as conn:
            repo.upsert_windows(conn, rows, self.clock())

    def range_for(self, window: str | float | None, now: datetime) -> tuple[datetime, datetime]:
        """``1h``, ``30m``, ``7d`` back from now, or ``all``: the range whose windows are merged."""
        if isinstance(window, str) and window.strip().lower() in ("all", "since-deploy", "since_deploy"):
            return datetime(1970, 1, 1, tzinfo=UTC), now
        text = DEFAULT_RANGE if window is None else window
        if isinstance(text, str) and text.strip().endswith("d") and text.strip()[:-1].isdigit():
            seconds = float(text.strip()[:-1]) * 86_400
        else:
            seconds = parse_duration(text, option="window")
        if not 0 < seconds <= MAX_RANGE_S:
            raise InvalidArgumentError(
                f"window must be between 1s and {MAX_RANGE_S // 86_400}d (or 'all'), got {window!r}"
            )
        return now - timedelta(seconds=seconds), now

    def report(
        self,
        endpoint: str,
        *,
        window: str | float | None = None,
        version: str | None = None,
        at: datetime | None = None,
        labels: bool = True,
    ) -> MonitoringReport:
        """Every version's figures over the range back from now (``window``), or only ``version``'s.

        ``at`` stands for now: alert rules read one past stored window exactly (its end, ``window`` its size).
        ``labels=False`` skips joining feedback (no performance, fairness or rewards): rules that read none of
        those spare the prediction-log read, the report's costliest part.
        """
        self.endpoints.get(endpoint)  # 404 for an unknown endpoint
        now = at if at is not None else self.clock()
        since, until = self.range_for(window, now)
        first_window = since - timedelta(seconds=since.timestamp() % self.window_s)
        with self.db.read() as conn:
            stored = repo.windows(conn, endpoint, since=first_window, until=until, version=version)
        by_version: dict[str, list[StoredWindow]] = defaultdict(list)
        for row in stored:
            by_version[row.version].append(row)
        labelled = self._labelled(endpoint, since, until) if labels else {}
        refs = sorted((v for v in by_version if v != UNROUTED), key=_version_order, reverse=True)
        if version is not None and version not in refs:
            refs.append(version)
        if version is None:
            refs += sorted((v for v in labelled if v not in refs), key=_version_order)
        unrouted = merge_all([WindowProfile.from_dict(w.profile) for w in by_version.get(UNROUTED, [])])
        thresholds = self.thresholds_for(endpoint)
        versions = [
            self._version_report(
                endpoint, ref, by_version.get(ref, []), labelled.get(ref, {}), since, until, thresholds
            )
            for ref in refs
        ]
        return MonitoringReport(
            endpoint=endpoint,
            generated_at=now,
            window=ReportRange(since, until, round((until - since).total_seconds()), self.window_s),
            unrouted=Unrouted(unrouted.requests, _errors(unrouted), unrouted.dropped),
            versions=tuple(versions),
        )

    # -- one version ----------------------------------------------------------------------------

    def _version_report(
        self,
        endpoint: str,
        ref: str,
        rows: list[StoredWindow],
        labels: Mapping[str, list[Any]],
        since: datetime,
        until: datetime,
        thresholds: DriftThresholds,
    ) -> VersionReport:
        try:
            model: ModelVersion | None = self.registry.get(ref)
        except ShipyardError:
            model = None  # a deleted model's windows are still reported, without a reference to compare with
        starts: dict[datetime, list[WindowProfile]] = defaultdict(list)
        for row in rows:
            starts[row.start].append(WindowProfile.from_dict(row.profile))
        per_window = {start: merge_all(profiles) for start, profiles in sorted(starts.items())}
        merged = merge_all(list(per_window.values()))
        reference = model.reference_profile if model is not None else None
        signature = model.signature if model is not None else None
        covered = max(1.0, min((until - since).total_seconds(), len(per_window) * self.window_s or 1.0))
        performance = _performance(labels, signature) if signature is not None else None
        calibrator = model.confidence_calibrator if model is not None else None
        uncalibrated = UNCALIBRATED if model is not None else UNCALIBRATED_UNKNOWN
        classes = signature.output.classes if signature is not None else None
        estimated = _estimate(merged, performance, calibrator, uncalibrated, classes=classes or ())
        timeline = []
        overall = _drift(reference, merged, thresholds)
        for start, profile in per_window.items():
            # one window: its drift is the range's (alert rules read single windows; drift is the costly part)
            drift = overall if len(per_window) == 1 else _drift(reference, profile, thresholds)
            end = start + timedelta(seconds=self.window_s)
            in_window = _between(labels, start, end)
            window_perf = _performance(in_window, signature) if signature is not None and in_window else None
            reward = window_perf.reward if window_perf is not None else None
            timeline.append(
                TimelineWindow(
                    start=start,
                    end=end,
                    requests=profile.requests,
                    error_rate=_ratio(profile.errors, profile.requests),
                    latency_p99_ms=_finite(profile.latency.quantile(0.99)) if profile.latency.count else None,
                    drift_max_score=_max_score(drift),
                    drifted_features=drift.drifted_features if drift is not None else (),
                    accuracy=window_perf.accuracy if window_perf is not None else None,
                    estimated_accuracy=(
                        _estimate(profile, None, calibrator, uncalibrated).accuracy if profile.confidence.n else None
                    ),
                    reward_rate=finite_or_none(reward.mean) if reward is not None else None,
                )
            )
        return VersionReport(
            version=ref,
            arms=tuple(sorted(merged.arms)),
            operational=_operational(merged, covered),
            drift=overall,
            quality=_quality(merged, reference, signature),
            performance=performance,
            estimated=estimated if merged.confidence.n else None,
            fairness=_fairness(labels, signature),
            timeline=tuple(timeline),
            label_drift=(
                version_label_drift(reference, labels.get("_label") or [], signature, merged.prediction, thresholds)
                if signature is not None
                else None
            ),
            outliers=OutlierReport.of(
                model.outlier_model if model is not None else None,
                merged.outliers,
                unavailable=unavailable_reason(model),
            ),
            estimated_loss=_estimated_loss(merged, performance, model, signature),
        )

    # -- feedback joined with predictions -------------------------------------------------------

    def _labelled(self, endpoint: str, since: datetime, until: datetime) -> dict[str, dict[str, list[Any]]]:
        """Feedback observed in the range, joined with its logged prediction, as plain columns per version.

        The version is the logged prediction's, else the one the feedback was stored with.
        """
        table = self.feedback.joined(endpoint, since=since, until=until)
        columns = {name: table.column(name).to_pylist() for name in table.column_names}
        logged = columns.get("_version") or [None] * table.num_rows
        served = columns.get("_served_version") or [None] * table.num_rows
        rows: dict[str, list[int]] = defaultdict(list)
        for i, (a, b) in enumerate(zip(logged, served, strict=True)):
            if a or b:
                rows[a or b].append(i)
        return {
            version: {name: [values[i] for i in keep] for name, values in columns.items()}
            for version, keep in rows.items()
        }


def _version_order(ref: str) -> tuple[str, int]:
    name, _, number = ref.rpartition(":")
    return (name, int(number)) if number.isdigit() else (ref, 0)


def _between(rows: Mapping[str, list[Any]], start: datetime, end: datetime) -> dict[str, list[Any]]:
    times = rows.get("_served_at") or []
    keep = [i for i, t in enumerate(times) if t is not None and start <= t < end]
    return {name: [values[i] for i in keep] for name, values in rows.items()} if keep else {}


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _errors(window: WindowProfile) -> dict[str, int]:
    return {status: n for status, n in sorted(window.statuses.items()) if int(status) >= 400}


def _operational(window: WindowProfile, seconds: float) -> Operational:
    latency = window.latency
    quantiles = (
        LatencySummary(
            p50=_finite(latency.quantile(0.5)),
            p95=_finite(latency.quantile(0.95)),
            p99=_finite(latency.quantile(0.99)),
            mean=_finite(latency.mean_ms),
        )
        if latency.count
        else LatencySummary()
    )
    return Operational(
        requests=window.requests,
        rows=window.rows,
        request_rate_per_s=window.requests / seconds if seconds else None,
        errors=_errors(window),
        error_rate=_ratio(window.errors, window.requests),
        latency_ms=quantiles,
        dropped=window.dropped,
    )


def _drift(
    reference: ReferenceProfile | None, window: WindowProfile, thresholds: DriftThresholds
) -> WindowDrift | None:
    if reference is None or not window.features:
        return None
    drift = window_drift(reference, window.features, window.prediction, thresholds=thresholds)
    return with_multivariate(drift, reference, window.reconstruction, thresholds)


def _max_score(drift: WindowDrift | None) -> float | None:
    """The worst feature's severity (its deciding test's distance past its threshold; 1.0 is the threshold),
    which compares across tests, unlike raw statistics. Undecided features and undefined severities do not
    count."""
    if drift is None:
        return None
    scores = [finite_or_none(f.severity) for f in drift.features if f.decision is not None]
    known = [s for s in scores if s is not None]
    return max(known) if known else None


def _quality(window: WindowProfile, reference: ReferenceProfile | None, signature: Signature | None) -> DataQuality:
    names = list(signature.names) if signature is not None else sorted(window.features)
    features = []
    ref_features = reference.features if reference is not None else {}
    for name in names:
        live = window.features.get(name)
        ref = ref_features.get(name)
        present = live.count if live is not None else 0
        missing = live.missing if live is not None else 0
        total = present + missing
        spec = signature.feature(name) if signature is not None and name in signature.names else None
        unseen = _unseen(live, ref, spec.categories if spec is not None else None)
        out_of_range = window.out_of_range.get(name, 0)
        features.append(
            FeatureQuality(
                feature=name,
                missing_rate=_ratio(missing, total),
                reference_missing_rate=_ratio(ref.missing, ref.count + ref.missing) if ref is not None else None,
                out_of_range=out_of_range,
                out_of_range_rate=_ratio(out_of_range, total) if isinstance(live, NumericProfile) else None,
                unseen=unseen,
                unseen_rate=_ratio(unseen, total) if isinstance(live, CategoricalProfile) else None,
                type_violations=window.type_violations.get(name, 0),
            )
        )
    unknown = sorted(set(window.type_violations) - set(names))
    return DataQuality(
        rejected_requests=sum(n for status, n in window.statuses.items() if 400 <= int(status) < 500),
        features=tuple(features),
        unknown_features=tuple(unknown),
        **live_quality_figures(window, reference, names),
    )


def _unseen(live: Any, ref: Any, categories: Any = None) -> int:
    """Live values the reference never saw: levels it does not name, and ``__other__`` unless the reference
    itself folded rare training levels there (then they may have been seen).

    A version registered without training data has no reference profile; the categories its signature saw
    in the sample stand in for it, and with neither nothing is called unseen (nothing is known to compare)."""
    if not isinstance(live, CategoricalProfile):
        return 0
    if isinstance(ref, CategoricalProfile):
        known = set(ref.counts)
    elif categories:
        known = {str(c) for c in categories}
    else:
        return 0
    folded = OTHER in known
    return sum(n for level, n in live.counts.items() if level not in known and not (folded and level == OTHER))


def _labels_for(values: list[Any], signature: Signature) -> list[Any]:
    """Logged predictions are strings for classifiers; labels are typed: both as the model's classes."""
    classes = signature.output.classes or ()
    by_text = {str(c): c for c in classes}
    return [by_text.get(str(v), v) if v is not None else None for v in values]


def _performance(rows: Mapping[str, list[Any]], signature: Signature | None) -> Performance | None:
    if signature is None or not rows:
        return None
    from shipyard.monitoring.metrics import classification_performance, regression_performance
    from shipyard.monitoring.rewards import reward_summary

    labels, predictions = rows.get("_label") or [], rows.get("_prediction") or []
    rewards = [r for r in (rows.get("_reward") or []) if r is not None]
    pairs = [i for i, (y, p) in enumerate(zip(labels, predictions, strict=False)) if y is not None and p is not None]
    classification = regression = None
    if pairs and signature.output.kind is OutputKind.CLASSIFICATION:
        y = _labels_for([labels[i] for i in pairs], signature)
        p = _labels_for([predictions[i] for i in pairs], signature)
        probabilities = rows.get("_probabilities") or []
        proba = None
        if probabilities and all(probabilities[i] is not None for i in pairs):
            proba = np.asarray([probabilities[i] for i in pairs], dtype=np.float64)
        classification = classification_performance(
            np.asarray(y, dtype=object),
            np.asarray(p, dtype=object),
            proba,
            classes=list(signature.output.classes or ()),
        )
    elif pairs and signature.output.kind is OutputKind.REGRESSION:
        y_num = np.asarray([labels[i] for i in pairs], dtype=np.float64)
        p_num = np.asarray([predictions[i] for i in pairs], dtype=np.float64)
        regression = regression_performance(y_num, p_num)
    if not pairs and not rewards:
        return None
    return Performance(
        labelled=len(pairs),
        kind=signature.output.kind,
        classification=classification,
        regression=regression,
        reward=reward_summary(np.asarray(rewards, dtype=np.float64)) if rewards else None,
    )


def _estimate(
    window: WindowProfile,
    performance: Performance | None,
    calibrator: ConfidenceCalibrator | None,
    uncalibrated: str,
    *,
    classes: Sequence[Any] | None = None,
) -> Estimate:
    """The label-free estimate, calibrated on the version's labelled rows when it has a calibrator; without
    one it is the model's own mean confidence, and the note says so (an overconfident model reads high).
    With ``classes`` it also carries CBPE's precision, recall, F1 and ROC AUC with their bands."""
    from shipyard.monitoring.calibration import estimate_accuracy
    from shipyard.monitoring.cbpe import window_estimate

    estimate = estimate_accuracy(window.confidence, calibrator)
    realised = performance.accuracy if performance is not None else None
    return Estimate(
        method="cbpe",
        accuracy=estimate.accuracy,
        rows=window.confidence.n,
        mean_confidence=estimate.mean_confidence,
        calibrated=estimate.calibrated,
        calibration=CalibrationBasis(calibrator.data, calibrator.rows, calibrator.bins) if calibrator else None,
        note=None if calibrator is not None else uncalibrated,
        realised_accuracy=realised,
        difference=estimate.difference(realised) if realised is not None else None,
        cbpe=(
            window_estimate(window.class_probabilities, classes, calibrator, uncalibrated=uncalibrated)
            if classes is not None
            else None
        ),
    )


def _estimated_loss(
    window: WindowProfile, performance: Performance | None, model: ModelVersion | None, signature: Signature | None
) -> LossEstimate | None:
    """A regressor's label-free MAE and RMSE (DLE) beside the realised ones; None for other models, and a
    note instead of figures when the version has no loss model."""
    if signature is not None and signature.output.kind is not OutputKind.REGRESSION:
        return None
    if model is None and not window.loss.rows:
        return None  # an unknown version that never had its errors estimated: nothing to say about them
    regression = performance.regression if performance is not None else None
    return estimate_loss(
        window.loss,
        model.loss_model if model is not None else None,
        realised_mae=regression.mae if regression is not None else None,
        realised_rmse=regression.rmse if regression is not None else None,
        unavailable=NO_LOSS_MODEL if model is not None else NO_VERSION,
    )


def _fairness(rows: Mapping[str, list[Any]], signature: Signature | None) -> Fairness | None:
    if signature is None or signature.output.kind is not OutputKind.CLASSIFICATION or not rows:
        return None
    sensitive = [f.name for f in signature.features if f.sensitive]
    if not sensitive or sensitive[0] not in rows:
        return None
    from shipyard.monitoring.fairness import fairness_metrics

    name = sensitive[0]
    labels, predictions, groups = rows.get("_label") or [], rows.get("_prediction") or [], rows[name]
    keep = [
        i
        for i, (y, p, g) in enumerate(zip(labels, predictions, groups, strict=False))
        if y is not None and p is not None and g is not None
    ]
    if not keep:
        return None
    classes = list(signature.output.classes or ())
    positive = classes[-1] if classes else None
    result = fairness_metrics(
        np.asarray(_labels_for([labels[i] for i in keep], signature), dtype=object),
        np.asarray(_labels_for([predictions[i] for i in keep], signature), dtype=object),
        np.asarray([str(groups[i]) for i in keep], dtype=object),
        positive=positive,
    )
    return Fairness(feature=name, metrics=result)
