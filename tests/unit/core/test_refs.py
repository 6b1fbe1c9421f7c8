"""Model references parse into name plus version or alias, and refuse anything else clearly."""

from __future__ import annotations

import pytest

from shipyard.core.refs import ModelRef, check_alias, check_model_name
from shipyard.errors import InvalidArgumentError, InvalidRefError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fraud", ModelRef("fraud")),
        ("fraud:3", ModelRef("fraud", version=3)),
        ("fraud:latest", ModelRef("fraud")),
        ("fraud@champion", ModelRef("fraud", alias="champion")),
        ("my.model-v2_x:12", ModelRef("my.model-v2_x", version=12)),
    ],
)
def test_valid_refs_parse_and_print_back(text: str, expected: ModelRef) -> None:
    ref = ModelRef.parse(text)
    assert ref == expected
    assert ModelRef.parse(str(ref)) == ref


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "fraud:",
        "fraud:0",
        "fraud:-1",
        "fraud:x",
        "fraud@",
        "fraud@3",
        "fraud@a@b",
        "@champion",
        ":3",
        "fr aud",
        "fraud:1:2",
        "-x",
    ],
)
def test_malformed_refs_are_refused_with_the_expected_forms(text: str) -> None:
    with pytest.raises(InvalidRefError, match="invalid model reference"):
        ModelRef.parse(text)


def test_names_and_aliases_are_checked() -> None:
    assert check_model_name("fraud") == "fraud"
    with pytest.raises(InvalidArgumentError):
        check_model_name("a/b")
    with pytest.raises(InvalidArgumentError, match="reserved"):
        check_alias("latest")
    with pytest.raises(InvalidArgumentError):
        check_alias("3")
