"""``shipyard models``: register, list, show, alias, approve, archive, import and convert.

Commands import the registry (and pandas, scikit-learn) inside their functions: `shipyard models --help`
and `shipyard models list` must not pay for what registering a model needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli.context import console, parse_pairs, print_json, read_table, state
from shipyard.cli.jobs import set_trainer
from shipyard.errors import InvalidArgumentError

app = typer.Typer(
    help="The model registry: versions, aliases and model cards.\n\nExample: shipyard models list fraud",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("register")
def register(
    path: Annotated[
        str,
        typer.Argument(help="Model file: .skops, .pkl/.joblib, .onnx, .json/.ubj, .txt, .pt, or file.py:Class"),
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name, e.g. fraud.")],
    flavor: Annotated[
        str | None,
        typer.Option(help="sklearn, onnx, xgboost, lightgbm, torch or pyfunc; detected if left out."),
    ] = None,
    sample: Annotated[
        str | None, typer.Option(help="CSV/Parquet of example rows; the signature is inferred from it.")
    ] = None,
    training_data: Annotated[
        str | None, typer.Option(help="CSV/Parquet of training rows, for the reference profile.")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="Column of the sample/training file holding the label (dropped from features)."),
    ] = None,
    calibration_data: Annotated[
        str | None,
        typer.Option(
            help="CSV/Parquet of held-out labelled rows (with the --target column): they calibrate the label-free "
            "accuracy estimate, better than the training rows an overfit model knows by heart."
        ),
    ] = None,
    trusted: Annotated[
        bool,
        typer.Option("--trusted", help="Vouch for code that runs when loaded: a pickle/joblib file, a pyfunc."),
    ] = False,
    outlier_model: Annotated[
        str,
        typer.Option(
            "--outlier-model",
            help="Novelty model fitted on --training-data that scores every served row: mahalanobis, "
            "isolation_forest, or none.",
        ),
    ] = "mahalanobis",
    metric: Annotated[list[str] | None, typer.Option("--metric", "-m", help="key=value, repeatable.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="key=value, repeatable.")] = None,
    notes: Annotated[str, typer.Option(help="Free text for the model card.")] = "",
    owner: Annotated[str | None, typer.Option(help="Owner; the OS user if left out.")] = None,
    sensitive_feature: Annotated[
        list[str] | None,
        typer.Option(
            "--sensitive-feature",
            metavar="NAME",
            help="A feature to monitor fairness across (e.g. gender), repeatable; it must be in the signature.",
        ),
    ] = None,
    code_dir: Annotated[
        Path | None,
        typer.Option(help="Directory of the code that trained the model; its git commit is recorded. Default: here."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Register a model file as the next version of a model (uploaded to the server when SHIPYARD_URL is set).

    Example: shipyard models register model.skops --name fraud --sample train.csv --target label
    """
    sample_frame = _without_target(read_table(sample, what="sample"), target) if sample else None
    training = read_table(training_data, what="training data") if training_data else None
    training_target = None
    if training is not None and target is not None:
        if target not in training.columns:
            raise InvalidArgumentError(f"training data has no column {target!r}; columns: {list(training.columns)}")
        training_target = training[target].to_numpy()
        training = training.drop(columns=[target])
    holdout = read_table(calibration_data, what="calibration data") if calibration_data else None
    holdout_target = None
    if holdout is not None:
        if target is None or target not in holdout.columns:
            raise InvalidArgumentError(
                f"--calibration-data needs --target naming its label column; columns: {list(holdout.columns)}"
            )
        holdout_target = holdout[target].to_numpy()
        holdout = holdout.drop(columns=[target])
    metrics: dict[str, Any] = {}
    for key, value in parse_pairs(metric or [], what="metric").items():
        try:
            metrics[key] = float(value)
        except ValueError:
            raise InvalidArgumentError(f"metric {key!r} must be a number, got {value!r}") from None
    remote = state.remote
    if remote is not None:
        from shipyard.cli.remote import table_json
        from shipyard.services.lineage import code_info, current_user

        file_part, _, entry = path.partition(".py:")
        code = code_info(code_dir if code_dir is not None else Path.cwd())
        metadata = {
            "flavor": flavor,
            "entry": entry or None,
            "trusted": trusted,
            "sample_input": table_json(sample_frame) if sample_frame is not None else None,
            "training_data": table_json(training) if training is not None else None,
            "training_target": training_target.tolist() if training_target is not None else None,
            "calibration_data": table_json(holdout) if holdout is not None else None,
            "calibration_target": holdout_target.tolist() if holdout_target is not None else None,
            "metrics": metrics,
            "tags": parse_pairs(tag or [], what="tag"),
            "notes": notes,
            "owner": owner or current_user(),
            "sensitive_features": list(sensitive_feature or ()),
            "code": code.to_dict(),
            "outlier_model": outlier_model,
        }
        card = remote.register(file_part + ".py" if entry else path, name, metadata=metadata)
        if as_json:
            print_json(card)
            return
        console.print(
            f"registered [bold]{card['ref']}[/] ({card['flavor']}, sha256 {card['sha256'][:12]}…) on {remote.url}"
        )
        return
    from shipyard.services.registration import RegistrationOptions

    options = RegistrationOptions(
        name=name,
        flavor=flavor,
        trusted=trusted,
        sample_input=sample_frame,
        training_data=training,
        training_target=training_target,
        calibration_data=holdout,
        calibration_target=holdout_target,
        metrics=metrics,
        tags=parse_pairs(tag or [], what="tag"),
        notes=notes,
        owner=owner,
        sensitive_features=tuple(sensitive_feature or ()),
        code_dir=code_dir if code_dir is not None else Path.cwd(),
        outlier_model=outlier_model,
    )
    version = state.workspace.registry.register_file(path, options, actor=state.actor)
    if as_json:
        print_json(version.to_dict())
        return
    console.print(f"registered [bold]{version.ref}[/] ({version.flavor}, sha256 {version.sha256[:12]}…)")


