"""Response bodies never name a path on the server: absolute paths are cut to their last part."""

from __future__ import annotations

import pytest

from shipyard.serving.redact import without_paths

DIGEST = "8e981680c0d2a63408d2800c559a962cf04723a79cd9bc2d6ff1e69f9e0e3541"


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        (
            f"artifact of iris:2 is corrupt: expected sha256 {DIGEST} (/home/ann/.shipyard/sha256/8e/{DIGEST})",
            f"artifact of iris:2 is corrupt: expected sha256 {DIGEST} ({DIGEST})",
        ),
        ("no file at /tmp/x/artifacts/model.onnx.", "no file at model.onnx."),
        ('importing "/srv/app/models/model.py" failed', 'importing "model.py" failed'),
        ("cannot open file:///home/ann/data/model.bin", "cannot open model.bin"),
        ("cannot read C:\\Users\\ann\\shipyard\\model.bin", "cannot read model.bin"),
    ],
)
def test_absolute_paths_are_cut_to_their_last_part(message: str, shown: str) -> None:
    assert without_paths(message) == shown


@pytest.mark.parametrize(
    "message",
    [
        "send labels to POST /v1/endpoints/fraud/feedback",
        "see https://example.com/docs/serving/errors",
        "rows 1/2 and a/b/c are relative",
        "'instances' must be a list of rows, not an object",
    ],
)
def test_api_paths_urls_and_plain_text_are_left_alone(message: str) -> None:
    assert without_paths(message) == message
