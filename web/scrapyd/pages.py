"""Scrapyd's web pages: the home page (``/``) and the jobs table (``/jobs``),
with Scrapyd's markup, which ScrapydWeb and other tools read.

Links start with the ``X-Forwarded-Prefix`` header (a reverse proxy's path),
as Scrapyd's do, then the mount path (``/scrapyd`` on the main port); the
header is HTML-escaped here, where Scrapyd writes it into the page as sent.
"""

import datetime
import time
import urllib.parse
from html import escape
from textwrap import dedent, indent

from flask import Response, request

from web import services
from web.scrapyd import bp, jobs, mount_path

PREFIX_HEADER = "X-Forwarded-Prefix"
STYLE = "body { font-family: system-ui, sans-serif; }"
JOBS_STYLE = """body { font-family: system-ui, sans-serif; }
            table { border-collapse: collapse; }
            th, td { border-style: solid; border-width: 1px; }
            tbody > tr:first-child { background-color: #eee; }
            th, td { padding: .5rem; }
            td:nth-child(2), td:nth-child(3) { word-break: break-all; }"""
HEADERS = ["Project", "Spider", "Job", "PID", "Start", "Runtime", "Finish", "Log", "Items",
           "Cancel"]


def base_path() -> str:
    return escape(request.headers.get(PREFIX_HEADER, "") + mount_path(), quote=True)


def html(content: str) -> Response:
    return Response(content, mimetype="text/html", content_type="text/html; charset=utf-8")


def page(title: str, style: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n    <meta charset="utf-8">\n'
            f'    <meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"    <title>{title}</title>\n    <style>\n        {style}\n    </style>\n"
            f"</head>\n<body>\n{indent(dedent(body).strip(), '    ')}\n</body>\n</html>\n")


@bp.route("/", methods=["GET", "OPTIONS"], provide_automatic_options=False)
def home():
    base = base_path()
    projects = [d["_id"] for d in services().store.projects.find({}, {"_id": 1}).sort("_id", 1)]
    if projects:
        items = "\n".join(f"    <li>{escape(name)}</li>" for name in projects)
        listing = f"<p>Scrapy projects:</p>\n<ul>\n{items}\n</ul>"
    else:
        listing = "<p>No Scrapy projects yet.</p>"
    host = escape(request.host, quote=True)
    body = f"""\
<h1>Scrapyd</h1>

<ul>
    <li><a href="{base}/jobs">Jobs</a></li>
    <li><a href="{base}/items/">Items</a></li>
    <li><a href="{base}/logs/">Logs</a></li>
    <li><a href="https://scrapyd.readthedocs.io/en/latest/">Documentation</a></li>
</ul>

{listing}

<p>
    This web UI is for monitoring only. To upload projects and schedule crawls, use the API.
    For example, using <a href="https://curl.se/">curl</a>:
</p>

<p>
    <code>curl http://{host}{escape(mount_path())}/schedule.json -d project=default \
-d spider=somespider</code>
</p>

<p>
    Served by crawlfleet. See the <a href="https://scrapyd.readthedocs.io/en/latest/">Scrapyd
    documentation</a> for details.
</p>"""
    return html(page("Scrapyd", STYLE, body))


def no_microseconds(seconds: float | None) -> str | None:
    if not seconds:
        return None
    return str(datetime.datetime.fromtimestamp(int(seconds)))


def runtime(start: float | None, end: float | None) -> str | None:
    if not start:
        return None
    return str(datetime.timedelta(seconds=int((end or time.time()) - start)))


def cancel_button(base: str, project: str, job: str) -> str:
    return (f'<form method="post" onsubmit="return confirm(\'Are you sure?\');" '
            f'action="{base}/cancel.json">\n'
            f'<input type="hidden" name="project" value="{escape(project)}">\n'
            f'<input type="hidden" name="job" value="{escape(job)}">\n'
            f'<input type="submit" style="float: left;" value="Cancel">\n</form>')


def file_links(base: str, task: dict) -> dict:
    if not task.get("started_at"):
        return {}
    path = urllib.parse.quote(f"{task['project']}/{task['spider']}/{task['jobid']}")
    return {"Log": f'<a href="{base}/logs/{escape(path)}.log">Log</a>',
            "Items": f'<a href="{base}/items/{escape(path)}.jl">Items</a>'}


def row(cells: dict) -> str:
    tds = "\n".join(f"    <td>{'' if cells.get(h) is None else cells[h]}</td>" for h in HEADERS)
    return f"<tr>\n{tds}\n</tr>"


def rows(base: str, tasks: list, state: str) -> str:
    out = []
    for task in tasks:
        cells = {"Project": escape(task["project"]), "Spider": escape(task["spider"]),
                 "Job": escape(task["jobid"])}
        if state != "pending":
            cells.update(Start=no_microseconds(task.get("started_at")),
                         Runtime=runtime(task.get("started_at"), task.get("finished_at")),
                         **file_links(base, task))
        if state == "running":
            cells["PID"] = task.get("pid")
        if state == "finished":
            cells["Finish"] = no_microseconds(task.get("finished_at"))
        else:
            cells["Cancel"] = cancel_button(base, task["project"], task["jobid"])
        out.append(row(cells))
    return "\n".join(out)


@bp.route("/jobs", methods=["GET", "OPTIONS"], provide_automatic_options=False)
def jobs_page():
    base = base_path()
    groups = jobs.list_jobs(services().store)
    heads = "\n".join(f"    <th>{h}</th>" for h in HEADERS)
    sections = "\n".join(
        f'<tbody>\n    <tr>\n        <th colspan="{len(HEADERS)}">{title}</th>\n    </tr>\n'
        f"{indent(rows(base, groups[key], key), '    ')}\n</tbody>"
        for key, title in (("pending", "Pending"), ("running", "Running"),
                           ("finished", "Finished")))
    body = f"""\
<h1>Jobs</h1>
<p><a href="./">Go up</a></p>
<table id="jobs">
<thead>
<tr>
{heads}
</tr>
</thead>
{sections}
</table>"""
    return html(page("Scrapyd", JOBS_STYLE, body))
