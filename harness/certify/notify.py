"""`--notify URL`: a short JSON summary of a run, posted to a webhook when the run ends.

For scheduled game days: a chat or incident tool learns the outcome without anyone opening a
report. The summary says what an on-call person needs first (passed, breached or could not run;
which checks breached; which figures regressed; where the report and the bundle are) and nothing
secret. The URL itself often is a secret (a Slack webhook carries its token in the path), so it
is never printed or logged: only its scheme and host are.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from harness.run import EXIT_BREACHED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, RunResult

__all__ = ["NotifyError", "check_url", "notify", "run_summary", "where"]

TIMEOUT_S = 10
MAX_LISTED = 10
OUTCOMES = {EXIT_OK: "passed", EXIT_BREACHED: "breached", EXIT_USAGE: "usage error",
            EXIT_UNAVAILABLE: "could not run"}


class NotifyError(RuntimeError):
    """The webhook could not be told (the message names its host, never the whole URL)."""


def check_url(url: str) -> str:
    """The URL if it is an http(s) URL with a host; ValueError (naming only its scheme) otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--notify needs an http:// or https:// URL with a host (got a {parts.scheme or 'bare'} "
                         f"one)")
    return url


def where(url: str) -> str:
    """What may be said about a webhook URL: its scheme and host, never its path or query."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def run_summary(result: RunResult, *, command: str, regressions: Sequence[str] = (),
                extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body: the outcome first, then counts, what breached, what regressed, where things are."""
    statuses = [o.status for o in result.outcomes]
    breached = [f"{scenario['scenario']}: {verdict['check']}: {verdict['explanation']}"
                for scenario in result.summary.get("scenarios", []) for verdict in scenario.get("verdicts", [])
                if verdict.get("status") == "PolicyBreached"]
    summary: dict[str, Any] = {
        "tool": "aurora-gameday", "command": command, "run_id": result.run_id,
        "outcome": OUTCOMES.get(result.status, "failed"), "exit_code": result.status,
        "target": result.target, "engines": result.engines,
        "started": result.started.isoformat(timespec="seconds"),
        "finished": result.finished.isoformat(timespec="seconds"),
        "scenarios": {"total": len(statuses), **{s: statuses.count(s) for s in ("passed", "failed", "error",
                                                                                  "skipped")}},
        "breached": breached[:MAX_LISTED], "breached_total": len(breached),
        "regressions": list(regressions)[:MAX_LISTED], "regressions_total": len(regressions),
        "run_dir": str(result.run_dir),
    }
    summary.update(extra or {})
    return summary


def notify(url: str, summary: Mapping[str, Any]) -> int:
    """POST the summary as JSON; the HTTP status, or NotifyError."""
    body = json.dumps(summary, ensure_ascii=False).encode()
    request = urllib.request.Request(check_url(url), data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "aurora-gameday"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - http(s) checked above
            return response.status
    except urllib.error.HTTPError as error:
        raise NotifyError(f"the webhook at {where(url)} answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise NotifyError(f"the webhook at {where(url)} could not be reached: {reason}") from None
