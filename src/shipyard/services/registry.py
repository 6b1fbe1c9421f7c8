"""Registry use cases: register, resolve, load, alias, approve and archive model versions."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.artifacts.base import ArtifactStore
from shipyard.core.calibrator import ConfidenceCalibrator
from shipyard.core.identity import LOCAL_ACTOR, Actor
from shipyard.core.inference import as_frame, example_rows, infer_features, infer_output
from shipyard.core.inputs import InputAdapter
from shipyard.core.jobs import signature_changes
from shipyard.core.loss_model import LossModel
from shipyard.core.outlier_model import OutlierModel
from shipyard.core.profile import ReferenceProfile, build_reference_profile
from shipyard.core.refs import ModelRef, check_alias, check_model_name
from shipyard.core.signature import OutputKind, Signature
from shipyard.core.versions import (
    Approval,
    ModelSummary,
    ModelVersion,
    VersionStatus,
    check_approved,
    check_four_eyes,
)
from shipyard.errors import (
    AliasNotFoundError,
    ConflictError,
    InvalidArgumentError,
    ModelLoadError,
    ModelNotFoundError,
    ShipyardError,
    SignatureError,
    SignatureInferenceError,
    UnsupportedModelError,
    UntrustedArtifactError,
    VersionNotFoundError,
)
from shipyard.flavors.base import Flavor, Predictor, SavedModel, layout_option
from shipyard.flavors.loaded import LoadedModel
from shipyard.flavors.registry import detect_flavor, flavor_for_file, get_flavor
from shipyard.monitoring.calibration import fit_confidence_calibrator
from shipyard.monitoring.multivariate import fit_reconstruction
from shipyard.services import lineage, loss_fit, outliers, round_trip
from shipyard.services.audit import record
from shipyard.services.registration import RegistrationOptions
from shipyard.services.validation_rule import check_model_rule, check_validated
from shipyard.store import endpoints as endpoint_repo
from shipyard.store import registry as repo
from shipyard.store.db import Database

# Predictions for the reference profile are taken on at most this many training rows (a seeded sample).
PROFILE_PREDICTION_ROWS = 100_000


def utcnow() -> datetime:
    return datetime.now(UTC)


class RegistryService:
    """The one place versions are created and changed; the CLI, SDK and server all come here."""

    def __init__(
        self,
        db: Database,
        artifacts: ArtifactStore,
        *,
        clock: Callable[[], datetime] = utcnow,
        four_eyes: bool = True,
    ) -> None:
        self.db = db
        self.artifacts = artifacts
        self.clock = clock
        self.four_eyes = four_eyes
        """Whoever registered a version may not approve it (settings.four_eyes); local principals are exempt."""

    # -- registration ----------------------------------------------------------------------

    def register(
        self, model: Any, options: RegistrationOptions | None = None, /, *, actor: Actor = LOCAL_ACTOR, **fields: Any
    ) -> ModelVersion:
        """Save, verify and record a new version; nothing is stored unless every check passes.

        The options come as one ``RegistrationOptions`` (what the SDK, CLI and MLflow import build) or as
        its fields by keyword, a shorthand for building it here. ``code_dir`` is where the code that trained
        the model lives (its git commit is recorded); by default the directory of the calling script. A
        classifier's label-free accuracy estimate is calibrated on ``calibration_data``/``calibration_target``
        (a holdout), else on the training rows. ``actor`` is recorded as who registered the version (and who
        vouched for its code when ``trusted``), and in the audit trail.
        """
        opts = _options(options, fields)
        name, trusted = opts.name, opts.trusted
        check_model_name(name)
        clean_metrics = _check_metrics(opts.metrics or {})
        clean_tags = {str(k): str(v) for k, v in (opts.tags or {}).items()}
        chosen = self._flavor_for(model, opts.flavor)
        _require_trust_for_code(chosen.name, trusted=trusted)
        saved = round_trip.save(chosen, model, trusted=trusted, name=name)
        if opts.extra_options:
            saved = SavedModel(saved.data, {**saved.options, **opts.extra_options})
        predictor = round_trip.load_back(chosen, saved, name)
        sig, sample_frame, sample_x = self._signature(
            chosen, model, predictor, saved, name, opts.sample_input, opts.signature
        )
        if opts.sensitive_features:
            try:
                sig = sig.with_sensitive(opts.sensitive_features)
            except ValueError as exc:
                raise InvalidArgumentError(str(exc)) from exc
        if opts.keep_signature_of is not None:
            changes = signature_changes(opts.keep_signature_of, sig)
            if changes:
                raise SignatureError(
                    f"the retrained {name!r} does not keep its parent's signature: {'; '.join(changes)} "
                    "(nothing was registered)"
                )
        if sample_x is not None:
            round_trip.check_predictions(model, predictor, sample_x, chosen.name, name)
        profile, data_hash, calibrator = self._profile(
            sig, saved, predictor, opts.training_data, opts.training_target, name
        )
        holdout = opts.calibration_data is not None or opts.calibration_target is not None
        if holdout and not loss_fit.needs_loss_model(sig):  # a regressor's holdout rows teach its loss model
            calibrator = self._holdout_calibrator(
                sig, saved, predictor, opts.calibration_data, opts.calibration_target, name
            )
        loss_model = opts.fitted_loss_model or self._loss_model(sig, saved, predictor, opts)
        outlier_model = opts.fitted_outlier_model or self._outlier_model(
            sig, opts.training_data, opts.outlier_model, name
        )
        if opts.reference_profile is not None:  # RegistrationOptions refuses it together with training_data
            profile, data_hash = opts.reference_profile, opts.training_data_hash
        digest = self.artifacts.put(saved.data)
        now = self.clock()
        with self.db.write() as conn:
            mid, number = repo.allocate_version(conn, name, now)
            parent = self._parent(conn, name, number, opts.parent_version)
            version = ModelVersion(
                name=name,
                version=number,
                sha256=digest,
                size_bytes=len(saved.data),
                flavor=chosen.name,
                flavor_options=dict(saved.options),
                signature=sig,
                reference_profile=profile,
                training_data_hash=data_hash,
                hyperparameters=chosen.hyperparameters(model),
                code=opts.code if opts.code is not None else lineage.code_info(opts.code_dir),
                metrics=clean_metrics,
                tags=clean_tags,
                notes=opts.notes or "",
                owner=opts.owner or lineage.current_user(),
                created_at=now,
                parent_version=parent,
                status=VersionStatus.REGISTERED,
                source=opts.source if opts.source is not None else "python",
                input_example=example_rows(sample_frame) if sample_frame is not None else None,
                trusted=trusted,
                confidence_calibrator=opts.confidence_calibrator or calibrator,
                registered_by=actor.principal.label,
                vouched_by=actor.principal.label if trusted else None,
                outlier_model=outlier_model,
                loss_model=loss_model,
            )
            repo.insert_version(conn, mid, version)
            record(conn, actor, "model.register", model_target(version.ref), after=_audit_view(version), at=now)
        return version

    def register_file(
        self, path: str, options: RegistrationOptions | None = None, /, *, actor: Actor = LOCAL_ACTOR, **fields: Any
    ) -> ModelVersion:
        """Register a model saved to disk by its own framework (or a pickle, when trusted).

        The options come as in ``register``; the version's source is the file unless they name another.
        """
        opts = _options(options, fields)
        file_part = path.partition(".py:")[0] + ".py" if ".py:" in path else path
        if not Path(file_part).exists():
            raise InvalidArgumentError(f"no model file at {file_part}")
        chosen = get_flavor(opts.flavor) if opts.flavor else flavor_for_file(path)
        _require_trust_for_code(chosen.name, trusted=opts.trusted)  # before read_file imports the module
        try:
            model = chosen.read_file(path, trusted=opts.trusted)
        except ShipyardError:
            raise
        except Exception as exc:
            raise UnsupportedModelError(
                f"cannot read {path} as a {chosen.name} model: {type(exc).__name__}: {exc}"
            ) from exc
        if opts.source is None:
            opts = replace(opts, source=f"file:{Path(file_part).resolve()}")
        # The object read decides the flavor (a pickle may hold an XGBoost model), unless one was named.
        return self.register(model, opts, actor=actor)

    def _flavor_for(self, model: Any, flavor: str | None) -> Flavor:
        if flavor is None:
            return detect_flavor(model)
        chosen = get_flavor(flavor)
        if not chosen.handles(model):
            raise UnsupportedModelError(
                f"flavor {flavor!r} cannot save an object of type {type(model).__name__}; "
                f"leave the flavor out to detect it (it looks like {detect_flavor(model).name!r})"
            )
        return chosen

    def _signature(
        self,
        flavor: Flavor,
        model: Any,
        predictor: Predictor,
        saved: SavedModel,
        name: str,
        sample_input: Any,
        given: Signature | None,
    ) -> tuple[Signature, pd.DataFrame | None, Any]:
        """Infer the signature from the sample and the model's own answer on it."""
        if sample_input is None:
            if given is not None:
                return given, None, None
            raise SignatureInferenceError(
                f"cannot infer a signature for {name!r} without sample_input: pass a few training rows "
                "(sample_input=X_train[:100], or --sample FILE on the command line); nothing was registered"
            )
        known = flavor.feature_names(model)
        frame = as_frame(sample_input, feature_names=known)
        if known is not None:
            frame = _align_columns(frame, known, name)
        features = infer_features(frame)
        if given is not None:
            features = given.features
        provisional = Signature(features, infer_output(np.zeros(1), classes=None, has_probabilities=False))
        adapter = InputAdapter(provisional, layout=layout_option(saved.options), label=name)
        try:
            x = adapter(frame)
        except ShipyardError as exc:
            raise SignatureInferenceError(f"sample_input does not fit {name!r}: {exc}") from exc
        try:
            predictions = predictor.predict(x)
            proba = predictor.predict_proba(x) if predictor.classes is not None else None
        except Exception as exc:
            raise SignatureInferenceError(
                f"the model fails on sample_input, so no signature can be inferred: {type(exc).__name__}: {exc}"
            ) from exc
        output = infer_output(predictions, classes=predictor.classes, has_probabilities=proba is not None)
        if given is not None and given.output.kind is not OutputKind.TENSOR:
            output = given.output
        return Signature(features, output), frame, x

    def _profile(
        self,
        sig: Signature,
        saved: SavedModel,
        predictor: Predictor,
        training_data: Any,
        training_target: Any,
        name: str,
    ) -> tuple[ReferenceProfile | None, str | None, ConfidenceCalibrator | None]:
        if training_data is None:
            if training_target is not None:
                raise InvalidArgumentError("training_target was given without training_data")
            return None, None, None
        frame = as_frame(training_data, feature_names=sig.names, what="training_data")
        frame = _align_columns(frame, sig.names, name, what="training_data")
        target = None
        if training_target is not None:
            target = np.asarray(training_target)
            if len(target) != len(frame):
                raise InvalidArgumentError(
                    f"training_target has {len(target)} values but training_data has {len(frame)} rows"
                )
        sample, sample_target = frame, target
        if len(frame) > PROFILE_PREDICTION_ROWS:
            # the same seeded rows as frame.sample(n, random_state=0), by position so the target follows
            rows = pd.Series(np.arange(len(frame))).sample(PROFILE_PREDICTION_ROWS, random_state=0).to_numpy()
            sample = frame.iloc[rows]
            sample_target = target[rows] if target is not None else None
        adapter = InputAdapter(sig, layout=layout_option(saved.options), label=name)
        try:
            x = adapter(sample)
            predictions = predictor.predict(x)
            proba = predictor.predict_proba(x) if predictor.classes is not None else None
        except ShipyardError as exc:
            raise InvalidArgumentError(f"training_data does not fit the signature of {name!r}: {exc}") from exc
        except Exception as exc:
            raise InvalidArgumentError(f"the model fails on training_data: {type(exc).__name__}: {exc}") from exc
        scores = None
        if proba is not None:
            proba = np.asarray(proba)
            scores = proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 else proba.max(axis=1)
        profile = build_reference_profile(
            frame,
            predictions=predictions,
            classification=sig.output.kind is OutputKind.CLASSIFICATION,
            scores=scores,
            target=target,
        )
        # The PCA for multivariate drift, on every training row (a seeded sample past FIT_ROWS), not the
        # prediction sample: its error bins are the reference live windows are counted in.
        profile = replace(profile, multivariate=fit_reconstruction(frame))
        calibrator = _calibrator(sig, predictor, proba, sample_target, data="training")
        return profile, lineage.frame_hash(frame), calibrator

    def _loss_model(
        self, sig: Signature, saved: SavedModel, predictor: Predictor, opts: RegistrationOptions
    ) -> LossModel | None:
        """A regressor's loss model (DLE): learnt on the holdout rows when given, else on the training rows with
        their target; None for other models, without labelled rows, or with too few training rows."""
        if not loss_fit.needs_loss_model(sig):
            return None
        if opts.calibration_data is not None or opts.calibration_target is not None:
            if opts.calibration_data is None or opts.calibration_target is None:
                raise InvalidArgumentError(
                    "pass calibration_data and calibration_target together (holdout rows, labels)"
                )
            data, target, what, kind = opts.calibration_data, opts.calibration_target, "calibration_data", "holdout"
        elif opts.training_data is not None and opts.training_target is not None:
            data, target, what, kind = opts.training_data, opts.training_target, "training_data", "training"
        else:
            return None
        frame = _align_columns(as_frame(data, feature_names=sig.names, what=what), sig.names, opts.name, what=what)
        frame.columns = list(sig.names)
        adapter = InputAdapter(sig, layout=layout_option(saved.options), label=opts.name)
        return loss_fit.fit_for_registration(
            frame, target, lambda rows: predictor.predict(adapter(rows)), sig, data=kind, what=what
        )

    def _outlier_model(self, sig: Signature, training_data: Any, method: str, name: str) -> OutlierModel | None:
        """The novelty model that scores every served row, fitted on the training rows (none without them)."""
        if training_data is None or method == "none":
            return None
        frame = as_frame(training_data, feature_names=sig.names, what="training_data")
        frame = _align_columns(frame, sig.names, name, what="training_data")
        frame.columns = list(sig.names)
        return outliers.fit_for_registration(frame, sig, method=method)

    def _holdout_calibrator(
        self, sig: Signature, saved: SavedModel, predictor: Predictor, data: Any, target: Any, name: str
    ) -> ConfidenceCalibrator | None:
        """The calibrator from labelled rows the model was not fitted on (preferred to the training rows)."""
        if data is None or target is None:
            raise InvalidArgumentError("pass calibration_data and calibration_target together (holdout rows, labels)")
        if predictor.classes is None or sig.output.kind is not OutputKind.CLASSIFICATION:
            raise InvalidArgumentError(f"calibration_data calibrates a classifier's probabilities; {name!r} is not one")
        frame = as_frame(data, feature_names=sig.names, what="calibration_data")
        frame = _align_columns(frame, sig.names, name, what="calibration_data")
        labels = np.asarray(target)
        if len(labels) != len(frame):
            raise InvalidArgumentError(
                f"calibration_target has {len(labels)} values but calibration_data has {len(frame)} rows"
            )
        try:
            proba = predictor.predict_proba(InputAdapter(sig, layout=layout_option(saved.options), label=name)(frame))
        except ShipyardError as exc:
            raise InvalidArgumentError(f"calibration_data does not fit the signature of {name!r}: {exc}") from exc
        return _calibrator(sig, predictor, proba, labels, data="holdout")

    def _parent(self, conn: Any, name: str, number: int, parent_version: int | None) -> int | None:
        if parent_version is None:
            return number - 1 if number > 1 else None
        if parent_version >= number or repo.get_version(conn, name, parent_version) is None:
            raise VersionNotFoundError(
                f"parent version {name}:{parent_version} does not exist; versions so far: 1 to {number - 1}"
            )
        return parent_version

    # -- reading ---------------------------------------------------------------------------

    def get(self, ref: str | ModelRef) -> ModelVersion:
        """Resolve a ref to its version; each kind of miss names what exists instead."""
        parsed = ref if isinstance(ref, ModelRef) else ModelRef.parse(ref)
        with self.db.read() as conn:
            if repo.model_id(conn, parsed.name) is None:
                raise ModelNotFoundError(
                    f"no model named {parsed.name!r}; `shipyard models list` shows the registered models"
                )
            if parsed.alias is not None:
                number = repo.alias_target(conn, parsed.name, parsed.alias)
                if number is None:
                    known = ", ".join(repo.aliases_of(conn, parsed.name)) or "none"
                    raise AliasNotFoundError(f"model {parsed.name!r} has no alias {parsed.alias!r} (aliases: {known})")
            elif parsed.version is not None:
                number = parsed.version
            else:
                number = repo.latest_active_version(conn, parsed.name)
                if number is None:
                    raise VersionNotFoundError(f"model {parsed.name!r} has no version that is not archived")
            version = repo.get_version(conn, parsed.name, number)
            if version is None:
                latest = repo.latest_active_version(conn, parsed.name)
                raise VersionNotFoundError(
                    f"model {parsed.name!r} has no version {number} (latest: {parsed.name}:{latest})"
                )
            return version

    def list_models(self) -> list[ModelSummary]:
        with self.db.read() as conn:
            return repo.list_models(conn)

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.db.read() as conn:
            versions = repo.list_versions(conn, name)
        if not versions:
            raise ModelNotFoundError(f"no model named {name!r}; `shipyard models list` shows the registered models")
        return versions

    def load(
        self, ref: str | ModelRef | ModelVersion, *, trusted: bool | None = None, strict: bool = False
    ) -> LoadedModel:
        """Fetch, verify (sha256) and load a version, ready to predict.

        Code (a pickle, a pyfunc's source) loads only when someone vouched for it: the caller who
        registered the version with trusted=True, or this caller with trusted=True. Trust adds up:
        None and False both load as the version was registered.
        """
        version = ref if isinstance(ref, ModelVersion) else self.get(ref)
        data = self.artifacts.get(version.sha256, label=version.ref)
        flavor = get_flavor(version.flavor)
        try:
            predictor = flavor.load(data, version.flavor_options, trusted=bool(trusted) or version.trusted)
        except ShipyardError as exc:
            raise type(exc)(f"cannot load {version.ref}: {exc}") from exc
        except Exception as exc:
            raise ModelLoadError(f"cannot load {version.ref}: {type(exc).__name__}: {exc}") from exc
        return LoadedModel(version, predictor, strict=strict)

    def identical_versions(self, version: ModelVersion) -> list[str]:
        """Other versions with the very same artifact (sha256), e.g. ``["fraud:2"]``: a re-registration."""
        with self.db.read() as conn:
            refs = repo.refs_with_sha256(conn, version.sha256)
        return [ref for ref in refs if ref != version.ref]

    def read_artifact(self, version: ModelVersion) -> bytes:
        return self.artifacts.get(version.sha256, label=version.ref)

    # -- changes ---------------------------------------------------------------------------

    def set_alias(self, ref: str, alias: str, *, actor: Actor = LOCAL_ACTOR) -> ModelVersion:
        """Point ``name@alias`` at the version ``ref`` names; a move is one atomic statement.

        Refused (409) when an endpoint that requires approval follows the alias and the version is not approved:
        moving the alias is what would make the endpoint serve it, so the rule is checked here, at the move.
        """
        check_alias(alias)
        version = self.get(ref)
        if version.status is VersionStatus.ARCHIVED:
            raise ConflictError(f"{version.ref} is archived; an alias cannot point at an archived version")
        followed = f"{version.name}@{alias}"
        with self.db.write() as conn:
            for endpoint in endpoint_repo.list_all(conn):
                if endpoint.require_approval and endpoint.model == followed:
                    check_approved(version, endpoint=endpoint.name, action=f"follow {followed} to")
                if endpoint.require_validation and endpoint.model == followed:
                    check_validated(conn, version, endpoint=endpoint.name, action=f"follow {followed} to")
            mid = _model_id(conn, version.name)
            previous = repo.set_alias(conn, mid, alias, version.version, self.clock())
            if previous != version.version:
                before = {"version": previous} if previous is not None else None
                record(
                    conn,
                    actor,
                    "model.alias.set",
                    model_target(followed),
                    before=before,
                    after={"version": version.version},
                )
        return self.get(version.ref)

    def remove_alias(self, name: str, alias: str, *, actor: Actor = LOCAL_ACTOR) -> None:
        with self.db.write() as conn:
            mid = repo.model_id(conn, name)
            if mid is None:
                raise ModelNotFoundError(f"no model named {name!r}")
            previous = repo.alias_target(conn, name, alias)
            if previous is None or not repo.delete_alias(conn, mid, alias):
                raise AliasNotFoundError(f"model {name!r} has no alias {alias!r}")
            record(conn, actor, "model.alias.delete", model_target(f"{name}@{alias}"), before={"version": previous})

    def approve(self, ref: str, *, reason: str = "", actor: Actor = LOCAL_ACTOR) -> ModelVersion:
        """Approve a version for production, recording who, when and why.

        Four-eyes (``four_eyes``): the identity that registered the version may not approve it. Approving an
        approved version again changes nothing (the first approval stands, and nothing is recorded).
        """
        version = self.get(ref)
        if version.status is VersionStatus.ARCHIVED:
            raise ConflictError(f"{version.ref} is archived; register it again to approve it")
        approver = actor.principal.label
        if self.four_eyes:
            check_four_eyes(version, approver, approver_is_local=actor.principal.kind == "local")
        if version.approved:
            return version
        if len(reason) > 2000:
            raise InvalidArgumentError(f"an approval reason is at most 2000 characters, got {len(reason)}")
        approval = Approval(approver, self.clock(), reason.strip())
        with self.db.write() as conn:
            check_model_rule(conn, version, action="approve")
            repo.approve(conn, _model_id(conn, version.name), version.version, approval)
            record(
                conn,
                actor,
                "model.approve",
                model_target(version.ref),
                before={"status": version.status.value},
                after={"status": VersionStatus.APPROVED.value, "reason": approval.reason},
                at=approval.at,
            )
        return self.get(version.ref)

    def archive(self, ref: str, *, actor: Actor = LOCAL_ACTOR) -> ModelVersion:
        """Retire a version; refused while an alias or an endpoint still points at it, so nothing live breaks."""
        version = self.get(ref)
        if version.aliases:
            names = ", ".join(f"{version.name}@{a}" for a in version.aliases)
            raise ConflictError(f"{version.ref} is still the target of {names}; move the alias first")
        with self.db.read() as conn:
            serving = [e.name for e in endpoint_repo.list_all(conn) if e.model == version.ref]
        if serving:
            raise ConflictError(
                f"{version.ref} is still served by endpoint(s) {', '.join(serving)}; point them elsewhere first "
                "(`shipyard endpoints set NAME --model REF`)"
            )
        if version.status is VersionStatus.ARCHIVED:
            return version
        with self.db.write() as conn:
            repo.set_status(conn, _model_id(conn, version.name), version.version, VersionStatus.ARCHIVED)
            record(
                conn,
                actor,
                "model.archive",
                model_target(version.ref),
                before={"status": version.status.value},
                after={"status": VersionStatus.ARCHIVED.value},
            )
        return self.get(version.ref)


