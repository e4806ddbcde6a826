"""Aurora MySQL's fault-injection statements, parsed exactly as the User Guide writes them.

Source: "Testing Amazon Aurora MySQL using fault injection queries" (Aurora User Guide) and
"Displaying volume status for an Aurora MySQL DB cluster":

    ALTER SYSTEM CRASH [ INSTANCE | DISPATCHER | NODE ];
    ALTER SYSTEM SIMULATE percentage_of_failure PERCENT READ REPLICA FAILURE
        [ TO ALL | TO "replica name" ]
        FOR INTERVAL quantity { YEAR | QUARTER | MONTH | WEEK | DAY | HOUR | MINUTE | SECOND };
    ALTER SYSTEM SIMULATE percentage_of_failure PERCENT DISK FAILURE
        [ IN DISK index | NODE index ]
        FOR INTERVAL quantity { YEAR | ... | SECOND };
    ALTER SYSTEM SIMULATE percentage_of_failure PERCENT DISK CONGESTION
        BETWEEN minimum AND maximum MILLISECONDS
        [ IN DISK index | NODE index ]
        FOR INTERVAL quantity { YEAR | ... | SECOND };
    SHOW VOLUME STATUS;

Keywords are case-insensitive, whitespace and comments go anywhere between tokens, and the
trailing semicolon is optional. The bracket `[ IN DISK index | NODE index ]` is read as `IN`
followed by `DISK index` or `NODE index`; `NODE index` without `IN` (the literal reading of
the brackets) and `DISK index` without `IN` are accepted too. The replica name may be quoted
with double quotes (as documented) or single quotes.

Pure: no I/O. `parse()` says whether a statement is one of these (None: pass it to the
engine untouched) and what it asks for, or raises `MySqlError` the way MySQL words it
(syntax errors are error 1064, SQLSTATE 42000, "... near '<rest>' at line n"). Index ranges
depend on the cluster volume, so the emulator checks them ("... the maximum index is N").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# MySQL error codes (mysqld_error.h) and their SQLSTATEs.
ER_PARSE_ERROR = 1064  # 42000
ER_SPECIFIC_ACCESS_DENIED = 1227  # 42000
ER_WRONG_ARGUMENTS = 1210  # HY000
ER_UNKNOWN_ERROR = 1105  # HY000

SYNTAX_MESSAGE = ("You have an error in your SQL syntax; check the manual that corresponds to your MySQL server "
                  "version for the right syntax to use near '{near}' at line {line}")
ACCESS_MESSAGE = ("Access denied; you need (at least one of) the master user privilege(s) for this operation "
                  "(fault injection queries require all of the master user privileges)")
ARGUMENTS_PREFIX = "Incorrect arguments to ALTER SYSTEM SIMULATE: "

CRASH_KINDS = ("INSTANCE", "DISPATCHER", "NODE")
# FOR INTERVAL units in seconds. A month is 30 days, a quarter 3 months, a year 365 days.
UNIT_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400, "WEEK": 7 * 86400,
                "MONTH": 30 * 86400, "QUARTER": 90 * 86400, "YEAR": 365 * 86400}


class MySqlError(Exception):
    """An error as a MySQL server reports it: code, SQLSTATE, message (what an ERR packet carries)."""

    def __init__(self, code: int, sqlstate: str, message: str):
        super().__init__(message)
        self.code, self.sqlstate, self.message = code, sqlstate, message

    def __repr__(self) -> str:
        return f"MySqlError({self.code}, {self.sqlstate!r}, {self.message!r})"


def wrong_arguments(detail: str) -> MySqlError:
    return MySqlError(ER_WRONG_ARGUMENTS, "HY000", ARGUMENTS_PREFIX + detail)


def access_denied() -> MySqlError:
    return MySqlError(ER_SPECIFIC_ACCESS_DENIED, "42000", ACCESS_MESSAGE)


# --- statements ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Crash:
    """ALTER SYSTEM CRASH [INSTANCE | DISPATCHER | NODE]: kind is lower case."""

    kind: str = "instance"

    def fault(self) -> dict[str, object]:
        return {"type": "crash", "kind": self.kind}


@dataclass(frozen=True)
class ReplicaFailure:
    """ALTER SYSTEM SIMULATE n PERCENT READ REPLICA FAILURE [TO ALL | TO "name"] FOR INTERVAL ..."""

    percent: float
    seconds: float
    replica: str | None = None  # None: TO ALL

    def fault(self) -> dict[str, object]:
        return {"type": "replica_failure", "percent": self.percent, "seconds": self.seconds,
                "replica": self.replica}


@dataclass(frozen=True)
class DiskFailure:
    """ALTER SYSTEM SIMULATE n PERCENT DISK FAILURE [IN DISK i | NODE i] FOR INTERVAL ..."""

    percent: float
    seconds: float
    index: int | None = None  # None: the whole volume
    is_disk: bool = True  # DISK index (a logical block) rather than NODE index (a storage node)

    def fault(self) -> dict[str, object]:
        return {"type": "disk_failure", "percent": self.percent, "seconds": self.seconds, "index": self.index,
                "is_disk": self.is_disk}


@dataclass(frozen=True)
class DiskCongestion:
    """ALTER SYSTEM SIMULATE n PERCENT DISK CONGESTION BETWEEN a AND b MILLISECONDS [...] FOR INTERVAL ..."""

    percent: float
    seconds: float
    min_ms: float
    max_ms: float
    index: int | None = None
    is_disk: bool = True

    def fault(self) -> dict[str, object]:
        return {"type": "disk_congestion", "percent": self.percent, "seconds": self.seconds, "index": self.index,
                "is_disk": self.is_disk, "min_ms": self.min_ms, "max_ms": self.max_ms}


@dataclass(frozen=True)
class ShowVolumeStatus:
    """SHOW VOLUME STATUS: the number of logical blocks (Disks) and storage nodes (Nodes)."""


Statement = Crash | ReplicaFailure | DiskFailure | DiskCongestion | ShowVolumeStatus


# --- lexing -----------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>/\*.*?\*/|--(?:[ \t][^\n]*)?(?=\n|$)|\#[^\n]*)
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z_$]))
  | (?P<word>[A-Za-z_$][A-Za-z0-9_$]*|\d+[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<string>"(?:[^"\\]|\\.|"")*"|'(?:[^'\\]|\\.|'')*')
  | (?P<symbol>.)
""", re.VERBOSE | re.DOTALL)


