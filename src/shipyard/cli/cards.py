"""Rich renderings of models and versions: listings and the model card."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from shipyard.core.profile import CategoricalProfile, NumericProfile
from shipyard.core.versions import ModelSummary, ModelVersion


def render_model_list(console: Console, models: Sequence[ModelSummary]) -> None:
    if not models:
        console.print("no models registered yet; `shipyard models register --help` shows how")
        return
    table = Table(title="models")
    for column in ("name", "latest", "versions", "aliases", "updated"):
        table.add_column(column)
    for m in models:
        aliases = ", ".join(f"@{a}→{v}" for a, v in m.aliases.items()) or "-"
        table.add_row(m.name, str(m.latest_version), str(m.versions), aliases, m.updated_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


def render_version_list(console: Console, name: str, versions: Sequence[ModelVersion]) -> None:
    table = Table(title=f"versions of {name}")
    for column in ("version", "status", "aliases", "flavor", "sha256", "metrics", "owner", "created"):
        table.add_column(column)
    for v in versions:
        metrics = ", ".join(f"{k}={val:g}" for k, val in v.metrics.items()) or "-"
        table.add_row(
            str(v.version),
            v.status.value,
            ", ".join(f"@{a}" for a in v.aliases) or "-",
            v.flavor,
            v.sha256[:12],
            metrics,
            v.owner,
            v.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


def render_card(console: Console, v: ModelVersion) -> None:
    """Every recorded field of a version, grouped the way a reviewer reads them."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    rows = [
        ("model", v.ref),
        ("status", v.status.value),
        ("aliases", ", ".join(f"{v.name}@{a}" for a in v.aliases) or "-"),
        ("flavor", f"{v.flavor} {dict(v.flavor_options)}"),
        ("artifact", f"sha256 {v.sha256}, {v.size_bytes:,} bytes"),
        ("created", f"{v.created_at.isoformat()} by {v.owner}"),
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
        params = ", ".join(f"{k}={val}" for k, val in list(v.hyperparameters.items())[:40])
        more = f" … ({len(v.hyperparameters) - 40} more)" if len(v.hyperparameters) > 40 else ""
        console.print(f"[bold]hyperparameters[/]  {params}{more}")
    if profile is None:
        console.print("[bold]reference profile[/]  none (register with training_data to monitor drift)")
    else:
        line = f"[bold]reference profile[/]  {profile.rows:,} training rows"
        if profile.prediction is not None:
            line += f"; predictions: {_profile_summary(profile.prediction)}"
        if profile.target is not None:
            line += f"; target: {_profile_summary(profile.target)}"
        console.print(line)


def _code(v: ModelVersion) -> str:
    if not v.code.commit:
        return "not in a git repository" if v.code.repository is None else f"{v.code.repository} (no commit yet)"
    dirty = " (uncommitted changes)" if v.code.dirty else ""
    return f"{v.code.commit[:12]}{dirty} in {v.code.repository}"


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
