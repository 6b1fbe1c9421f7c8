"""Rich renderings of models and versions: listings and the model card."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shipyard.cli.hyperparameters import render_hyperparameters
from shipyard.core.profile import CategoricalProfile, NumericProfile
from shipyard.core.signature import OutputKind
from shipyard.core.versions import ModelSummary, ModelVersion
from shipyard.services.outliers import unavailable_reason

# Listings are laid out for a terminal as narrow as 80 columns: short columns (numbers, statuses, dates) never
# wrap, references (names, aliases) keep their full width while they fit, and anything longer wraps in its
# cell rather than being cut off with '…'.
_GAP = 2  # spaces between columns


def _listing(title: str) -> Table:
    return Table(title=title, title_justify="left", box=None, pad_edge=False, padding=(0, 1), header_style="bold")


def _longest(cells: Iterable[str], header: str) -> int:
    return max([len(header), *(len(line) for cell in cells for line in cell.splitlines())])


def _ref_widths(wanted: Sequence[int], room: int) -> list[int]:
    """Full width for each reference column while they fit in ``room``; else fair shares of it, none below 8.

    The narrower columns are served first, so one long cell does not make every other column wrap.
    """
    widths = list(wanted)
    left, pending = room, sorted(range(len(wanted)), key=lambda i: wanted[i])
    while pending:
        share = max(8, left // len(pending))
        i = pending.pop(0)
        widths[i] = min(wanted[i], share)
        left -= widths[i]
    return widths


def render_model_list(console: Console, models: Sequence[ModelSummary]) -> None:
    if not models:
        console.print("no models registered yet; `shipyard models register --help` shows how")
        return
    names = [m.name for m in models]
    aliases = ["\n".join(f"@{a}→{v}" for a, v in m.aliases.items()) or "-" for m in models]
    fixed = len("latest") + len("versions") + len("YYYY-MM-DD") + 4 * _GAP
    name_width, alias_width = _ref_widths(
        [_longest(names, "name"), _longest(aliases, "aliases")], console.width - fixed
    )
    table = _listing("models")
    table.add_column("name", width=name_width, overflow="fold")
    table.add_column("latest", justify="right", no_wrap=True)
    table.add_column("versions", justify="right", no_wrap=True)
    table.add_column("aliases", width=alias_width, overflow="fold")
    table.add_column("updated", overflow="fold")  # the time of day wraps under the date when space is short
    for m, name, alias in zip(models, names, aliases, strict=True):
        table.add_row(name, str(m.latest_version), str(m.versions), alias, m.updated_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


def render_version_list(console: Console, name: str, versions: Sequence[ModelVersion]) -> None:
    """One row per version. The owner and the time of day are on the card (`models show`), and the sha256
    column gives way when aliases and metrics would otherwise have to wrap, so 80 columns are enough."""
    aliases = ["\n".join(f"@{a}" for a in v.aliases) or "-" for v in versions]
    metrics = ["\n".join(f"{k}={val:g}" for k, val in v.metrics.items()) or "-" for v in versions]
    wanted = [_longest(aliases, "aliases"), _longest(metrics, "metrics")]
    fixed = len("version") + len("registered") + _longest(map(_flavor_cell, versions), "flavor") + len("YYYY-MM-DD")
    with_sha = sum(wanted) <= console.width - fixed - len("sha256xx") - 6 * _GAP
    alias_width, metrics_width = _ref_widths(wanted, console.width - fixed - (5 + with_sha) * _GAP - 8 * with_sha)
    table = _listing(f"versions of {name}")
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("aliases", width=alias_width, overflow="fold")
    table.add_column("flavor", no_wrap=True)
    if with_sha:
        table.add_column("sha256", no_wrap=True)
    table.add_column("metrics", width=metrics_width, overflow="fold")
    table.add_column("created", no_wrap=True)
    for v, alias, metric in zip(versions, aliases, metrics, strict=True):
        sha = [v.sha256[:8]] if with_sha else []
        table.add_row(
            str(v.version), v.status.value, alias, _flavor_cell(v), *sha, metric, v.created_at.strftime("%Y-%m-%d")
        )
    console.print(table)
    if any(v.runs_code for v in versions):
        console.print("(code): loading it runs code (a pickle, a pyfunc's source); `models show` says who vouched")


def _flavor_cell(v: ModelVersion) -> str:
    return f"{v.flavor} (code)" if v.runs_code else v.flavor


def render_card(console: Console, v: ModelVersion, *, identical_to: Sequence[str] = ()) -> None:
    """Every recorded field of a version, grouped the way a reviewer reads them.

    ``identical_to`` names other versions with the same artifact bytes (a re-registration).
    """
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    rows = [
        ("model", v.ref),
        ("status", v.status.value),
        ("approval", _approval(v)),
        ("aliases", ", ".join(f"{v.name}@{a}" for a in v.aliases) or "-"),
        ("flavor", f"{v.flavor} {dict(v.flavor_options)}"),
        ("artifact", f"sha256 {v.sha256}, {v.size_bytes:,} bytes" + _identical(identical_to)),
        ("loading", _loading(v)),
        ("created", f"{v.created_at.isoformat()} by {v.owner}"),
        ("registered by", v.registered_by or "not recorded (registered before Shipyard kept it)"),
        ("parent", f"{v.name}:{v.parent_version}" if v.parent_version else "-"),
        ("source", v.source),
        ("code", _code(v)),
        ("training data", f"sha256 {v.training_data_hash}" if v.training_data_hash else "not given"),
        ("metrics", ", ".join(f"{k}={val:g}" for k, val in v.metrics.items()) or "-"),
        ("tags", ", ".join(f"{k}={val}" for k, val in v.tags.items()) or "-"),
        ("notes", v.notes or "-"),
    ]
    for key, value in rows:
        facts.add_row(key, value)
    console.print(facts)

    out = v.signature.output
    output = f"{out.kind.value} ({out.dtype}{', shape ' + str(list(out.shape)) if out.shape else ''})"
    if out.classes is not None:
        output += f", classes {list(out.classes)}" + (", with probabilities" if out.has_probabilities else "")
    console.print(f"[bold]output[/]  {output}")

    signature = Table(title="signature", title_justify="left")
    for column in ("feature", "type", "nullable", "seen in sample", "missing", "profile"):
        signature.add_column(column)
    profile = v.reference_profile
    for f in v.signature.features:
        seen = "-"
        if f.categories is not None:
            shown = ", ".join(str(c) for c in f.categories[:6])
            seen = f"{len(f.categories)} levels: {shown}{', …' if len(f.categories) > 6 else ''}"
        elif f.min is not None:
            seen = f"{f.min:g} .. {f.max:g}"
        missing = f"{f.missing_rate:.1%}" if f.missing_rate is not None else "-"
        signature.add_row(
            f.name + (" (sensitive)" if f.sensitive else ""),
            f.type.value,
            "yes" if f.nullable else "no",
            seen,
            missing,
            _profile_summary(profile.features.get(f.name) if profile else None),
        )
    console.print(signature)

    if v.hyperparameters:
        render_hyperparameters(console, v.hyperparameters)
    if profile is None:
        console.print("[bold]reference profile[/]  none (register with training_data to monitor drift)")
    else:
        line = f"[bold]reference profile[/]  {profile.rows:,} training rows"
        if profile.prediction is not None:
            line += f"; predictions: {_profile_summary(profile.prediction)}"
        if profile.target is not None:
            line += f"; target: {_profile_summary(profile.target)}"
        console.print(line)
    calibrator = _calibrator_summary(v)
    if calibrator:
        console.print(f"[bold]confidence calibrator[/]  {calibrator}")
    outliers = v.outlier_model.summary() if v.outlier_model is not None else unavailable_reason(v)
    console.print(f"[bold]outlier model[/]  {escape(outliers)}")
    loss = _loss_model_summary(v)
    if loss:
        console.print(f"[bold]loss model (DLE)[/]  {escape(loss)}")


def _loss_model_summary(v: ModelVersion) -> str | None:
    """Which labelled rows taught the regressor's loss model and their realised errors; why there is none."""
    if v.signature.output.kind is not OutputKind.REGRESSION:
        return None
    model = v.loss_model
    if model is None:
        return "none: MAE and RMSE cannot be estimated without labels (register with 40+ labelled rows)"
    caveat = " (errors on training rows flatter the model: pass calibration_data)" if model.data == "training" else ""
    spread = model.reference
    return (
        f"{model.rows:,} {model.data} rows{caveat}; there MAE {spread.absolute_mean:.4g}, RMSE {spread.rmse:.4g}; "
        f"{model.absolute.trees} + {model.squared.trees} trees"
    )


