"""Alert rules: what to watch (a metric path on an endpoint's version), when it counts, and what to do.

A rule is declared in ``shipyard.toml``/YAML (``shipyard alerts apply``) or with ``shipyard alerts create``;
both build it here, so a bad rule fails at declaration with the field, the value and what is allowed.
``for_windows`` is how many consecutive stored windows the condition must hold before the rule fires.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.alerts.metrics import metric
from shipyard.errors import InvalidArgumentError
from shipyard.rollouts.spec import parse_duration

OPS: Mapping[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
SEVERITIES = ("info", "warning", "critical")
ACTIONS = ("rollback", "pause", "pin_previous", "retrain")
SOURCES = ("cli", "file")
STABLE = "stable"
"""The version selector that follows whatever the endpoint serves now (default)."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One declared rule; ``group_key`` names the single series (endpoint, version, feature) it watches."""

    name: str
    endpoint: str
    metric: str
    op: str
    threshold: float
    for_windows: int = 1
    version: str = STABLE
    feature: str | None = None
    severity: str = "warning"
    labels: Mapping[str, str] = field(default_factory=dict)
    action: str | None = None
    confirm: bool = False
    """The action waits for ``shipyard alerts ack RULE`` by an operator instead of running when it fires."""
    source: str = "cli"

    @property
    def group_key(self) -> str:
        return "|".join((self.endpoint, self.version, self.feature or ""))

    def breached(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)

    def describe(self) -> str:
        on = f"{self.endpoint}" + (f" {self.version}" if self.version != STABLE else "")
        feature = f"[{self.feature}]" if self.feature else ""
        return f"{on} {self.metric}{feature} {self.op} {self.threshold:g} for {self.for_windows} window(s)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "endpoint": self.endpoint,
            "version": self.version,
            "metric": self.metric,
            "feature": self.feature,
            "op": self.op,
            "threshold": self.threshold,
            "for": self.for_windows,
            "severity": self.severity,
            "labels": dict(self.labels),
            "action": self.action,
            "confirm": self.confirm,
            "source": self.source,
        }


