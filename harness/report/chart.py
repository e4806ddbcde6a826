"""The timeline chart: one scenario's history as a self-contained SVG an SRE reads at a glance.

Everything sits on ONE time axis, in seconds since the first record, so cause and effect line
up vertically: the fault marker, the cluster's status and writer, the write outage, each read
probe's failures, each load's throughput and errors (what the application saw), and the
visibility lag that follows. A game day records ~10^4 write attempts,
so attempts are drawn as per-bucket counts (stacked bars), never one mark per attempt. The SVG
has no script and no external asset: it is evidence, viewable anywhere, forever.

Times are taken as the checkers in `harness.measure` take them: an attempt counts at its `end`
(when the client learnt the outcome), a fault at its `start` (when it was issued).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape

from harness.measure.common import ack_times, reads_by_probe
from harness.timeline import Record

__all__ = ["lag_samples", "timeline_svg"]

WIDTH = 1200
LEFT = 170  # lane labels live left of the plot
RIGHT = 24
PLOT_W = WIDTH - LEFT - RIGHT
MAX_BUCKETS = 240
STRIP = 6  # height of the worst-outcome strip atop the write lane
LAG_FLOOR = 0.001  # the lag scale starts at 1 ms

WRITE_COLOURS = {"acknowledged": "#2e7d32", "failed": "#c62828", "unknown": "#f9a825"}
LOAD_COLOURS = {"ok": "#26a69a", "failed": "#c62828"}
READ_COLOURS = {"ok": "#81c784", "failed": "#c62828"}
FAULT_COLOUR = "#b71c1c"
WRITER_COLOUR = "#6a1b9a"
EVENT_COLOUR = "#1565c0"
RECOVERY_COLOUR = "#00695c"
PHASE_COLOURS = ("#e3f2fd", "#fff8e1", "#f3e5f5", "#e8f5e9", "#fbe9e7")
LAG_COLOURS = ("#1565c0", "#ef6c00", "#00838f", "#6d4c41", "#ad1457", "#558b2f", "#283593")
STYLE = (
    "text{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;font-size:11px;fill:#263238}"
    ".title{font-size:15px;font-weight:bold}.lane{font-weight:bold}.small{font-size:9px;fill:#546e7a}"
    ".grid{stroke:#cfd8dc;stroke-width:1}.axis{stroke:#455a64;stroke-width:1}"
)


def timeline_svg(records: list[Record], title: str) -> str:
    """The whole chart; any timeline, including an empty one, gives a valid SVG."""
    return _Chart(records, title).render()


def lag_samples(records: list[Record]) -> dict[str, list[tuple[float, float]]]:
    """Per read probe, (ack, lag) for every acknowledged write it saw, in monotonic seconds.

    `harness.measure.lag` reports only percentiles, so the samples are derived here exactly as
    its docstring defines them: the visibility time of seq on probe P is the `end` of the first
    ok read on P ending at or after the ack with `max_seq >= seq`; writes acknowledged after P's
    last read started are not judged. (Its `lag_max_s` is the max of these samples: a test pins
    that.) Seqs are taken in increasing order while reads too short to show them are struck off
    a union-find of "next usable read", so the whole pass is O(n log n).
    """
    acked = sorted(ack_times(records).items())
    samples: dict[str, list[tuple[float, float]]] = {}
    for probe, reads in reads_by_probe(records).items():
        ok = sorted((r for r in reads if r["outcome"] == "ok"), key=lambda r: r["end"])
        ends = [r["end"] for r in ok]
        shown = [r["max_seq"] if r.get("max_seq") is not None else -1 for r in ok]
        by_shown = sorted(range(len(ok)), key=shown.__getitem__)
        usable = list(range(len(ok) + 1))  # usable[j] == j while read j may still show the seq

        def next_usable(j: int) -> int:
            while usable[j] != j:
                usable[j] = usable[usable[j]]
                j = usable[j]
            return j

        last_start = max(r["start"] for r in reads)
        struck = 0
        found: list[tuple[float, float]] = []
        for seq, ack in acked:
            while struck < len(by_shown) and shown[by_shown[struck]] < seq:
                usable[by_shown[struck]] = by_shown[struck] + 1
                struck += 1
            if ack > last_start:
                continue
            j = next_usable(bisect_left(ends, ack))
            if j < len(ok):
                found.append((ack, ends[j] - ack))
        samples[probe] = sorted(found)
    return samples


# --- layout ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Lane:
    label: str
    top: float
    height: float


class _Chart:
    """Builds the SVG top to bottom: header rows, lanes, axis, legend."""

    def __init__(self, records: list[Record], title: str):
        self.records = records
        self.title = title
        self.origin = float(records[0]["m"]) if records else 0.0
        wall_offset = float(records[0]["t"]) - self.origin if records else 0.0
        self.events = [(float(r["date"]) - wall_offset - self.origin, r) for r in _kind(records, "event")]
        self.lo, self.hi = self._domain()
        self.bucket = _nice_step((self.hi - self.lo) / MAX_BUCKETS)

    # --- coordinates ---------------------------------------------------------------------------------
    def rel(self, monotonic: float) -> float:
        return float(monotonic) - self.origin

    def x(self, seconds: float) -> float:
        return LEFT + (seconds - self.lo) / (self.hi - self.lo) * PLOT_W

    def _domain(self) -> tuple[float, float]:
        times = [self.rel(_when(r)) for r in self.records if r["kind"] != "event"]
        times += [at for at, _ in self.events]
        lo, hi = (min(times), max(times)) if times else (0.0, 1.0)
        lo = min(lo, 0.0)
        if hi - lo < 1.0:
            hi = lo + 1.0
        return lo, hi

    def buckets(self, items: Iterable[tuple[float, str]]) -> dict[int, dict[str, int]]:
        """Count outcomes per time bucket; keys are bucket indices from `lo`."""
        counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for at, outcome in items:
            counts[int((at - self.lo) // self.bucket)][outcome] += 1
        return counts

    def bucket_span(self, index: int) -> tuple[float, float, str]:
        start = self.lo + index * self.bucket
        x0, x1 = self.x(start), self.x(min(start + self.bucket, self.hi))
        return x0, max(x1 - x0, 0.8), f"{_secs(start)}–{_secs(start + self.bucket)}"

    # --- rendering ------------------------------------------------------------------------------------
    def render(self) -> str:
        y = 30.0
        header_top = y + 4
        y += 4 + 3 * 14  # phase names, fault labels, writer-change labels
        reads = reads_by_probe(self.records)
        lanes = {"cluster": _Lane("cluster status / writer", y, 20)}
        y += 26
        lanes["events"] = _Lane("RDS events", y, 16)
        y += 24
        lanes["writes"] = _Lane("write attempts", y, 110)
        y += 122
        for probe in reads:
            lanes[f"read:{probe}"] = _Lane(probe, y, 16)
            y += 22
        loads = sorted({str(r["load"]) for r in _kind(self.records, "load")})
        for load in loads:
            lanes[f"load:{load}"] = _Lane(f"load {load}", y + 4, 60)
            y += 72
        lanes["lag"] = _Lane("visibility lag", y + 4, 110)
        y += 4 + 110
        plot_top, plot_bottom = lanes["cluster"].top, y

        body: list[str] = []
        self.phases(body, header_top, plot_bottom)
        for lane in lanes.values():
            body.append(f"<g><title>{escape(lane.label)}</title>"
                        f'<text x="{LEFT - 8}" y="{lane.top + min(lane.height, 16) / 2 + 4:.1f}" '
                        f'text-anchor="end" class="lane">{escape(_shorten(lane.label, 23))}</text></g>')
            body.append(f'<line x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{lane.top + lane.height:.1f}" '
                        f'y2="{lane.top + lane.height:.1f}" class="grid"/>')
        self.cluster_lane(body, lanes["cluster"])
        self.event_lane(body, lanes["events"])
        self.write_lane(body, lanes["writes"])
        for probe, probe_reads in reads.items():
            self.read_lane(body, lanes[f"read:{probe}"], probe_reads)
        for load in loads:
            self.load_lane(body, lanes[f"load:{load}"], load)
        self.lag_lane(body, lanes["lag"], list(reads))
        self.markers(body, header_top, plot_top, plot_bottom)
        if not self.records:
            body.append(f'<text x="{LEFT + PLOT_W / 2}" y="{(plot_top + plot_bottom) / 2}" text-anchor="middle" '
                        'class="title">no records in this timeline</text>')
        y = self.axis(body, plot_bottom)
        y = self.legend(body, y + 10, list(reads), bool(loads))

        height = y + 10
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
                f'viewBox="0 0 {WIDTH} {height:.0f}" role="img" aria-label="{escape(self.title)}">'
                f"<style>{STYLE}</style>"
                f'<rect width="{WIDTH}" height="{height:.0f}" fill="#ffffff"/>'
                f'<text x="{LEFT}" y="20" class="title">{escape(self.title)}</text>'
                f'<text x="{WIDTH - RIGHT}" y="20" text-anchor="end" class="small">'
                f"{len(self.records)} records · bucket {_secs(self.bucket)}</text>")
        return head + "".join(body) + "</svg>\n"

    def phases(self, out: list[str], top: float, bottom: float) -> None:
        """Shaded bands from each `phase` record to the next (the last runs to the end)."""
        starts = [(self.rel(r["m"]), str(r.get("name", ""))) for r in _kind(self.records, "phase")]
        for index, (start, name) in enumerate(starts):
            end = starts[index + 1][0] if index + 1 < len(starts) else self.hi
            x0, x1 = self.x(start), self.x(end)
            colour = PHASE_COLOURS[index % len(PHASE_COLOURS)]
            out.append(f'<rect x="{x0:.1f}" y="{top:.1f}" width="{max(x1 - x0, 0.5):.1f}" '
                       f'height="{bottom - top:.1f}" fill="{colour}"><title>phase {escape(name)}: '
                       f"{_secs(start)} → {_secs(end)}</title></rect>")
            out.append(f'<text x="{x0 + 3:.1f}" y="{top + 10:.1f}" class="small">{escape(_clip(name, 18))}</text>')

    def cluster_lane(self, out: list[str], lane: _Lane) -> None:
        """Status segments from `topology` records: grey when available, orange otherwise."""
        topologies = [(self.rel(r["m"]), r) for r in _kind(self.records, "topology")]
        for index, (start, record) in enumerate(topologies):
            end = topologies[index + 1][0] if index + 1 < len(topologies) else self.hi
            status = str(record.get("status"))
            colour = "#b0bec5" if status == "available" else "#ff9800"
            x0, x1 = self.x(start), self.x(end)
            out.append(f'<rect x="{x0:.1f}" y="{lane.top:.1f}" width="{max(x1 - x0, 1):.1f}" '
                       f'height="{lane.height}" fill="{colour}" stroke="#ffffff" stroke-width="0.5">'
                       f"<title>{_secs(start)}: {escape(status)}, writer {escape(str(record.get('writer')))}"
                       f"</title></rect>")
            if x1 - x0 > 60:
                label = _clip(f"{status} · {record.get('writer')}", int((x1 - x0) / 5.5))
                out.append(f'<text x="{x0 + 3:.1f}" y="{lane.top + 14:.1f}" class="small">{escape(label)}</text>')

    def event_lane(self, out: list[str], lane: _Lane) -> None:
        """One diamond per RDS event; the tooltip carries the event's own words."""
        mid = lane.top + lane.height / 2
        for at, event in self.events:
            cx = self.x(at)
            categories = ", ".join(event.get("categories") or [])
            tip = f"{_secs(at)} {event.get('source', '')}: {event.get('message', '')}"
            tip += f" [{categories}]" if categories else ""
            out.append(f'<path d="M{cx:.1f} {mid - 6:.1f}l6 6l-6 6l-6-6z" fill="{EVENT_COLOUR}" opacity="0.8">'
                       f"<title>{escape(tip)}</title></path>")

    def write_lane(self, out: list[str], lane: _Lane) -> None:
        """A worst-outcome strip on top, then stacked per-bucket counts (acknowledged lowest).

        During an outage each attempt waits for a timeout, so a bucket may hold 2 failures
        against 100 acknowledged writes elsewhere: the strip keeps such buckets visible.
        """
        # The plain driver's write probe (another driver's, e.g. the AWS wrapper's, is compared in the verdicts).
        counts = self.buckets((self.rel(w["end"]), w["outcome"]) for w in _kind(self.records, "write")
                              if (w.get("driver") or "plain") == "plain")
        peak = max((sum(c.values()) for c in counts.values()), default=0)
        bottom = lane.top + lane.height
        bars_top = lane.top + STRIP + 2
        out.append(f'<text x="{LEFT - 8}" y="{lane.top + 28:.1f}" text-anchor="end" class="small">'
                   f"bars: up to {peak} per {_secs(self.bucket)}</text>")
        for index, count in sorted(counts.items()):
            x0, width, span = self.bucket_span(index)
            tip = escape(f"{span}: " + ", ".join(f"{count.get(o, 0)} {o}" for o in WRITE_COLOURS))
            worst = next(o for o in ("failed", "unknown", "acknowledged") if count.get(o))
            out.append(f'<rect x="{x0:.1f}" y="{lane.top:.1f}" width="{width:.1f}" height="{STRIP}" '
                       f'fill="{WRITE_COLOURS[worst]}"><title>{tip}</title></rect>')
            y = bottom
            for outcome in ("acknowledged", "unknown", "failed"):
                h = count.get(outcome, 0) / peak * (bottom - bars_top)
                if h:
                    y -= h
                    out.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}" '
                               f'fill="{WRITE_COLOURS[outcome]}"><title>{tip}</title></rect>')

    def read_lane(self, out: list[str], lane: _Lane, reads: list[Record]) -> None:
        """Per bucket, the share of failed reads in red above the ok share; gaps: no read."""
        counts = self.buckets((self.rel(r["end"]), r["outcome"]) for r in reads)
        for index, count in sorted(counts.items()):
            x0, width, span = self.bucket_span(index)
            total = sum(count.values())
            failed = count.get("failed", 0)
            tip = escape(f"{span}: {total - failed} ok, {failed} failed")
            failed_h = failed / total * lane.height
            if failed_h < lane.height:
                out.append(f'<rect x="{x0:.1f}" y="{lane.top + failed_h:.1f}" width="{width:.1f}" '
                           f'height="{lane.height - failed_h:.1f}" fill="{READ_COLOURS["ok"]}">'
                           f"<title>{tip}</title></rect>")
            if failed_h:
                out.append(f'<rect x="{x0:.1f}" y="{lane.top:.1f}" width="{width:.1f}" height="{failed_h:.1f}" '
                           f'fill="{READ_COLOURS["failed"]}"><title>{tip}</title></rect>')

    def load_lane(self, out: list[str], lane: _Lane, load: str) -> None:
        """One load's seconds as stacked bars (ok below, failed above), scaled to its busiest
        second, and a strip on top marking exactly when its requests failed.

        Locust's history has one record per second, so the bars are seconds wide whatever the
        chart's bucket; the strip uses the failures' own instants.
        """
        seconds = [r for r in _kind(self.records, "load") if r["load"] == load]
        peak = max((r["requests"] for r in seconds), default=0) or 1
        bottom = lane.top + lane.height
        bars_top = lane.top + STRIP + 2
        out.append(f'<text x="{LEFT - 8}" y="{lane.top + 28:.1f}" text-anchor="end" class="small">'
                   f"bars: requests/s, up to {peak}</text>")
        for record in seconds:
            start, end = self.rel(record["start"]), self.rel(record["end"])
            x0 = self.x(max(start, self.lo))
            width = max(self.x(min(end, self.hi)) - x0, 0.8)
            ok = record["requests"] - record["failures"]
            tip = escape(f"{_secs(start)}–{_secs(end)}: {record['requests']} requests, {record['failures']} failed, "
                         f"p50 {_ms(record.get('p50_ms'))}, p95 {_ms(record.get('p95_ms'))}, "
                         f"{record.get('users', '?')} users")
            y = bottom
            for count, colour in ((ok, LOAD_COLOURS["ok"]), (record["failures"], LOAD_COLOURS["failed"])):
                h = count / peak * (bottom - bars_top)
                if h:
                    y -= h
                    out.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}" '
                               f'fill="{colour}"><title>{tip}</title></rect>')
        for failure in (r for r in _kind(self.records, "load-failure") if r["load"] == load):
            x0, x1 = self.x(self.rel(failure["first"])), self.x(self.rel(failure["last"]))
            tip = escape(f"{_secs(self.rel(failure['first']))}–{_secs(self.rel(failure['last']))}: "
                         f"{failure['occurrences']} × {failure['request_type']} {failure['name']}: {failure['error']}")
            out.append(f'<rect x="{x0 - 0.75:.1f}" y="{lane.top:.1f}" width="{max(x1 - x0, 0) + 1.5:.1f}" '
                       f'height="{STRIP}" fill="{LOAD_COLOURS["failed"]}"><title>{tip}</title></rect>')

    def lag_lane(self, out: list[str], lane: _Lane, probes: list[str]) -> None:
        """Worst visibility lag per bucket, one line per read probe (broken where no sample).

        The scale is logarithmic from 1 ms: steady-state lag (milliseconds) and a reader that
        stalls through a failover (seconds) must both be readable on the same lane.
        """
        samples = lag_samples(self.records)
        worst: dict[str, dict[int, float]] = {}
        for probe, points in samples.items():
            per_bucket: dict[int, float] = {}
            for ack, lag in points:
                index = int((self.rel(ack) - self.lo) // self.bucket)
                per_bucket[index] = max(lag, per_bucket.get(index, 0.0))
            worst[probe] = per_bucket
        peak = max((v for b in worst.values() for v in b.values()), default=0.0)
        decades = max(1, math.ceil(math.log10(max(peak, LAG_FLOOR) / LAG_FLOOR)))
        bottom = lane.top + lane.height

        def y_of(lag: float) -> float:
            return bottom - math.log10(max(lag, LAG_FLOOR) / LAG_FLOOR) / decades * lane.height

        for decade in range(decades + 1):
            y = y_of(LAG_FLOOR * 10**decade)
            out.append(f'<line x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                       f'<text x="{LEFT + 3}" y="{y - 2:.1f}" class="small">{_secs(LAG_FLOOR * 10**decade)}</text>')
        for number, probe in enumerate(probes):
            colour = LAG_COLOURS[number % len(LAG_COLOURS)]
            path, previous = [], None
            for index in sorted(worst.get(probe, {})):
                x0, width, _ = self.bucket_span(index)
                move = "L" if previous == index - 1 else "M"
                path.append(f"{move}{x0 + width / 2:.1f} {y_of(worst[probe][index]):.1f}")
                previous = index
            if path:
                lags = [lag for _, lag in samples[probe]]
                out.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="1.6">'
                           f"<title>{escape(probe)}: {len(lags)} samples, max {_secs(max(lags))}</title></path>")

    def markers(self, out: list[str], header_top: float, plot_top: float, bottom: float) -> None:
        """Fault and writer-change verticals across every lane, labelled in the header rows."""
        for record in _kind(self.records, "fault"):
            at = self.rel(record["start"])
            x = self.x(at)
            label = f"⚡ {record.get('name', 'fault')} @ {_secs(at)}"
            tip = f"{label}: {record.get('description', '')} (call returned @ {_secs(self.rel(record['end']))})"
            out.append(f'<g><title>{escape(tip)}</title>'
                       f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{header_top + 16:.1f}" y2="{bottom:.1f}" '
                       f'stroke="{FAULT_COLOUR}" stroke-width="2" stroke-dasharray="6 3"/>'
                       f'<text x="{x + 3:.1f}" y="{header_top + 24:.1f}" fill="{FAULT_COLOUR}" '
                       f'style="fill:{FAULT_COLOUR};font-weight:bold">{escape(label)}</text></g>')
        for at, old, new in self.writer_changes():
            x = self.x(at)
            label = f"writer {_shorten(old, 16)} → {_shorten(new, 16)}"
            out.append(f'<g><title>{escape(f"{_secs(at)}: writer {old} → {new}")}</title>'
                       f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{header_top + 30:.1f}" y2="{bottom:.1f}" '
                       f'stroke="{WRITER_COLOUR}" stroke-width="1.5" stroke-dasharray="2 2"/>'
                       f'<text x="{x + 3:.1f}" y="{header_top + 38:.1f}" style="fill:{WRITER_COLOUR}">'
                       f"{escape(label)}</text></g>")
        for at, label, tip in self.recovery_marks():
            x = self.x(at)
            out.append(f'<g><title>{escape(f"{_secs(at)}: {tip}")}</title>'
                       f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{header_top + 16:.1f}" y2="{bottom:.1f}" '
                       f'stroke="{RECOVERY_COLOUR}" stroke-width="1.5" stroke-dasharray="4 2 1 2"/>'
                       f'<text x="{x + 3:.1f}" y="{header_top + 24:.1f}" style="fill:{RECOVERY_COLOUR}">'
                       f"{escape(label)}</text></g>")
        out.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{plot_top:.1f}" y2="{bottom:.1f}" class="axis"/>')

    def recovery_marks(self) -> list[tuple[float, str, str]]:
        """(when, label, tooltip) for a recovery: the bad change, a snapshot, the restore point (on
        the server's clock, moved onto this chart's), the restore request, the restored writer's
        first acknowledged write."""
        marks = []
        for record in _kind(self.records, "bad-change"):
            marks.append((self.rel(record["start"]), "✗ bad change",
                          f"bad change: {record.get('statement', '')} ({record.get('rows')} rows)"))
        for record in _kind(self.records, "snapshot"):
            marks.append((self.rel(record["start"]), "◉ snapshot", f"snapshot {record.get('snapshot')} requested; "
                                                                    f"available @ {_secs(self.rel(record['end']))}"))
        offset = next((r["offset_s"] for r in reversed(_kind(self.records, "clock"))), 0.0)
        for record in _kind(self.records, "restore"):
            point = record["m"] - (record["t"] - (record["boundary_low"] - offset))
            if record.get("how") == "backtrack":  # the cluster itself, rewound in place
                marks.append((self.rel(point), "⟲ backtrack point", "the point the backtrack reached, on the "
                                                                   "server's clock"))
                marks.append((self.rel(record["start"]), "backtrack requested",
                              f"BacktrackDBCluster {record.get('target')} ({record.get('backtrack')})"))
                if record.get("cluster_available") is not None:
                    marks.append((self.rel(record["cluster_available"]), "backtrack completed",
                                  f"completed {record['cluster_available'] - record['start']:.1f} s after the request"))
                continue
            marks.append((self.rel(point), "⟲ restore point", f"restore point ({record.get('how')}) on the server's "
                                                             f"clock"))
            marks.append((self.rel(record["start"]), "restore requested", f"restore into {record.get('target')}"))
            if record.get("first_ack") is not None:
                marks.append((self.rel(record["first_ack"]), "restored writer acks",
                              f"{record.get('target')} acknowledged its first write "
                              f"{record['first_ack'] - record['start']:.1f} s after the request"))
        marks += self.blue_green_marks()
        return marks

    def blue_green_marks(self) -> list[tuple[float, str, str]]:
        """A Blue/Green switchover's phases: each status the deployment was seen in after the
        switchover was asked for (IN_PROGRESS, then COMPLETED or FAILED; INVALID_CONFIGURATION)."""
        return [(self.rel(record.get("at", record["m"])), f"⇄ {str(record['status']).lower().replace('_', ' ')}",
                 f"Blue/Green deployment {record.get('deployment')}: {record['status']}"
                 + (f" ({record['details']})" if record.get("details") else ""))
                for record in _kind(self.records, "blue-green-status") if record.get("status") != "AVAILABLE"]

    def writer_changes(self) -> list[tuple[float, str, str]]:
        """(when, old, new) each time a `topology` record names a different writer than the last."""
        changes, writer = [], None
        for record in _kind(self.records, "topology"):
            new = record.get("writer")
            if new is None:
                continue
            if writer is not None and new != writer:
                changes.append((self.rel(record["m"]), str(writer), str(new)))
            writer = new
        return changes

    def axis(self, out: list[str], top: float) -> float:
        """Ticks in seconds since the first record, at 1/2/5×10^k spacing."""
        step = _nice_step((self.hi - self.lo) / 10)
        out.append(f'<line x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{top:.1f}" y2="{top:.1f}" class="axis"/>')
        tick = math.ceil(self.lo / step) * step
        while tick <= self.hi + 1e-9:
            x = self.x(tick)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top:.1f}" y2="{top + 5:.1f}" class="axis"/>'
                       f'<text x="{x:.1f}" y="{top + 17:.1f}" text-anchor="middle">{_secs(tick)}</text>')
            tick += step
        out.append(f'<text x="{LEFT + PLOT_W / 2}" y="{top + 32:.1f}" text-anchor="middle" class="small">'
                   "seconds since the first record</text>")
        return top + 36

    def legend(self, out: list[str], top: float, probes: list[str], loads: bool) -> float:
        """Every mark the chart uses, including one lag colour per read probe."""
        entries: list[tuple[Callable[[float, float], str], str]] = [
            (_swatch(WRITE_COLOURS["acknowledged"]), "write acknowledged"),
            (_swatch(WRITE_COLOURS["failed"]), "write failed"),
            (_swatch(WRITE_COLOURS["unknown"]), "write outcome unknown"),
            (_swatch(READ_COLOURS["ok"]), "read ok"),
            (_swatch(READ_COLOURS["failed"]), "read failed"),
            (_rule(FAULT_COLOUR, "6 3", 2), "fault injected"),
            (_rule(WRITER_COLOUR, "2 2", 1.5), "writer change"),
            *([(_rule(RECOVERY_COLOUR, "4 2 1 2", 1.5), "bad change, snapshot, restore")]
              if self.recovery_marks() else []),
            (lambda x, y: f'<path d="M{x + 7} {y - 5}l6 6l-6 6l-6-6z" fill="{EVENT_COLOUR}"/>', "RDS event"),
            (_swatch("#ff9800"), "cluster not available"),
            (_swatch(PHASE_COLOURS[0]), "scenario phase"),
        ]
        if loads:
            entries += [(_swatch(LOAD_COLOURS["ok"]), "load requests ok"),
                        (_swatch(LOAD_COLOURS["failed"]), "load requests failed")]
        entries += [(_rule(LAG_COLOURS[i % len(LAG_COLOURS)], "", 2), f"lag {p}") for i, p in enumerate(probes)]
        out.append(f'<g class="legend"><text x="{LEFT - 8}" y="{top + 10}" text-anchor="end" class="lane">'
                   "legend</text>")
        x, y = float(LEFT), top
        for mark, label in entries:
            width = 26 + 6.2 * len(label)
            if x + width > LEFT + PLOT_W:
                x, y = float(LEFT), y + 18
            out.append(mark(x, y + 6) + f'<text x="{x + 18:.1f}" y="{y + 10:.1f}">{escape(label)}</text>')
            x += width
        out.append("</g>")
        return y + 18


