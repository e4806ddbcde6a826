"""A judgement call as data, and its replay: how an auditor recomputes a verdict from the timeline.

`GameDay.judge()` records, beside each verdict in `verdict.json`, the call that made it: the
judgement (`harness.judgements.writes:recovery`), its arguments in a JSON form, how many timeline
records it saw (a judgement made while the probes still ran saw only a prefix of the final file)
and the call's number in the scenario (one call can give several verdicts). `replay()` runs the
same pure judgement over the same prefix of the bundled timeline, so a verdict edited by hand, or
one the harness got wrong, shows as a disagreement.

Arguments that are objects get a tagged JSON form: a documented target by its catalog id
(`{"$target": "failover-with-replicas"}`), a cluster member as its fields (`{"$member": {...}}`).
An argument with no JSON form makes the call unreplayable (said in the record), never a failure.

Replay only ever calls a public function of a `harness.judgements` module: a bundle is untrusted
input, and its records must not name arbitrary code to run.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.cluster import Member
from harness.judgements import Evidence
from harness.targets import Target, load_targets
from harness.timeline import Record
from harness.verdicts import Verdict

__all__ = ["CALL_FIELDS", "ReplayError", "judgement_call", "replay", "resolve"]

PACKAGE = "harness.judgements"
CALL_FIELDS = ("judgement", "arguments", "timeline_records", "call")  # what a verdict in verdict.json gains


class ReplayError(ValueError):
    """A recorded call that cannot be replayed: the message says why."""


class _NoJsonForm(TypeError):
    pass


def judgement_call(judgement: Callable[..., Any], arguments: Mapping[str, Any], *, timeline_records: int,
                   call: int) -> dict[str, Any]:
    """The record of one `GameDay.judge()` call, as merged into each of its verdicts."""
    record: dict[str, Any] = {"judgement": f"{judgement.__module__}:{judgement.__qualname__}", "arguments": None,
                              "timeline_records": timeline_records, "call": call}
    try:
        record["arguments"] = {name: _encode(value) for name, value in arguments.items()}
    except _NoJsonForm as error:
        record["unreplayable"] = str(error)
    return record


def resolve(reference: str) -> Callable[..., Any]:
    """The judgement a record names; only public functions of `harness.judgements` modules."""
    module_name, _, name = reference.partition(":")
    if not (module_name.startswith(PACKAGE + ".") and module_name.count(".") == 2 and name.isidentifier()):
        raise ReplayError(f"{reference!r} is not a judgement of {PACKAGE}")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ReplayError(f"this harness has no judgement module {module_name}") from None
    function = getattr(module, name, None)
    if name not in getattr(module, "__all__", ()) or not callable(function):
        raise ReplayError(f"{module_name} has no public judgement {name!r}")
    return function


def replay(call: Mapping[str, Any], records: Sequence[Record]) -> list[Verdict]:
    """The verdicts the recorded call gives over the timeline prefix it saw."""
    if call.get("arguments") is None:
        raise ReplayError(call.get("unreplayable") or "the call's arguments were not recorded")
    seen = call.get("timeline_records")
    if not isinstance(seen, int) or seen < 0:
        raise ReplayError("the call does not say how many timeline records it saw")
    if seen > len(records):
        raise ReplayError(f"the call saw {seen} timeline records; the timeline has {len(records)}")
    judgement = resolve(str(call.get("judgement", "")))
    arguments = {name: _decode(value) for name, value in call["arguments"].items()}
    result = judgement(Evidence.of(list(records[:seen])), **arguments)
    return result if isinstance(result, list) else [result]


def _encode(value: Any) -> Any:
    if isinstance(value, Target):
        return {"$target": value.id}
    if isinstance(value, Member):
        return {"$member": dataclasses.asdict(value)}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NoJsonForm(f"{value} has no JSON form")
        return value
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    raise _NoJsonForm(f"an argument of type {type(value).__name__} has no JSON form")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if isinstance(value, dict):
        if set(value) == {"$target"}:
            targets = load_targets()
            if value["$target"] not in targets:
                raise ReplayError(f"this harness's catalog has no target {value['$target']!r}")
            return targets[value["$target"]]
        if set(value) == {"$member"} and isinstance(value["$member"], dict):
            try:
                return Member(**value["$member"])
            except TypeError as error:
                raise ReplayError(f"a recorded member does not fit this harness: {error}") from None
        raise ReplayError(f"an argument of unknown form: {sorted(value)}")
    return value