def _threshold(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidArgumentError(f"rule {name!r}: threshold must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise InvalidArgumentError(f"rule {name!r}: threshold must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InvalidArgumentError(f"rule {name!r}: threshold must be a finite number, got {value!r}")
    return number


def _for_windows(value: object, name: str, window_s: int) -> int:
    """``2`` is two windows; ``10m`` is a duration, a whole number of windows of ``window_s``."""
    if isinstance(value, bool):
        raise InvalidArgumentError(f"rule {name!r}: for must be a number of windows or a duration, got {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        windows = int(value)
        if windows < 1:
            raise InvalidArgumentError(f"rule {name!r}: for must be at least 1 window, got {value!r}")
        return windows
    if isinstance(value, float):
        raise InvalidArgumentError(f"rule {name!r}: for must be a whole number of windows, got {value!r}")
    seconds = parse_duration(value if isinstance(value, str) else repr(value), option=f"rule {name!r}: for")
    if seconds < window_s:
        raise InvalidArgumentError(
            f"rule {name!r}: for {value!r} is shorter than one monitoring window ({window_s}s); "
            f"alerts are evaluated on whole windows, so use at least {window_s}s or a count such as 1"
        )
    return int(seconds // window_s)


def parse_rule(data: Mapping[str, Any], *, window_s: int, source: str = "cli") -> AlertRule:
    """A rule from its declared fields (the CLI's options, a YAML/TOML entry); errors name the bad field."""
    name = str(data.get("name") or "")
    if not _NAME.match(name):
        raise InvalidArgumentError(
            f"rule name must be 1-128 letters, digits, '_', '.' or '-' (starting with a letter or digit), got {name!r}"
        )
    known = {"name", "endpoint", "version", "metric", "feature", "op", "threshold", "for", "severity", "labels"}
    known |= {"action", "confirm"}
    unknown = sorted(set(data) - known - {"source"})
    if unknown:
        raise InvalidArgumentError(
            f"rule {name!r}: unknown field(s) {', '.join(unknown)}; fields: {', '.join(sorted(known))}"
        )
    for required in ("endpoint", "metric", "op", "threshold"):
        if data.get(required) in (None, ""):
            raise InvalidArgumentError(f"rule {name!r}: {required} is required")
    feature = data.get("feature") or None
    path = str(data["metric"])
    metric(path, feature=feature)
    op = str(data["op"]).strip()
    if op not in OPS:
        raise InvalidArgumentError(f"rule {name!r}: op must be one of {' '.join(OPS)}, got {op!r}")
    severity = str(data.get("severity") or "warning")
    if severity not in SEVERITIES:
        raise InvalidArgumentError(f"rule {name!r}: severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    action = data.get("action") or None
    if action is not None and action not in ACTIONS:
        raise InvalidArgumentError(f"rule {name!r}: action must be one of {', '.join(ACTIONS)}, got {action!r}")
    confirm = data.get("confirm", False)
    if not isinstance(confirm, bool):
        raise InvalidArgumentError(f"rule {name!r}: confirm must be true or false, got {confirm!r}")
    if confirm and action is None:
        raise InvalidArgumentError(f"rule {name!r}: confirm needs an action to confirm")
    labels = data.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise InvalidArgumentError(f"rule {name!r}: labels must be a mapping of name to value, got {labels!r}")
    for key in labels:
        if not _LABEL.match(str(key)):
            raise InvalidArgumentError(f"rule {name!r}: label name {key!r} must be letters, digits and '_'")
    if source not in SOURCES:
        raise InvalidArgumentError(f"rule source must be one of {', '.join(SOURCES)}, got {source!r}")
    return AlertRule(
        name=name,
        endpoint=str(data["endpoint"]),
        metric=path,
        op=op,
        threshold=_threshold(data["threshold"], name),
        for_windows=_for_windows(data.get("for", 1), name, window_s),
        version=str(data.get("version") or STABLE),
        feature=str(feature) if feature is not None else None,
        severity=severity,
        labels={str(k): str(v) for k, v in labels.items()},
        action=str(action) if action is not None else None,
        confirm=confirm,
        source=source,
    )


def parse_label(text: str) -> tuple[str, str]:
    """``team=risk`` from the CLI's ``--label``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise InvalidArgumentError(f"--label must be name=value, got {text!r}")
    return key.strip(), value.strip()


def rules_from_document(document: object, *, window_s: int) -> list[AlertRule]:
    """Rules from a parsed YAML/TOML document: ``{"alerts": [ {...}, ... ]}`` or a bare list."""
    entries = document.get("alerts") if isinstance(document, Mapping) else document
    if isinstance(entries, Mapping) and isinstance(entries.get("rules"), list):
        entries = entries["rules"]
    if not isinstance(entries, list):
        raise InvalidArgumentError("an alerts file holds a list of rules under 'alerts' (or alerts.rules)")
    rules: list[AlertRule] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise InvalidArgumentError(f"alerts[{index}] must be a mapping of rule fields, got {entry!r}")
        rules.append(parse_rule(entry, window_s=window_s, source="file"))
    names = [r.name for r in rules]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidArgumentError(f"rule name(s) declared twice: {', '.join(twice)}")
    return rules


def rule_from_dict(data: Mapping[str, Any]) -> AlertRule:
    """A stored rule (``to_dict()``) back, without re-checking the window (it was checked at declaration)."""
    return AlertRule(
        name=str(data["name"]),
        endpoint=str(data["endpoint"]),
        metric=str(data["metric"]),
        op=str(data["op"]),
        threshold=float(data["threshold"]),
        for_windows=int(data.get("for", 1)),
        version=str(data.get("version") or STABLE),
        feature=data.get("feature"),
        severity=str(data.get("severity", "warning")),
        labels={str(k): str(v) for k, v in dict(data.get("labels") or {}).items()},
        action=data.get("action"),
        confirm=bool(data.get("confirm", False)),
        source=str(data.get("source", "cli")),
    )
