"""Wiring: one Workspace per process and settings, built by an entry point, never at import."""

from __future__ import annotations

import threading

from shipyard.artifacts import ArtifactStore, open_artifact_store
from shipyard.config import Settings
from shipyard.services.alert_actions import AlertActions
from shipyard.services.alerts import AlertService
from shipyard.services.audit import AuditService
from shipyard.services.channels import ChannelService
from shipyard.services.endpoints import EndpointService
from shipyard.services.feedback import FeedbackService
from shipyard.services.jobs import JobService
from shipyard.services.keys import KeyService
from shipyard.services.loop import LoopService
from shipyard.services.monitoring import MonitoringService
from shipyard.services.registry import RegistryService
from shipyard.services.rollouts import RolloutService
from shipyard.services.validation import ValidationService
from shipyard.store.db import Database
from shipyard.store.prediction_log import PredictionLog


class Workspace:
    """The store, the artifacts and the services over them, for one set of settings.

    ``Workspace()`` reads the settings now (environment, then ``shipyard.toml``), as the CLI does.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings if settings is not None else Settings.load()
        self.settings = settings
        self.db = Database(settings.database_url)
        self.artifacts: ArtifactStore = open_artifact_store(
            settings.artifact_uri, s3_endpoint_url=settings.s3_endpoint_url
        )
        self.registry = RegistryService(self.db, self.artifacts, four_eyes=settings.four_eyes)
        self.keys = KeyService(self.db)
        self.audit = AuditService(self.db)
        self.endpoints = EndpointService(self.registry)
        # Rollout events go to the store's webhook outbox; a server holding the controller lease sends them.
        self.rollouts = RolloutService(self.registry, self.endpoints)
        self.validation = ValidationService(self.registry, self.endpoints)
        self.prediction_log = PredictionLog(settings.artifact_uri, s3_endpoint_url=settings.s3_endpoint_url)
        self.feedback = FeedbackService(self.endpoints, self.prediction_log, max_rows=settings.max_request_rows)
        self.monitoring = MonitoringService(
            self.endpoints,
            self.feedback,
            self.prediction_log,
            window_s=settings.monitor_window_s,
            drift_thresholds=settings.drift_threshold_specs(),
        )
        self.jobs = JobService(self.endpoints)
        # Alert rules over the stored windows; the server holding the controller lease evaluates them.
        self.alerts = AlertService(
            self.monitoring,
            AlertActions(self.endpoints, self.rollouts, self.jobs),
            grace_s=settings.monitor_flush_s + 1.0,  # a window is read once its workers' last flush has landed
        )
        # Where alert events are delivered; the server holding the controller lease sends them.
        self.channels = ChannelService(self.db)
        # What follows a retraining job's success (validate, canary), run by whoever ran the job.
        self.loop = LoopService(self.jobs, self.validation, self.rollouts)

    def close(self) -> None:
        """Close the store's connections."""
        self.db.dispose()


_lock = threading.Lock()
_workspaces: dict[Settings, Workspace] = {}


def default_workspace(settings: Settings | None = None) -> Workspace:
    """The workspace for the current settings (read now), created on first use and then reused."""
    settings = settings or Settings.load()
    with _lock:
        workspace = _workspaces.get(settings)
        if workspace is None:
            workspace = _workspaces[settings] = Workspace(settings)
        return workspace