@dataclass(frozen=True)
class _Token:
    kind: str  # word | number | string | symbol | end
    text: str
    start: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else self.text


def _tokens(sql: str) -> list[_Token]:
    out = []
    position = 0
    while position < len(sql):
        match = _TOKEN.match(sql, position)
        assert match is not None  # `symbol` matches any character
        kind = match.lastgroup or "symbol"
        if kind not in ("space", "comment"):
            out.append(_Token(kind, match.group(), position))
        position = match.end()
    out.append(_Token("end", "", len(sql)))
    return out


_LEADING = re.compile(r"(?:\s+|/\*(?!!).*?\*/|--[ \t][^\n]*(?:\n|$)|#[^\n]*(?:\n|$))*", re.DOTALL)
_HEADS = (["ALTER", "SYSTEM"], ["SHOW", "VOLUME"])


def is_fault_statement(sql: str) -> bool:
    """Cheap test: do the first two words say ALTER SYSTEM or SHOW VOLUME (comments allowed)?

    Only the start of the query is looked at: every client query passes through here.
    """
    start = _LEADING.match(sql)
    position = start.end() if start else 0
    head = sql[position:position + 5].upper()
    if head != "ALTER" and not head.startswith("SHOW"):
        return False
    words = [t.upper for t in _tokens(sql[position:position + 512])[:2]]
    return words in _HEADS


