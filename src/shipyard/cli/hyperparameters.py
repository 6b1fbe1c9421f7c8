"""Hyperparameters as a reviewer reads them: a pipeline's steps, each with its own settings, once.

scikit-learn's ``get_params(deep=True)``, which the registry stores, lists a pipeline three times over:
``steps`` (the repr of every step), each step by name (its repr again) and every parameter of every
step as ``step__param``, defaults included. The model card shows each step once, as scikit-learn's
repr, which names only the parameters changed from their defaults, and the plain top-level settings;
``shipyard models show --json`` still prints everything that was stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

_NESTED = "__"


@dataclass(frozen=True, slots=True)
class HyperparameterSummary:
    """The top-level settings as ``key=value`` text and the components (pipeline steps) by name."""

    settings: tuple[tuple[str, str], ...]
    components: tuple[tuple[str, str], ...]


def summarise(params: Mapping[str, Any]) -> HyperparameterSummary:
    """Collapse ``get_params(deep=True)`` output: components once each, their ``name__param`` keys dropped.

    A component is a top-level key that other keys nest under (``scaler`` for ``scaler__with_mean``).
    A top-level list of components (``steps``, ``transformers``, ``estimators``) repeats them and is
    dropped too. Parameters of a plain estimator, with nothing nested, are all kept.
    """
    components = {key.split(_NESTED, 1)[0] for key in params if _NESTED in key}
    components &= {key for key in params if _NESTED not in key}
    settings: list[tuple[str, str]] = []
    shown: list[tuple[str, str]] = []
    for key, value in params.items():
        if _NESTED in key and key.split(_NESTED, 1)[0] in components:
            continue
        if key in components:
            shown.append((key, _text(value)))
        elif components and _lists_components(value, components):
            continue
        else:
            settings.append((key, _text(value)))
    return HyperparameterSummary(tuple(settings), tuple(shown))


def _lists_components(value: Any, components: set[str]) -> bool:
    """``steps``-like values, stored as the repr of ``[('name', Estimator()), ...]``, name the components."""
    if not isinstance(value, str) or not value.startswith("[("):
        return False
    return any(f"('{name}'," in value for name in components)


def _text(value: Any) -> str:
    """One line: a nested estimator's repr can span several."""
    return " ".join(str(value).split())


def render_hyperparameters(console: Console, params: Mapping[str, Any]) -> None:
    """``hyperparameters  key=value, …`` then one indented line per component (pipeline step)."""
    from rich.table import Table
    from rich.text import Text

    summary = summarise(params)
    line = Text.assemble(("hyperparameters", "bold"), "  ")
    line.append(", ".join(f"{k}={v}" for k, v in summary.settings) or "-")
    console.print(line)
    if summary.components:
        steps = Table.grid(padding=(0, 2))
        steps.add_column(no_wrap=True)
        steps.add_column(overflow="fold")
        for name, text in summary.components:
            steps.add_row(Text(f"  {name}"), Text(text))
        console.print(steps)
