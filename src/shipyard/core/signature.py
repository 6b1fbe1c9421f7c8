"""The input/output contract of a model version, as stored and as shown to people."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class FeatureType(StrEnum):
    """The few value types a feature can have; finer dtypes are the flavor's business."""

    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    STRING = "string"
    DATETIME = "datetime"

    @property
    def is_numeric(self) -> bool:
        return self in (FeatureType.INTEGER, FeatureType.FLOAT)


class OutputKind(StrEnum):
    """What a prediction means: a class label, a number, or a tensor per row."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    TENSOR = "tensor"


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One input feature: its type, whether it may be missing, and what training looked like."""

    name: str
    type: FeatureType
    nullable: bool = False
    categories: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    missing_rate: float | None = None
    sensitive: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type.value, "nullable": self.nullable}
        if self.categories is not None:
            out["categories"] = list(self.categories)
        for key in ("min", "max", "missing_rate"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.sensitive:
            out["sensitive"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        categories = data.get("categories")
        return cls(
            name=str(data["name"]),
            type=FeatureType(data["type"]),
            nullable=bool(data.get("nullable", False)),
            categories=tuple(categories) if categories is not None else None,
            min=data.get("min"),
            max=data.get("max"),
            missing_rate=data.get("missing_rate"),
            sensitive=bool(data.get("sensitive", False)),
        )


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """The model's output: its kind, element dtype, per-row shape and, for classifiers, classes."""

    kind: OutputKind
    dtype: str
    shape: tuple[int, ...] = ()
    classes: tuple[Any, ...] | None = None
    has_probabilities: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value, "dtype": self.dtype, "shape": list(self.shape)}
        if self.classes is not None:
            out["classes"] = list(self.classes)
        out["has_probabilities"] = self.has_probabilities
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputSpec:
        classes = data.get("classes")
        return cls(
            kind=OutputKind(data["kind"]),
            dtype=str(data["dtype"]),
            shape=tuple(int(d) for d in data.get("shape", ())),
            classes=tuple(classes) if classes is not None else None,
            has_probabilities=bool(data.get("has_probabilities", False)),
        )


@dataclass(frozen=True, slots=True)
class Signature:
    """Features in the order the model takes them, and what it returns."""

    features: tuple[FeatureSpec, ...]
    output: OutputSpec
    names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = tuple(f.name for f in self.features)
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"signature has duplicate feature names: {dupes}")
        object.__setattr__(self, "names", names)

    @property
    def all_numeric(self) -> bool:
        return all(f.type.is_numeric or f.type is FeatureType.BOOLEAN for f in self.features)

    def feature(self, name: str) -> FeatureSpec:
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def with_sensitive(self, names: Sequence[str]) -> Signature:
        """Mark features as sensitive (for fairness monitoring) without touching anything else."""
        unknown = sorted(set(names) - set(self.names))
        if unknown:
            raise ValueError(f"unknown sensitive features {unknown}; the signature has {list(self.names)}")
        marked = tuple(replace(f, sensitive=f.name in names) for f in self.features)
        return Signature(marked, self.output)

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [f.to_dict() for f in self.features], "output": self.output.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        return cls(
            tuple(FeatureSpec.from_dict(f) for f in data["inputs"]),
            OutputSpec.from_dict(data["output"]),
        )
