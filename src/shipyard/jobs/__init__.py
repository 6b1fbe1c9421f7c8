"""Retraining jobs at work: the worker that picks queued jobs up, the runner that runs one in a subprocess,
and the child process that builds the training set, calls the trainer and registers what it returns.

A trainer is the user's code: ``def main(data_path, parent) -> model`` (``module:function``) or a command
reading ``SHIPYARD_TRAINING_DATA`` and writing its model file into ``SHIPYARD_MODEL_OUTPUT``; see
``shipyard.jobs.contract`` for what it receives.
"""

from __future__ import annotations

from shipyard.jobs.contract import ParentVersion

__all__ = ["ParentVersion"]
