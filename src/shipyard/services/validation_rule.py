"""The require-validation rule: an endpoint that asks for it serves, rolls out to and lets approve only versions
with a passing validation run stored as evidence (``shipyard validate``).

Kept apart from the validation service so the registry, endpoint and rollout services can check the rule
inside their own transactions without importing the scoring code (and without an import cycle).
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from shipyard.core.versions import ModelVersion
from shipyard.errors import ConflictError
from shipyard.store import endpoints as endpoint_repo
from shipyard.store import validations as repo


class ValidationRequiredError(ConflictError):
    """An endpoint that requires validation was asked to serve, roll out to or approve an unvalidated version."""

    code = "validation_required"


def check_validated(conn: Connection, version: ModelVersion, *, endpoint: str, action: str) -> None:
    """Refuse ``action`` unless ``version`` has a passing validation run; the message says how to get one."""
    if repo.latest(conn, version.name, version.version, passed=True) is not None:
        return
    last = repo.latest(conn, version.name, version.version)
    state = f"its last validation failed ({last.summary()})" if last is not None else "it has never been validated"
    raise ValidationRequiredError(
        f"validation rule: endpoint {endpoint!r} requires a passing validation, and {version.ref} has none: "
        f"{state}; it cannot {action} it until `shipyard validate {version.ref} --data HOLDOUT --target COLUMN` "
        "passes"
    )


def check_model_rule(conn: Connection, version: ModelVersion, *, action: str) -> None:
    """Every endpoint serving ``version``'s model that requires validation asks it of ``version`` too."""
    for endpoint in endpoint_repo.list_all(conn):
        if endpoint.require_validation and _model_name(endpoint.model) == version.name:
            check_validated(conn, version, endpoint=endpoint.name, action=action)
            return


def _model_name(ref: str) -> str:
    for sep in (":", "@"):
        ref = ref.split(sep, 1)[0]
    return ref
