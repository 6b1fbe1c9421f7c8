"""The PCA a version's multivariate drift is measured with: fitted once on the training rows, stored as JSON.

Per-feature tests miss a change in how features move together (a correlation that flips while every
marginal stays put). A PCA fitted on the standardised training rows keeps the directions the training data
varies along; a live row that no longer lies near them is reconstructed badly, so the distribution of the
reconstruction error moves (NannyML's "data reconstruction drift"). This module is the stored record only;
``shipyard.monitoring.multivariate`` fits it and computes the errors.

Encoding (decided at fit time, the same at serving time): numeric features are standardised with the
training mean and standard deviation, a missing value imputed as the training mean (0 after scaling);
categorical features are frequency-encoded, each level replaced by its share of the training rows (a level
the training data never saw, or a rare one beyond the ``MAX_LEVELS`` most frequent, by 0), then
standardised like a number. Features that cannot carry information (constant, all missing) are left out,
and ``left_out`` says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.core.profile import NumericProfile, profile_from_dict


@dataclass(frozen=True, slots=True)
class ReconstructionReference:
    """A PCA of the training rows and the training rows' own reconstruction errors.

    ``columns`` are the encoded inputs in order: the numeric features, then the categorical ones (those
    named in ``levels``, each level mapped to its training share). ``means`` and ``scales`` standardise
    them; ``components`` are the kept principal axes (one row of ``len(columns)`` loadings each), enough
    to explain ``variance_kept`` of the training variance. ``errors`` profiles the training rows' errors in
    fine quantile bins: live errors are counted in the same bins, so windows merge and compare like any
    numeric feature, and its mean and standard deviation give NannyML's threshold band.
    """

    columns: tuple[str, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    levels: Mapping[str, Mapping[str, float]]
    components: tuple[tuple[float, ...], ...]
    variance_kept: float
    target_variance: float
    errors: NumericProfile
    rows: int
    left_out: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "pca_reconstruction",
            "columns": list(self.columns),
            "means": list(self.means),
            "scales": list(self.scales),
            "levels": {name: dict(shares) for name, shares in self.levels.items()},
            "components": [list(row) for row in self.components],
            "variance_kept": self.variance_kept,
            "target_variance": self.target_variance,
            "errors": self.errors.to_dict(),
            "rows": self.rows,
            "left_out": dict(self.left_out),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReconstructionReference:
        errors = profile_from_dict(data["errors"])
        if not isinstance(errors, NumericProfile):
            raise ValueError("a reconstruction reference's errors must be a numeric profile")
        return cls(
            columns=tuple(str(c) for c in data["columns"]),
            means=tuple(float(v) for v in data["means"]),
            scales=tuple(float(v) for v in data["scales"]),
            levels={str(k): {str(level): float(s) for level, s in v.items()} for k, v in data["levels"].items()},
            components=tuple(tuple(float(v) for v in row) for row in data["components"]),
            variance_kept=float(data["variance_kept"]),
            target_variance=float(data.get("target_variance", 0.65)),
            errors=errors,
            rows=int(data["rows"]),
            left_out={str(k): str(v) for k, v in (data.get("left_out") or {}).items()},
        )
