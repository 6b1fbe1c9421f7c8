"""The input adapter: every input form becomes what the model takes, or an error naming feature and row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.core.inputs import InputAdapter, InputLayout
from shipyard.core.signature import FeatureSpec, FeatureType, OutputKind, OutputSpec, Signature
from shipyard.errors import SignatureError

OUT = OutputSpec(OutputKind.REGRESSION, "float64")
NUMERIC = Signature((FeatureSpec("a", FeatureType.FLOAT), FeatureSpec("b", FeatureType.INTEGER, nullable=True)), OUT)
MIXED = Signature(
    (
        FeatureSpec("age", FeatureType.INTEGER),
        FeatureSpec("city", FeatureType.STRING, categories=("x", "y")),
        FeatureSpec("vip", FeatureType.BOOLEAN),
    ),
    OUT,
)


def adapter(sig: Signature, layout: InputLayout, *, strict: bool = False) -> InputAdapter:
    return InputAdapter(sig, layout=layout, label="m:1", strict=strict)


def test_numeric_forms_all_become_the_same_matrix() -> None:
    expected = np.array([[1.0, 2.0], [3.0, np.nan]])
    a = adapter(NUMERIC, InputLayout.ARRAY)
    forms = [
        expected,
        pd.DataFrame(expected, columns=["a", "b"]),
        [{"a": 1.0, "b": 2}, {"a": 3, "b": None}],
        {"a": [1.0, 3.0], "b": [2, None]},
        [[1.0, 2.0], [3.0, None]],
    ]
    for form in forms:
        np.testing.assert_array_equal(np.asarray(a(form), dtype=float), expected)


def test_a_single_row_can_be_a_flat_array_or_a_dict_of_scalars() -> None:
    a = adapter(NUMERIC, InputLayout.ARRAY)
    np.testing.assert_array_equal(a(np.array([1.0, 2.0])), [[1.0, 2.0]])
    np.testing.assert_array_equal(a({"a": 1.0, "b": 2.0}), [[1.0, 2.0]])


def test_well_formed_matrix_passes_through_without_copy() -> None:
    matrix = np.ones((3, 2))
    assert adapter(NUMERIC, InputLayout.ARRAY)(matrix) is matrix


def test_frame_layout_keeps_types_and_order() -> None:
    frame = adapter(MIXED, InputLayout.FRAME)([{"vip": True, "city": "x", "age": 3, "extra": 1}])
    assert list(frame.columns) == ["age", "city", "vip"]
    assert frame["age"].dtype == np.int64 and frame["vip"].dtype == bool


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"age": 1, "city": "x", "vip": True}, {"age": "old", "city": "x", "vip": True}],
            "row 1: feature 'age' expects a number, got 'old'",
        ),
        ([{"age": 1, "city": 5, "vip": True}], "row 0: feature 'city' expects a string, got 5"),
        ([{"age": 1, "city": "x", "vip": "yes"}], "row 0: feature 'vip' expects true or false"),
        ([{"age": None, "city": "x", "vip": True}], "row 0: feature 'age' is missing \\(null\\)"),
        ([{"city": "x", "vip": True}], "row 0: feature 'age' is missing; m:1 expects"),
        ([{"age": 1, "city": "x", "vip": True}, "not a row"], "row 1: expected an object"),
        ([], "no rows"),
    ],
)
def test_bad_rows_name_feature_and_row(rows: list, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        adapter(MIXED, InputLayout.FRAME)(rows)


def test_numeric_array_errors() -> None:
    a = adapter(NUMERIC, InputLayout.ARRAY)
    with pytest.raises(SignatureError, match="input has 3 features, but m:1 expects 2"):
        a(np.ones((2, 3)))
    with pytest.raises(SignatureError, match="row 1: feature 'a' is missing"):
        a(np.array([[1.0, 1.0], [np.nan, 1.0]]))
    with pytest.raises(SignatureError, match="row 0: feature 'a' expects a number, got 'x'"):
        a([{"a": "x", "b": 1}])
    with pytest.raises(SignatureError, match="different lengths"):
        a({"a": [1.0, 2.0], "b": [1.0]})
    with pytest.raises(SignatureError, match="input is missing feature \\['b'\\]"):
        a(pd.DataFrame({"a": [1.0]}))


def test_extra_features_are_ignored_unless_strict() -> None:
    rows = [{"a": 1.0, "b": 2.0, "zzz": 3}]
    assert adapter(NUMERIC, InputLayout.ARRAY)(rows).shape == (1, 2)
    with pytest.raises(SignatureError, match="unexpected feature \\['zzz'\\]"):
        adapter(NUMERIC, InputLayout.ARRAY, strict=True)(rows)
    with pytest.raises(SignatureError, match="unexpected feature"):
        adapter(NUMERIC, InputLayout.ARRAY, strict=True)({"a": [1.0], "b": [1.0], "zzz": [1]})


def test_dataframe_string_column_with_a_number_is_refused() -> None:
    frame = pd.DataFrame({"age": [1, 2], "city": ["x", 3], "vip": [True, False]})
    with pytest.raises(SignatureError, match="row 1: feature 'city' expects a string, got 3"):
        adapter(MIXED, InputLayout.FRAME)(frame)


def nested(depth: int) -> list:
    value: list = [0]
    for _ in range(depth):
        value = [value]
    return value


def test_a_value_nested_a_thousand_lists_deep_is_named_in_a_short_message() -> None:
    deep = nested(1000)
    with pytest.raises(SignatureError, match=r"row 0: feature 'age' expects a number, got \[\[\[.* \(list\)$") as row:
        adapter(MIXED, InputLayout.FRAME)([{"age": deep, "city": "x", "vip": True}])
    assert len(str(row.value)) < 120
    with pytest.raises(SignatureError, match=r"row 1: feature 'a' expects a number, got \[\["):
        adapter(NUMERIC, InputLayout.ARRAY)({"a": [1.0, deep], "b": [1, 2]})
    huge = list(range(1_000_000))
    with pytest.raises(
        SignatureError, match=r"row 0: feature 'city' expects a string, got \[0, 1, 2, 3, \.\.\.\] \(list\)"
    ):
        adapter(MIXED, InputLayout.FRAME)([{"age": 1, "city": huge, "vip": True}])