def model_target(ref: str) -> str:
    """The audit target of a version or alias: ``model:fraud:3``, ``model:fraud@champion``.

    Targets are ``KIND:NAME[...]`` throughout (``endpoint:fraud``, ``key:ci``), so ``audit list --target fraud``
    finds the model's and the endpoint's events alike.
    """
    return f"model:{ref}"


def _audit_view(version: ModelVersion) -> dict[str, Any]:
    """What the trail keeps of a new version: enough to recognise it, not its profile or signature."""
    return {
        "sha256": version.sha256,
        "flavor": version.flavor,
        "status": version.status.value,
        "trusted": version.trusted,
        "source": version.source,
        "owner": version.owner,
    }


def _require_trust_for_code(flavor: str, *, trusted: bool) -> None:
    """A pyfunc is its source, run on every load: it is stored only when its caller vouches for it."""
    if flavor == "pyfunc" and not trusted:
        raise UntrustedArtifactError(
            "a pyfunc model's source runs whenever it is loaded (here, in the server, in batch jobs); "
            "register it with trusted=True (CLI: --trusted) only if you vouch for that code"
        )


def _calibrator(
    sig: Signature, predictor: Predictor, proba: Any, target: np.ndarray | None, *, data: str
) -> ConfidenceCalibrator | None:
    """How often the top class is right at each confidence, for a classifier with probabilities and labels."""
    if target is None or proba is None or predictor.classes is None:
        return None
    if sig.output.kind is not OutputKind.CLASSIFICATION:
        return None
    return fit_confidence_calibrator(target, np.asarray(proba), list(predictor.classes), data=data)


