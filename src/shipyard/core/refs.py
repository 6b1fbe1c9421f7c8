"""Model references: ``fraud`` (latest), ``fraud:3`` (a version), ``fraud@champion`` (an alias)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shipyard.errors import InvalidArgumentError, InvalidRefError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
ALIAS_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
RESERVED_ALIASES = frozenset({"latest"})


def check_model_name(name: str) -> str:
    """Refuse names that would not survive a URL path, a file name or a ref."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InvalidArgumentError(
            f"invalid model name {name!r}: use 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return name


def check_alias(alias: str) -> str:
    """Aliases start with a letter so that ``fraud@3`` can never be mistaken for a version."""
    if not isinstance(alias, str) or not ALIAS_PATTERN.match(alias):
        raise InvalidArgumentError(
            f"invalid alias {alias!r}: use 1-64 letters, digits, '_' or '-', starting with a letter"
        )
    if alias in RESERVED_ALIASES:
        raise InvalidArgumentError(f"alias {alias!r} is reserved; choose another name")
    return alias


@dataclass(frozen=True, slots=True)
class ModelRef:
    """What a caller asked for; resolving it to a version is the registry's job."""

    name: str
    version: int | None = None
    alias: str | None = None

    @property
    def is_latest(self) -> bool:
        return self.version is None and self.alias is None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse ``name``, ``name:N``, ``name:latest`` or ``name@alias``."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidRefError(f"invalid model reference {text!r}: expected NAME, NAME:VERSION or NAME@ALIAS")
        text = text.strip()
        if "@" in text:
            name, _, alias = text.partition("@")
            if not alias or "@" in alias or ":" in alias or not ALIAS_PATTERN.match(alias):
                raise InvalidRefError(
                    f"invalid model reference {text!r}: the alias after '@' must be letters, "
                    "digits, '_' or '-', starting with a letter (e.g. fraud@champion)"
                )
            return cls(_ref_name(name, text), alias=alias)
        if ":" in text:
            name, _, version = text.partition(":")
            if version == "latest":
                return cls(_ref_name(name, text))
            if not version.isdigit() or int(version) < 1:
                raise InvalidRefError(
                    f"invalid model reference {text!r}: the version after ':' must be a whole "
                    "number from 1 (e.g. fraud:3) or 'latest'"
                )
            return cls(_ref_name(name, text), version=int(version))
        return cls(_ref_name(text, text))


def _ref_name(name: str, text: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InvalidRefError(
            f"invalid model reference {text!r}: the model name {name!r} must be 1-128 letters, digits, '_', '.' or '-'"
        )
    return name
