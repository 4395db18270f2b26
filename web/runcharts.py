"""Small bar charts of a spider's runs, drawn as inline SVG on the server.

No chart library and no script: each chart is one <svg> with a bar per run
(oldest left), coloured by how the run ended, and a <title> per bar that the
browser shows as a tooltip and screen readers read. The data is
`crawlfleet.runhistory`'s, the same the API gives.
"""

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from crawlfleet.models import Doc

WIDTH, HEIGHT, GAP, TOP = 320, 90, 2, 4

# (key in a run point, title, unit shown in tooltips), lazily in the viewer's language
METRICS = (("items", _l("Items"), _l("items")), ("pages", _l("Pages"), _l("pages")),
           ("errors", _l("Errors"), _l("errors")), ("duration", _l("Duration"), "s"))


def figure(metric: str, caption: object, note: object, label: object, marks: str, *,
           node: bool = False, points: int | None = None, height: int = HEIGHT,
           axis: bool = True, below: str = "") -> Markup:
    """The frame every chart of the spider and node pages shares (app.css styles
    `run-chart`): a caption with a muted note, then an SVG named by `label` for
    screen readers holding `marks` over an axis line; `below` follows the SVG
    (the node charts' time axis)."""
    classes = "run-chart node-chart" if node else "run-chart"
    counted = f' data-points="{points}"' if points is not None else ""
    baseline = (f'<line class="axis" x1="0" y1="{height}" x2="{WIDTH}" y2="{height}"/>'
                if axis else "")
    return Markup(
        f'<figure class="{classes}" data-metric="{metric}"{counted}><figcaption>'
        f'{escape(caption)} <span class="muted small">{escape(note)}</span></figcaption>'
        f'<svg role="img" aria-label="{escape(label)}" viewBox="0 0 {WIDTH} {height}" '
        f'preserveAspectRatio="none" width="100%" height="{height}">'
        + baseline + marks + "</svg>" + below + "</figure>")


def bar_class(run: Doc) -> str:
    """The CSS class of a run's bar: finished, failed or cancelled."""
    if run["success"] is True:
        return "run-bar ok"
    return "run-bar cancelled" if run["success"] is None else "run-bar bad"


def bar_chart(runs: list[Doc], key: str, title: object, unit: object) -> Markup:
    """One metric across `runs` as an SVG bar chart with its largest value labelled."""
    title, unit = str(title), str(unit)
    values = [float(r.get(key) or 0) for r in runs]
    largest = max(values, default=0) or 1
    step = WIDTH / max(len(runs), 1)
    bars = []
    for i, (run, value) in enumerate(zip(runs, values)):
        height = (HEIGHT - TOP) * value / largest
        tip = (f"{run['task_id']}: {value:g} {unit} · {_(run['status'])}"
               + (f" · {_(run['trigger'])}" if run.get("trigger") else ""))
        bars.append(
            f'<rect class="{bar_class(run)}" data-task="{escape(run["task_id"])}" '
            f'data-value="{value:g}" x="{i * step + GAP / 2:.1f}" y="{HEIGHT - height:.1f}" '
            f'width="{max(step - GAP, 1):.1f}" height="{max(height, 0.5):.1f}">'
            f'<title>{escape(tip)}</title></rect>')
    top = f"{max(values, default=0):g}"
    label = _("%(title)s per run, last %(num)s runs, largest %(top)s %(unit)s", title=title,
              num=len(runs), top=top, unit=unit)
    most = _("max %(top)s %(unit)s", top=top, unit=unit)
    return figure(key, title, most, label, "".join(bars))


def success_strip(runs: list[Doc]) -> Markup:
    """Success per run as a row of equal squares (green finished, red failed, grey cancelled)."""
    step = WIDTH / max(len(runs), 1)
    cells = "".join(
        f'<rect class="{bar_class(r)}" data-task="{escape(r["task_id"])}" x="{i * step + GAP / 2:.1f}" '
        f'y="0" width="{max(step - GAP, 1):.1f}" height="14"><title>{escape(r["task_id"])}: '
        f'{escape(_(r["status"]))}</title></rect>' for i, r in enumerate(runs))
    ok = sum(1 for r in runs if r["success"] is True)
    finished = _("%(ok)s of %(num)s finished", ok=ok, num=len(runs))
    caption = _("Success")
    label = _("Success per run: %(ok)s of %(num)s finished", ok=ok, num=len(runs))
    return figure("success", caption, finished, label, cells, height=14, axis=False)


def charts(runs: list[Doc]) -> list[Markup]:
    """Every chart of the spider page, success first."""
    return [success_strip(runs)] + [bar_chart(runs, *m) for m in METRICS]
