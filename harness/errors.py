"""Errors a scenario reports instead of a verdict: something it needs is missing, or it was stopped."""

from __future__ import annotations

__all__ = ["GameDayAborted", "ScenarioError"]


class ScenarioError(RuntimeError):
    """The scenario cannot go on (a step's precondition does not hold); the message says why."""


class GameDayAborted(ScenarioError):
    """A stop condition held the fault back: there is nothing after the fault to judge."""
