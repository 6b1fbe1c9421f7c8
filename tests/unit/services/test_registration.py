"""``shipyard.register`` and ``RegistrationOptions`` cannot drift apart: same names, types, defaults, all passed on."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import typing
from typing import Any

import pandas as pd
import pytest

from shipyard import api
from shipyard.core.profile import build_reference_profile
from shipyard.errors import InvalidArgumentError
from shipyard.services.registration import RegistrationOptions


def _public_fields() -> dict[str, tuple[Any, Any]]:
    hints = typing.get_type_hints(RegistrationOptions)
    return {
        f.name: (f.default, hints[f.name])
        for f in dataclasses.fields(RegistrationOptions)
        if f.metadata.get("public", True)
    }


def test_shipyard_register_takes_exactly_the_public_options_with_their_types_and_defaults() -> None:
    hints = typing.get_type_hints(api.register)
    parameters = list(inspect.signature(api.register).parameters.values())
    assert parameters[0].name == "model"
    taken = {
        p.name: (dataclasses.MISSING if p.default is inspect.Parameter.empty else p.default, hints[p.name])
        for p in parameters[1:]
    }
    assert taken == _public_fields()


def test_shipyard_register_passes_every_keyword_on_under_its_own_name() -> None:
    """A keyword in the signature but not handed to RegistrationOptions would be silently ignored."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(api.register)))
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "RegistrationOptions"
    ]
    assert len(calls) == 1
    passed = {kw.arg: kw.value.id for kw in calls[0].keywords if isinstance(kw.value, ast.Name)}
    assert passed == {name: name for name in _public_fields()}
    assert not calls[0].args and len(calls[0].keywords) == len(passed)


def test_options_are_keyword_only_and_frozen() -> None:
    options = RegistrationOptions(name="fraud")
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.name = "churn"  # type: ignore[misc]
    with pytest.raises(TypeError):
        RegistrationOptions("fraud")  # type: ignore[misc]


def test_a_reference_profile_with_training_data_is_refused_naming_both() -> None:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    profile = build_reference_profile(frame, predictions=[0, 1, 1], classification=True)
    with pytest.raises(InvalidArgumentError, match=r"'fraud'.*both training_data and a precomputed reference_profile"):
        RegistrationOptions(name="fraud", training_data=frame, reference_profile=profile)
    assert RegistrationOptions(name="fraud", reference_profile=profile).reference_profile is profile