# --- parsing ----------------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, sql: str):
        self.sql = sql
        self.tokens = _tokens(sql)
        self.i = 0

    # -- cursor
    @property
    def token(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        if token.kind != "end":
            self.i += 1
        return token

    def error(self, token: _Token | None = None) -> MySqlError:
        """MySQL's syntax error: the text from the offending token on, 80 characters at most."""
        token = token or self.token
        near = self.sql[token.start:][:80]
        line = self.sql.count("\n", 0, token.start) + 1
        return MySqlError(ER_PARSE_ERROR, "42000", SYNTAX_MESSAGE.format(near=near, line=line))

    def peek_word(self, *words: str) -> bool:
        return self.token.kind == "word" and self.token.upper in words

    def word(self, *words: str) -> str:
        if not self.peek_word(*words):
            raise self.error()
        return self.advance().upper

    def optional(self, word: str) -> bool:
        if self.peek_word(word):
            self.advance()
            return True
        return False

    def number(self, *, signed: bool = True) -> float:
        sign = 1.0
        if signed and self.token.kind == "symbol" and self.token.text in "+-":
            sign = -1.0 if self.advance().text == "-" else 1.0
        if self.token.kind != "number":
            raise self.error()
        return sign * float(self.advance().text)

    def integer(self) -> int:
        if self.token.kind != "number" or not self.token.text.isdigit():
            raise self.error()
        return int(self.advance().text)

    def string(self) -> str:
        if self.token.kind != "string":
            raise self.error()
        text = self.advance().text
        quote = text[0]
        body = text[1:-1].replace(quote * 2, quote)
        return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "0": "\0"}.get(m.group(1), m.group(1)), body)

    def end(self) -> None:
        if self.token.kind == "symbol" and self.token.text == ";":
            self.advance()
        if self.token.kind != "end":
            raise self.error()

    # -- grammar
    def statement(self) -> Statement:
        if self.optional("SHOW"):
            self.word("VOLUME")
            self.word("STATUS")
            self.end()
            return ShowVolumeStatus()
        self.word("ALTER")
        self.word("SYSTEM")
        if self.optional("CRASH"):
            kind = self.advance().upper if self.peek_word(*CRASH_KINDS) else "INSTANCE"
            self.end()
            return Crash(kind.lower())
        self.word("SIMULATE")
        percent = self.number()
        self.word("PERCENT")
        if self.optional("READ"):
            self.word("REPLICA")
            self.word("FAILURE")
            replica = None
            if self.optional("TO") and not self.optional("ALL"):
                replica = self.string()
            seconds = self.interval()
            self.end()
            check_percent(percent)
            return ReplicaFailure(percent, seconds, replica)
        self.word("DISK")
        kind = self.word("FAILURE", "CONGESTION")
        low = high = 0.0
        if kind == "CONGESTION":
            self.word("BETWEEN")
            low = self.number()
            self.word("AND")
            high = self.number()
            self.word("MILLISECONDS")
        index, is_disk = self.target()
        seconds = self.interval()
        self.end()
        check_percent(percent)
        if kind == "FAILURE":
            return DiskFailure(percent, seconds, index, is_disk)
        if low < 0 or high < 0:
            raise wrong_arguments(f"congestion delays cannot be negative (got {low:g} and {high:g} MILLISECONDS)")
        if high < low:
            raise wrong_arguments(f"the maximum congestion delay ({high:g} MILLISECONDS) is below the minimum "
                                  f"({low:g} MILLISECONDS)")
        return DiskCongestion(percent, seconds, low, high, index, is_disk)

    def target(self) -> tuple[int | None, bool]:
        """[ IN DISK index | NODE index ]"""
        had_in = self.optional("IN")
        if self.peek_word("DISK", "NODE"):
            is_disk = self.advance().upper == "DISK"
            return self.integer(), is_disk
        if had_in:
            raise self.error()
        return None, True

    def interval(self) -> float:
        """FOR INTERVAL quantity unit, in seconds."""
        self.word("FOR")
        self.word("INTERVAL")
        quantity = self.number()
        unit = self.word(*UNIT_SECONDS)
        if quantity < 0:
            raise wrong_arguments(f"the interval cannot be negative (got {quantity:g} {unit})")
        return quantity * UNIT_SECONDS[unit]


def check_percent(percent: float) -> None:
    if not 0 <= percent <= 100:
        raise wrong_arguments(f"percentage_of_failure must be a number between 0 and 100 (got {percent:g})")


def parse(sql: str) -> Statement | None:
    """The fault-injection statement `sql` is, None when it is none (pass it on), or MySqlError."""
    if not is_fault_statement(sql):
        return None
    return _Parser(sql).statement()