def _options(options: RegistrationOptions | None, fields: Mapping[str, Any]) -> RegistrationOptions:
    """The one record a registration reads, whether it came built or as keywords (not both: which would win?)."""
    if options is None:
        return RegistrationOptions(**fields)
    if fields:
        raise TypeError(
            f"give the registration options as one RegistrationOptions or as keywords, not both; "
            f"also got {', '.join(sorted(fields))}"
        )
    return options


def _model_id(conn: Any, name: str) -> int:
    """The id of a model resolved earlier in this call; a model is never deleted, but say so if it is gone."""
    mid = repo.model_id(conn, name)
    if mid is None:
        raise ModelNotFoundError(f"no model named {name!r}; `shipyard models list` shows the registered models")
    return mid


def _align_columns(frame: pd.DataFrame, expected: Sequence[str], name: str, what: str = "sample_input") -> pd.DataFrame:
    """Put the sample's columns in the model's order, keeping the sample's own column names.

    Some libraries rewrite names when fitting (LightGBM turns spaces into '_'), so a column also matches
    a model feature when the two agree after such rewriting; order always comes from the model.
    """
    columns = [str(c) for c in frame.columns]
    frame = frame.copy()
    frame.columns = columns
    by_key: dict[str, list[str]] = {}
    for column in columns:
        by_key.setdefault(_name_key(column), []).append(column)
    chosen: list[str] = []
    missing: list[str] = []
    for feature in expected:
        if feature in columns:
            chosen.append(feature)
        elif len(by_key.get(_name_key(feature), [])) == 1:
            chosen.append(by_key[_name_key(feature)][0])
        else:
            missing.append(feature)
    if missing:
        extra = [c for c in columns if c not in chosen]
        hint = f"; it has columns the model does not know: {extra}" if extra else ""
        raise SignatureInferenceError(
            f"{what} has {len(columns)} columns, but {name!r} expects {len(expected)}; missing: "
            f"{', '.join(repr(m) for m in missing)}{hint}"
        )
    return frame[chosen]


def _name_key(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "_", name)


def _check_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    clean: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise InvalidArgumentError(f"metric {key!r} must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise InvalidArgumentError(f"metric {key!r} must be finite, got {value!r}")
        clean[str(key)] = number
    return clean
