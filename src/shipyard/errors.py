"""One error hierarchy for the whole product.

Every error carries a stable ``code`` so that the CLI, the HTTP layer and users' own code can react
to the kind of failure without parsing messages. The HTTP status for each class lives in one table at
the web boundary, not here: the domain does not know about HTTP.
"""

from __future__ import annotations


class ShipyardError(Exception):
    """Base of every error Shipyard raises on purpose; its message is meant for a person."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(ShipyardError):
    """A setting is missing, malformed or contradicts another."""

    code = "config_error"


class InvalidRefError(ShipyardError):
    """A model reference such as ``fraud:3`` or ``fraud@champion`` is malformed."""

    code = "invalid_ref"


class InvalidArgumentError(ShipyardError):
    """An argument has a value outside what the operation accepts."""

    code = "invalid_argument"


class NotFoundError(ShipyardError):
    """Something named by the caller does not exist."""

    code = "not_found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class VersionNotFoundError(NotFoundError):
    code = "version_not_found"


class AliasNotFoundError(NotFoundError):
    code = "alias_not_found"


class EndpointNotFoundError(NotFoundError):
    code = "endpoint_not_found"


class MalformedRequestError(ShipyardError):
    """A request body that is not valid JSON (or not the format the route reads)."""

    code = "malformed_request"


class PayloadTooLargeError(ShipyardError):
    """A request over the byte or row limit."""

    code = "payload_too_large"


class HeadersTooLargeError(ShipyardError):
    """The request line and headers are over the server's limits (bytes or count); nothing was read further."""

    code = "headers_too_large"


class ClientDisconnectedError(ShipyardError):
    """The caller went away before its request was read: not a server error, and nobody is left to answer."""

    code = "client_disconnected"


class NotReadyError(ShipyardError):
    """The endpoint exists but its model is not loaded (yet, or it failed to load)."""

    code = "not_ready"


class AuthenticationError(ShipyardError):
    """No credentials, or credentials that are not valid (unknown, revoked, expired, badly signed)."""

    code = "unauthenticated"


class PermissionDeniedError(ShipyardError):
    """Valid credentials whose roles or scope do not allow this action."""

    code = "forbidden"


class RateLimitedError(ShipyardError):
    """Too many requests for this key or endpoint; ``retry_after_s`` says when one more will be let in."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ConflictError(ShipyardError):
    """The change contradicts the stored state (e.g. archiving a version an alias points to)."""

    code = "conflict"


class SignatureError(ShipyardError):
    """Input does not match a model's signature; the message names the feature and the row."""

    code = "signature_mismatch"

    def __init__(self, message: str, *, feature: str | None = None) -> None:
        super().__init__(message)
        self.feature = feature
        """The offending feature, when there is one: monitoring counts type violations per feature."""


class SignatureInferenceError(ShipyardError):
    """No signature could be inferred at registration; nothing was stored."""

    code = "signature_inference_failed"


class UnsupportedModelError(ShipyardError):
    """The object or file is not a model any flavor can save, load or call."""

    code = "unsupported_model"


class MissingDependencyError(ShipyardError):
    """An optional library a flavor or store needs is not installed."""

    code = "missing_dependency"


class UntrustedArtifactError(ShipyardError):
    """Loading the artifact could run arbitrary code and the caller did not say it is trusted."""

    code = "untrusted_artifact"


class ArtifactIntegrityError(ShipyardError):
    """An artifact's bytes no longer hash to the sha256 recorded for them."""

    code = "artifact_corrupt"


class ArtifactNotFoundError(NotFoundError):
    code = "artifact_not_found"


class ModelLoadError(ShipyardError):
    """An artifact passed its hash check but the flavor could not load it."""

    code = "model_load_failed"


class PredictionError(ShipyardError):
    """The model itself raised while predicting."""

    code = "prediction_failed"


class ConversionError(ShipyardError):
    """A model could not be converted, or the converted model disagrees with the original."""

    code = "conversion_failed"


class StoreError(ShipyardError):
    """The control-plane store is unreachable or refused an operation."""

    code = "store_error"


class ServerUnreachableError(ShipyardError):
    """The Shipyard server named by a URL did not answer."""

    code = "server_unreachable"


def missing_dependency(package: str, extra: str, purpose: str) -> MissingDependencyError:
    """Build the one wording used everywhere for an absent optional library."""
    return MissingDependencyError(f"{purpose} needs {package}, which is not installed: pip install 'shipyard[{extra}]'")
