"""A node's history as small inline SVG charts drawn on the server: load,
memory and busy runners as lines over the window, tasks started per hour as
bars. Same look as the spider page's (`web.runcharts`: its sizes, its
`run-chart` figure, drawn by its `figure`), from `crawlfleet.nodehistory`'s data.

A week of samples is 10,080 points: each line is averaged into at most one
point per horizontal pixel column, each with a <title> the browser shows as a
tooltip. A silence longer than a few samples (the node was down) breaks the
line instead of drawing across it.
"""

import time

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from crawlfleet.models import Doc
from web.runcharts import GAP, HEIGHT, TOP, WIDTH, figure

COLUMNS = 160            # points per line at most
GAP_AFTER = 3.5          # samples missing in a row that break the line

# (key in a sample, title, unit, fixed top of the scale or None: the largest value)
# (titles and units lazily translated: drawn in the viewer's language)
LINES = (("load", _l("CPU load"), "", None), ("memory_percent", _l("Memory"), "%", 100.0),
         ("busy", _l("Busy runners"), _l("runners"), None))


def clock(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stamp))


def number(value: float) -> str:
    """2.50 -> 2.5, 3.00 -> 3."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def lone(point: str) -> str:
    """A sample with no neighbour: a short level stroke (a circle would be stretched
    into an ellipse by the chart's free aspect ratio)."""
    x, y = (float(v) for v in point.split(","))
    return (f'<polyline class="node-line node-dot" points="{max(0.0, x - 2):.1f},{y:.1f} '
            f'{min(float(WIDTH), x + 2):.1f},{y:.1f}"/>')


def columns(samples: list[Doc], key: str, since: float, until: float) -> list[tuple[int, float]]:
    """(column, mean value) for each column of the window holding a sample with a value."""
    span = max(until - since, 1.0)
    sums: dict[int, list[float]] = {}
    for sample in samples:
        value = sample.get(key)
        if isinstance(value, (int, float)):
            column = min(COLUMNS - 1, max(0, int((sample["at"] - since) / span * COLUMNS)))
            sums.setdefault(column, []).append(float(value))
    return [(c, sum(v) / len(v)) for c, v in sorted(sums.items())]


def line_chart(history: Doc, key: str, title: object, unit: object,
               top: float | None) -> Markup:
    """One figure of the samples as a line over the window, broken where the node was silent."""
    title, unit = str(title), str(unit)
    since, until = history["since"], history["until"]
    points = columns(history["samples"], key, since, until)
    largest = max((v for _, v in points), default=0.0)
    scale = top or (max(largest, 1.0) if key == "busy" else largest or 1.0)
    if key == "busy":  # the run slots are the ceiling of busy runners
        scale = max([scale] + [float(s.get("slots") or 0) for s in history["samples"]])
    span_columns = max(1, int(GAP_AFTER * history["sample_every"]
                              / max(until - since, 1.0) * COLUMNS) + 1)
    step = WIDTH / COLUMNS
    runs: list[list[str]] = []
    marks = []
    previous = None
    for column, value in points:
        x = (column + 0.5) * step
        # kept off the very bottom so a zero stays visible above the axis line
        y = min(HEIGHT - 1.5, HEIGHT - (HEIGHT - TOP) * min(value, scale) / scale)
        if previous is None or column - previous > span_columns:
            runs.append([])
        runs[-1].append(f"{x:.1f},{y:.1f}")
        previous = column
        at = since + (column + 0.5) * (until - since) / COLUMNS
        marks.append(f'<rect class="hit" x="{column * step:.1f}" y="0" width="{step:.2f}" '
                     f'height="{HEIGHT}"><title>{clock(at)}: {number(value)} {escape(unit)}'
                     f'</title></rect>')
    lines = "".join(
        f'<polyline class="node-line" points="{" ".join(r)}"/>' if len(r) > 1 else lone(r[0])
        for r in runs)
    latest = number(points[-1][1]) if points else "–"
    summary = (_("now %(latest)s, max %(largest)s", latest=latest, largest=number(largest))
               if points else _("no sample"))
    label = _("%(title)s over the last %(h)s h: %(values)s", title=title, h=history["hours"],
              values=_("latest %(latest)s %(unit)s, largest %(largest)s %(unit)s",
                       latest=latest, unit=unit, largest=number(largest))
              if points else _("no sample"))
    note = escape(summary) + (" " + escape(unit) if points and unit else "")
    return figure(key, title, note, label, lines + "".join(marks), node=True,
                  points=len(points), below=axis_labels(since, until))


def axis_labels(since: float, until: float) -> str:
    return (f'<div class="chart-axis muted small"><span>{clock(since)}</span>'
            f'<span>{clock(until)}</span></div>')


def tasks_chart(history: Doc) -> Markup:
    """Tasks started per hour of the window as bars, oldest left."""
    hours = history["tasks"]["per_hour"]
    largest = max((h["tasks"] for h in hours), default=0)
    step = WIDTH / max(len(hours), 1)
    bars = []
    started = (lambda num: _("%(num)s task(s) started", num=num))  # noqa: E731
    for i, hour in enumerate(hours):
        height = (HEIGHT - TOP) * hour["tasks"] / (largest or 1)
        bars.append(
            f'<rect class="run-bar ok" data-tasks="{hour["tasks"]}" x="{i * step + GAP / 2:.1f}" '
            f'y="{HEIGHT - height:.1f}" width="{max(step - GAP, 1):.1f}" '
            f'height="{max(height, 0.5):.1f}"><title>{clock(hour["hour"])}: '
            f'{escape(started(hour["tasks"]))}</title></rect>')
    total = history["tasks"]["started"]
    label = _("Tasks started per hour over the last %(h)s h: %(total)s in all",
              h=history["hours"], total=total)
    caption = _("Tasks per hour")
    summary = _("%(total)s started, max %(largest)s an hour", total=total, largest=largest)
    return figure("tasks", caption, summary, label, "".join(bars), node=True,
                  below=axis_labels(history["since"], history["until"]))


def charts(history: Doc) -> list[Markup]:
    """Every chart of the node page: the three sampled figures, then tasks per hour."""
    return [line_chart(history, *line) for line in LINES] + [tasks_chart(history)]