# --- helpers -----------------------------------------------------------------------------------------
def _kind(records: Iterable[Record], kind: str) -> list[Record]:
    return [r for r in records if r.get("kind") == kind]


def _when(record: Record) -> float:
    """The instant a record is drawn at: attempts and seconds of load at `end`, faults at `start`,
    others at `m`."""
    if record["kind"] in ("write", "read", "load"):
        return float(record["end"])
    if record["kind"] == "fault":
        return float(record["start"])
    return float(record["m"])


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:g} ms"


def _nice_step(raw: float) -> float:
    """The smallest 1/2/5×10^k at least `raw` (positive)."""
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(f * power for f in (1, 2, 5, 10) if f * power >= raw * (1 - 1e-9))


def _secs(value: float) -> str:
    """Seconds as a label: whole numbers bare, otherwise three significant digits (or one decimal)."""
    if abs(value - round(value)) < 1e-6:
        return f"{round(value)} s"
    return f"{value:.1f} s" if abs(value) >= 10 else f"{value:.3g} s"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 1)] + "…"


def _shorten(text: str, width: int) -> str:
    """Elide the middle: instance identifiers share long prefixes and differ at the end."""
    if len(text) <= width:
        return text
    head = min(text.find(":") + 1 if ":" in text else 4, width // 2)
    return text[:head] + "…" + text[len(text) - (width - head - 1):]


def _swatch(colour: str) -> Callable[[float, float], str]:
    return lambda x, y: f'<rect x="{x:.1f}" y="{y - 5:.1f}" width="14" height="10" fill="{colour}" stroke="#90a4ae"/>'


def _rule(colour: str, dash: str, width: float) -> Callable[[float, float], str]:
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    return lambda x, y: (f'<line x1="{x:.1f}" x2="{x + 14:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" '
                         f'stroke-width="{width}"{dashes}/>')
