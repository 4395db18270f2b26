"""What every page's template gets: the navigation's active entry and the
filters that format times, durations and result cells."""

import time

from flask import current_app, request
from flask_babel import gettext as _

from crawlfleet.models import now
from web import export

DAY = 86400

# Which navigation entry a page belongs to. The labels are keys, compared with
# the English label of base.html's entries; the page shows their translation.
NAV = {"ui.dashboard": "Dashboard", "ui.nodes": "Nodes", "ui.spider": "Spiders",
       "crawls_ui.": "Crawls",
       "ui.task": "Tasks", "ui.log": "Tasks", "results.": "Results", "schedules_ui.": "Schedules",
       "projects_ui.": "Projects", "admin.users": "Users", "admin.tokens": "API tokens",
       "alerts_ui.": "Alerts"}


def page_context():
    endpoint = request.endpoint or ""
    active = next((label for prefix, label in NAV.items() if endpoint.startswith(prefix)), None)
    return {"active_nav": active, "blueprints": current_app.blueprints}


def register_filters(app):
    app.context_processor(page_context)
    app.add_template_filter(when)
    app.add_template_filter(ago)
    app.add_template_filter(duration)
    app.add_template_filter(cell)


def when(stamp):
    if not stamp:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp)) + " UTC"


def ago(stamp):
    if not stamp:
        return _("never")
    delta = now() - stamp
    if delta >= DAY:
        return _("%(num)d d ago", num=int(delta // DAY))
    if delta >= 3600:
        return _("%(num)d h ago", num=int(delta // 3600))
    if delta >= 60:
        return _("%(num)d min ago", num=int(delta // 60))
    return _("%(num)d s ago", num=max(0, int(delta)))


def duration(seconds):
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds < 60:
        return _("%(num).1f s", num=seconds)
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return _("%(hours)d h %(minutes)02d min", hours=hours, minutes=minutes)
    return _("%(minutes)d min %(seconds)02d s", minutes=minutes, seconds=secs)


def cell(value):
    """A result field as short text (escaped later by Jinja)."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        text = export.dumps(value, ensure_ascii=False)
    else:
        text = export.csv_cell(value)
    return text if len(text) <= 300 else text[:300] + "…"