def _identical(refs: Sequence[str]) -> str:
    return f"; identical to {', '.join(refs)}" if refs else ""


def _loading(v: ModelVersion) -> str:
    """Whether loading the version runs someone's code, and who vouched for it."""
    if not v.runs_code:
        if v.trusted:
            return (
                "registered with --trusted: it may rebuild types outside the reviewed scikit-learn/NumPy/SciPy set"
                f"; vouched for by {v.vouched_by or 'not recorded'}"
            )
        return "runs no code (only reviewed types are rebuilt)"
    if v.trusted:
        return f"runs code when loaded (registered with --trusted); vouched for by {v.vouched_by or 'not recorded'}"
    return "runs code when loaded, and nobody vouched for it: it loads only for a caller passing trusted=True"


def _approval(v: ModelVersion) -> str:
    """Who approved the version for production, when and why: what a reviewer checks before it serves."""
    a = v.approval
    if a is None:
        return "approved (who and why not recorded)" if v.approved else "not approved"
    return f"by {a.by} at {a.at.isoformat(timespec='seconds')}: {a.reason or '(no reason given)'}"


def _code(v: ModelVersion) -> str:
    if not v.code.commit:
        return "not in a git repository" if v.code.repository is None else f"{v.code.repository} (no commit yet)"
    dirty = " (uncommitted changes)" if v.code.dirty else ""
    return f"{v.code.commit[:12]}{dirty} in {v.code.repository}"


