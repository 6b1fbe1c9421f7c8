"""The outlier model's edges: fitted from a registration's training rows, loaded into a scorer for serving.

The maths is ``monitoring.outliers``; what lives here is what it must not do itself: sample a DataFrame,
write an isolation forest as a skops dump (base64 in the version's JSON, never a pickle) and read it back
through the reviewed skops loader, which admits only scikit-learn's own classes and checks the trees'
index arrays before anything uses them.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import TYPE_CHECKING, Any

from shipyard.core.outlier_model import OutlierModel
from shipyard.core.signature import Signature
from shipyard.core.versions import ModelVersion
from shipyard.errors import InvalidArgumentError, ModelLoadError, ShipyardError
from shipyard.monitoring.outliers import FIT_ROWS, OutlierScorer, fit_outlier_model

if TYPE_CHECKING:
    import pandas as pd  # the card and the report read the reasons below without importing pandas

log = logging.getLogger("shipyard.monitoring")

UNAVAILABLE_NO_DATA = "unavailable: registered without training data, so there is no outlier model to score rows with"
UNAVAILABLE_OFF = (
    "unavailable: the version has no outlier model (registered with outlier_model='none', or before Shipyard "
    "fitted one); register it again with training_data to score rows"
)
UNAVAILABLE_UNKNOWN = "unavailable: the version is no longer in the registry"


def fit_for_registration(frame: pd.DataFrame, signature: Signature, *, method: str) -> OutlierModel | None:
    """The outlier model of a new version from its training rows (a seeded sample of ``FIT_ROWS`` at most)."""
    if method == "none":
        return None
    if len(frame) > FIT_ROWS:
        frame = frame.sample(FIT_ROWS, random_state=0)
    columns = {name: frame[name].to_numpy() for name in signature.names if name in frame.columns}
    return fit_outlier_model(columns, signature, method=method, dump_forest=_dump_forest)


def unavailable_reason(version: ModelVersion | None) -> str:
    """Why a version scores no rows, in the words the report and the card use."""
    if version is None:
        return UNAVAILABLE_UNKNOWN
    if version.training_data_hash is None and version.reference_profile is None:
        return UNAVAILABLE_NO_DATA
    return UNAVAILABLE_OFF


def scorer_for(version: ModelVersion) -> OutlierScorer | None:
    """The version's scorer, or None when it has no outlier model or its forest cannot be read (logged once
    here by the caller's cache; serving never fails over monitoring)."""
    model = version.outlier_model
    if model is None:
        return None
    try:
        return OutlierScorer(model, load_forest(model) if model.method == "isolation_forest" else None)
    except ShipyardError as exc:
        log.warning("outlier scoring is off for %s: %s", version.ref, exc)
        return None


def load_forest(model: OutlierModel) -> Any:
    """The isolation forest from its stored dump, through the reviewed skops loader (no trust extended)."""
    from shipyard.flavors import skops_trust

    try:
        data = base64.b64decode((model.forest or "").encode("ascii"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ModelLoadError(f"the stored isolation forest is not valid base64: {exc}") from exc
    forest = skops_trust.loads(data, trusted=False)
    if type(forest).__name__ != "IsolationForest" or not hasattr(forest, "score_samples"):
        raise ModelLoadError(f"the stored outlier model holds a {type(forest).__name__}, not an IsolationForest")
    return forest


def _dump_forest(forest: Any) -> str:
    from shipyard.flavors import skops_trust

    try:
        data = skops_trust.skops_io().dumps(forest)
    except Exception as exc:  # skops raises a variety of errors for what it cannot represent
        raise InvalidArgumentError(f"cannot store the isolation forest with skops: {exc}") from exc
    return base64.b64encode(data).decode("ascii")


def explain_request(version: ModelVersion, scorer: OutlierScorer | None, inputs: Any) -> dict[str, Any]:
    """What ``?explain_outliers=true`` adds to a response: per row the score, the threshold, the verdict and
    the features contributing most; or, for a version without an outlier model, why there is none."""
    from shipyard.monitoring.columns import payload_columns

    if scorer is None:
        reason = (
            unavailable_reason(version)
            if version.outlier_model is None
            else "unavailable: its stored outlier model could not be loaded (see the server log)"
        )
        return {"available": False, "note": reason}
    names = list(version.signature.names)
    columns = payload_columns([inputs], names)
    if columns is None:
        return {"available": False, "note": "unavailable: the request's rows could not be read as feature columns"}
    rows = len(next(iter(columns.values()))) if columns else 0
    return {
        "available": True,
        "method": scorer.model.method,
        "threshold": scorer.threshold,
        "rows": [row.to_dict() for row in scorer.explain(columns, rows)],
    }
