"""What a feedback item does to what is stored: nothing, fill an empty field, correct, or conflict."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.core.feedback import FeedbackInput, Outcome, compare, conflict_message, same_value


def item(label: Any = None, reward: float | None = None, *, correction: bool = False) -> FeedbackInput:
    return FeedbackInput("req-1", 0, label, reward, None, correction)


@pytest.mark.parametrize(
    ("stored", "sent", "outcome"),
    [
        ((2, None), item(2), Outcome.UNCHANGED),
        ((2, 1.0), item(reward=1.0), Outcome.UNCHANGED),
        ((2.0, None), item(2), Outcome.UNCHANGED),  # a regression label 2 is 2.0
        ((None, 0.5), item(1), Outcome.FILLED),
        ((1, None), item(1, 0.5), Outcome.FILLED),
        ((2, None), item(0), Outcome.CONFLICT),
        ((2, 1.0), item(2, 0.0), Outcome.CONFLICT),
        (("yes", None), item(True), Outcome.CONFLICT),  # not the same type, not the same label
        ((2, None), item(0, correction=True), Outcome.CORRECTED),
        ((2, None), item(2, correction=True), Outcome.UNCHANGED),  # a retried correction changes nothing more
    ],
)
def test_an_item_against_the_stored_values(
    stored: tuple[Any, float | None], sent: FeedbackInput, outcome: Outcome
) -> None:
    assert compare(*stored, sent) is outcome


def test_booleans_are_not_numbers_when_comparing_labels() -> None:
    assert not same_value(True, 1) and same_value(1, 1.0) and same_value("a", "a")


def test_the_conflict_message_names_the_request_the_stored_value_and_both_ways_to_correct() -> None:
    message = conflict_message("fraud", item(0, 1.0), 2, 1.0, others=3)
    assert message.startswith("feedback for request 'req-1' row 0 already has label 2, not label 0 (3 more")
    assert '"correction": true' in message and "PUT /v1/endpoints/fraud/feedback" in message