@app.command("list")
def list_(
    name: Annotated[str | None, typer.Argument(help="A model name, to list its versions.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List models, or the versions of one model.

    Example: shipyard models list fraud --json
    """
    from shipyard.cli.cards import render_model_list, render_version_list

    remote = state.remote
    if remote is not None:
        from shipyard.cli.remote import summary_from_dict, version_from_card

        models = [summary_from_dict(m) for m in remote.models()] if name is None else []
        versions = [version_from_card(v) for v in remote.versions(name)] if name is not None else []
    else:
        from shipyard.cli.catalog import Catalog

        catalog = Catalog.open()
        try:
            models = catalog.models() if name is None else []
            versions = catalog.versions(name) if name is not None else []
        finally:
            catalog.close()
    if name is None:
        if as_json:
            print_json(
                [
                    {
                        "name": m.name,
                        "latest_version": m.latest_version,
                        "versions": m.versions,
                        "aliases": dict(m.aliases),
                        "created_at": m.created_at.isoformat(),
                        "updated_at": m.updated_at.isoformat(),
                    }
                    for m in models
                ]
            )
            return
        render_model_list(console, models)
        return
    if as_json:
        print_json([_brief(v.to_dict()) for v in versions])
        return
    render_version_list(console, name, versions)


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="fraud:3, fraud@champion or fraud (latest).")],
    as_json: JsonOption = False,
) -> None:
    """Show a version's model card: artifact, signature, profile, lineage, metrics.

    Example: shipyard models show fraud@champion
    """
    from rich.markup import escape

    from shipyard.cli.cards import render_card
    from shipyard.monitoring.validation_records import ValidationResult

    remote = state.remote
    if remote is not None:
        from shipyard.cli.remote import version_from_card

        data = remote.model(ref)
        version, identical = version_from_card(data), list(data.get("identical_to") or [])
        runs = remote.validations(version.name, version.version, limit=1)
        validation = ValidationResult.from_dict(runs[0]) if runs else None
    else:
        registry = state.workspace.registry
        version = registry.get(ref)
        identical = registry.identical_versions(version)
        validation = state.workspace.validation.latest(version)
    if as_json:
        latest = validation.to_dict() if validation is not None else None
        print_json({**version.to_dict(), "identical_to": identical, "latest_validation": latest})
        return
    render_card(console, version, identical_to=identical)
    shown = f"#{validation.id} {validation.summary()}" if validation is not None else "none (`shipyard validate`)"
    console.print(f"[bold]latest validation[/]  {escape(shown)}")


@app.command("alias")
def alias(
    ref: Annotated[str, typer.Argument(help="The version the alias should point at, e.g. fraud:3.")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="Alias name, e.g. champion.")],
    remove: Annotated[bool, typer.Option("--remove", help="Delete the alias instead.")] = False,
) -> None:
    """Point an alias at a version (atomically), or remove it.

    Example: shipyard models alias fraud:3 champion
    """
    from shipyard.core.refs import ModelRef

    remote = state.remote
    if remote is not None:
        parsed = ModelRef.parse(ref)
        if remove:
            remote.remove_alias(parsed.name, alias_name)
            console.print(f"removed {parsed.name}@{alias_name}")
            return
        number = parsed.version if parsed.version is not None else int(remote.model(ref)["version"])
        moved = remote.set_alias(parsed.name, alias_name, number)
        console.print(f"{moved['name']}@{alias_name} -> {moved['ref']}")
        return
    registry = state.workspace.registry
    if remove:
        registry.remove_alias(ModelRef.parse(ref).name, alias_name, actor=state.actor)
        console.print(f"removed {ModelRef.parse(ref).name}@{alias_name}")
        return
    version = registry.set_alias(ref, alias_name, actor=state.actor)
    console.print(f"{version.name}@{alias_name} -> {version.ref}")


@app.command("approve")
def approve(
    ref: Annotated[str, typer.Argument(help="e.g. fraud:3")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why it may go to production; kept on the card and in the audit trail.")
    ] = "",
) -> None:
    """Approve a version for production, recording who approved it, when and why.

    Endpoints created with --require-approval serve, follow and roll out to approved versions only. With
    four-eyes on (SHIPYARD_FOUR_EYES, the default) an identity cannot approve a version it registered.
    Example: shipyard models approve fraud:3 --reason "AUC 0.93 on the March holdout"
    """
    remote = state.remote
    if remote is not None:
        from shipyard.cli.remote import version_from_card

        version = version_from_card(remote.approve(ref, reason=reason))
    else:
        version = state.workspace.registry.approve(ref, reason=reason, actor=state.actor)
    approval = version.approval
    by = f" by {approval.by}" if approval is not None else ""
    console.print(f"{version.ref} is {version.status.value}{by}")


@app.command("archive")
def archive(ref: Annotated[str, typer.Argument(help="e.g. fraud:2")]) -> None:
    """Archive a version (refused while an alias points at it).

    Example: shipyard models archive fraud:2
    """
    remote = state.remote
    if remote is not None:
        card = remote.archive(ref)
        console.print(f"{card['ref']} is {card['status']}")
        return
    version = state.workspace.registry.archive(ref, actor=state.actor)
    console.print(f"{version.ref} is {version.status.value}")


app.command("set-trainer")(set_trainer)  # in cli.jobs, beside the retraining it serves


@app.command("import-mlflow")
def import_mlflow(
    path: Annotated[str, typer.Argument(help="A directory saved by MLflow (it holds an MLmodel file).")],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name in Shipyard.")],
    trusted: Annotated[
        bool, typer.Option("--trusted", help="Allow pickled models (they can run code when loaded).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Register a model saved by MLflow (sklearn, xgboost, lightgbm or onnx flavor), keeping its signature.

    Example: shipyard models import-mlflow ./mlruns/0/abc/artifacts/model --name fraud
    """
    from shipyard.services.mlflow_import import import_mlflow_model

    version = import_mlflow_model(state.workspace.registry, path, name=name, trusted=trusted)
    if as_json:
        print_json(version.to_dict())
        return
    console.print(f"imported [bold]{version.ref}[/] ({version.flavor}) from {path}")


@app.command("convert")
def convert(
    ref: Annotated[str, typer.Argument(help="A scikit-learn model version, e.g. fraud:3.")],
    to: Annotated[str, typer.Option("--to", help="Target flavor; only onnx is supported.")] = "onnx",
) -> None:
    """Convert a version to ONNX; kept as a new version only if its outputs match the original's.

    Example: shipyard models convert fraud:3 --to onnx
    """
    from shipyard.services.convert import convert_version

    version = convert_version(state.workspace.registry, ref, to=to)
    console.print(f"converted to [bold]{version.ref}[/] ({version.flavor}), outputs match the original")


def _without_target(frame: Any, target: str | None) -> Any:
    if target is not None and target in frame.columns:
        return frame.drop(columns=[target])
    return frame


def _brief(card: dict[str, Any]) -> dict[str, Any]:
    card = dict(card)
    card.pop("reference_profile", None)
    return card