def _calibrator_summary(v: ModelVersion) -> str | None:
    """Which labelled rows calibrate the label-free accuracy estimate, and its non-empty bins as
    "confidence range -> accuracy (rows)"; None for a model without class probabilities."""
    calibrator = v.confidence_calibrator
    if calibrator is None:
        if not v.signature.output.has_probabilities:
            return None
        return "none: the label-free accuracy estimate is the model's own confidence (register with a target)"
    caveat = " (an overfit model looks calibrated on its training rows: pass calibration_data)"
    line = f"{calibrator.rows:,} {calibrator.data} rows, {calibrator.bins} bins"
    line += caveat if calibrator.data == "training" else ""
    width = 1 / calibrator.bins
    shown = [
        f"{i * width:.2f}-{(i + 1) * width:.2f} -> {accuracy:.2f} ({count:,})"
        for i, (accuracy, count) in enumerate(zip(calibrator.accuracy, calibrator.counts, strict=True))
        if count
    ]
    return line + ("; " + ", ".join(shown) if shown else "")


def _profile_summary(p: NumericProfile | CategoricalProfile | None) -> str:
    if p is None:
        return "-"
    if isinstance(p, NumericProfile):
        if p.count == 0:
            return "no values"
        return f"{len(p.counts)} bins, mean {p.mean:.4g}, sd {p.variance**0.5:.4g}"
    top = sorted(p.counts.items(), key=lambda kv: -kv[1])[:3]
    total = p.count or 1
    return ", ".join(f"{k} {n / total:.0%}" for k, n in top)
