"""The job state machine, trainers and the signature a retrained version must keep: pure records, no store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shipyard.core.jobs import (
    FINISHED,
    Job,
    JobParams,
    JobState,
    Trainer,
    TrainerKind,
    check_engine,
    check_transition,
    signature_changes,
)
from shipyard.core.signature import FeatureSpec, FeatureType, OutputKind, OutputSpec, Signature
from shipyard.errors import ConflictError, InvalidArgumentError

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (JobState.QUEUED, JobState.RUNNING),
        (JobState.QUEUED, JobState.CANCELLED),
        (JobState.QUEUED, JobState.FAILED),
        (JobState.RUNNING, JobState.SUCCEEDED),
        (JobState.RUNNING, JobState.FAILED),
        (JobState.RUNNING, JobState.CANCELLED),
    ],
)
def test_a_job_moves_forward_from_queued_through_running_to_an_end(source: JobState, target: JobState) -> None:
    check_transition("j1", source, target)


@pytest.mark.parametrize("finished", sorted(FINISHED))
@pytest.mark.parametrize("target", list(JobState))
def test_a_finished_job_never_changes_again(finished: JobState, target: JobState) -> None:
    with pytest.raises(ConflictError, match=f"job j1 already {finished.value}"):
        check_transition("j1", finished, target)


def test_a_queued_job_cannot_succeed_without_running_and_a_running_one_cannot_be_queued_again() -> None:
    with pytest.raises(ConflictError, match="it can become cancelled, failed, running, not succeeded"):
        check_transition("j1", JobState.QUEUED, JobState.SUCCEEDED)
    with pytest.raises(ConflictError, match="not queued"):
        check_transition("j1", JobState.RUNNING, JobState.QUEUED)


def test_a_trainer_is_a_module_function_or_a_command_and_never_both() -> None:
    assert Trainer.parse(callable_target="pipelines.fraud:fit", command=None, project_dir="/p").kind is (
        TrainerKind.CALLABLE
    )
    assert Trainer.parse(callable_target=None, command=" python train.py ", project_dir="/p").target == (
        "python train.py"
    )
    for bad in ("train.py", "train", ":main", "train:", "my-mod:main"):
        with pytest.raises(InvalidArgumentError, match="is not module:function"):
            Trainer.parse(callable_target=bad, command=None, project_dir="/p")
    with pytest.raises(InvalidArgumentError, match="exactly one of the two"):
        Trainer.parse(callable_target="t:m", command="python t.py", project_dir="/p")
    with pytest.raises(InvalidArgumentError, match="exactly one of the two"):
        Trainer.parse(callable_target=None, command=None, project_dir="/p")
    trainer = Trainer(TrainerKind.COMMAND, "make train", "/p")
    assert Trainer.from_dict(trainer.to_dict()) == trainer


def test_a_job_round_trips_through_its_stored_params_and_reports_its_duration() -> None:
    trainer = Trainer(TrainerKind.CALLABLE, "train:main", "/p")
    params = JobParams("fraud", "fraud:3", T0 - timedelta(days=30), T0, True, 600.0, trainer)
    assert JobParams.from_dict(params.to_dict()) == params
    assert JobParams.from_dict({**params.to_dict(), "since": None}).since is None
    queued = Job("j1", "retrain", "fraud", "fraud", JobState.QUEUED, "local", params, {"kind": "manual"}, "ana", T0)
    assert queued.duration_s is None and queued.version_ref is None
    done = Job(
        "j1", "retrain", "fraud", "fraud", JobState.SUCCEEDED, "local", params, {"kind": "manual"}, "ana", T0,
        started_at=T0, finished_at=T0 + timedelta(seconds=42.5), result={"ref": "fraud:4"},
    )  # fmt: skip
    assert done.duration_s == 42.5 and done.version_ref == "fraud:4"
    assert done.to_dict()["duration_s"] == 42.5 and "log" not in done.to_dict()


def test_the_ray_engine_says_it_is_not_built_and_an_unknown_one_names_the_choices() -> None:
    assert check_engine("local") == "local"
    with pytest.raises(InvalidArgumentError, match="not supported yet"):
        check_engine("ray")
    with pytest.raises(InvalidArgumentError, match="choose one of: local, ray"):
        check_engine("k8s")


def _signature(*features: tuple[str, FeatureType], kind: OutputKind = OutputKind.CLASSIFICATION) -> Signature:
    classes = (0, 1) if kind is OutputKind.CLASSIFICATION else None
    return Signature(
        tuple(FeatureSpec(name, kind_) for name, kind_ in features), OutputSpec(kind, "int64", classes=classes)
    )


def test_a_retrained_signature_may_change_ranges_and_int_to_float_but_not_what_callers_send_or_get() -> None:
    parent = _signature(("age", FeatureType.INTEGER), ("city", FeatureType.STRING))
    assert signature_changes(parent, _signature(("age", FeatureType.FLOAT), ("city", FeatureType.STRING))) == []
    assert signature_changes(parent, _signature(("age", FeatureType.INTEGER))) == ["features missing: 'city'"]
    assert signature_changes(parent, _signature(("city", FeatureType.STRING), ("age", FeatureType.INTEGER))) == [
        "features in another order: ['city', 'age'] instead of ['age', 'city']"
    ]
    assert signature_changes(parent, _signature(("age", FeatureType.INTEGER), ("city", FeatureType.FLOAT))) == [
        "feature 'city' is float, was string"
    ]
    regressor = _signature(("age", FeatureType.INTEGER), ("city", FeatureType.STRING), kind=OutputKind.REGRESSION)
    assert signature_changes(parent, regressor) == ["output is regression, was classification"]
