"""Scrapyd's ``/logs/`` and ``/items/`` trees, made from the ledger.

Scrapyd serves its logs and items folders as files:
``/logs/<project>/<spider>/<job>.log`` and ``/items/<project>/<spider>/<job>.jl``,
with a directory listing at each level (Twisted's, with Scrapyd's "Last
modified" column). Here the same paths answer from the store: the log is the
task log as a Scrapy log file (`logfile`), the items are the crawl's results
as JSON lines without crawlfleet's own fields. A spider's folder lists its
last 100 jobs, as Scrapyd keeps its last ``jobs_to_keep`` files.
"""

import datetime
import urllib.parse
from html import escape

from flask import Response, abort, request, stream_with_context

from crawlfleet.models import results_collection_for
from web import export, services
from web.scrapyd import bp, jobids, jobs, logfile, mount_path

JOBS_LISTED = 100
ITEM_FIELDS = ("_id", "_tid", "task_id", "_at")  # crawlfleet's, not the spider's
KINDS = {"logs": (".log", "text/plain"), "items": (".jl", "text/plain")}
LISTING = """<html>
<head>
<title>%(header)s</title>
<style>
.even-dir { background-color: #efe0ef }
.even { background-color: #eee }
.odd-dir {background-color: #f0d0ef }
.odd { background-color: #dedede }
.icon { text-align: center }
.listing {
    margin-left: auto;
    margin-right: auto;
    width: 50%%;
    padding: 0.1em;
    }

body { border: 0; padding: 0; margin: 0; background-color: #efefef; }
h1 {padding: 0.1em; background-color: #777; color: white; border-bottom: thin white dashed;}

</style>
</head>

<body>
<h1>%(header)s</h1>

<table>
    <thead>
        <tr>
            <th>Filename</th>
            <th>Size</th>
            <th>Last modified</th>
            <th>Content type</th>
            <th>Content encoding</th>
        </tr>
    </thead>
    <tbody>
%(rows)s
    </tbody>
</table>

</body>
</html>
"""
ROW = """<tr class="%(class)s">
    <td><a href="%(href)s">%(text)s</a></td>
    <td>%(size)s</td>
    <td>%(modified)s</td>
    <td>%(type)s</td>
    <td></td>
</tr>
"""


def modified(seconds: float | None) -> str:
    return datetime.datetime.fromtimestamp(seconds or 0).strftime("%Y-%m-%d %H:%M")


def listing(kind: str, entries: list) -> Response:
    """Twisted's directory listing: folders first, each (name, is_dir, when)."""
    folder = mount_path() + request.path[len(mount_path()):]
    folder = folder if folder.endswith("/") else folder + "/"
    entries = sorted(entries, key=lambda e: (not e[1], e[0]))
    rows = []
    for i, (name, is_dir, when) in enumerate(entries):
        parity = "even" if i % 2 == 0 else "odd"
        rows.append(ROW % {
            "class": parity + ("-dir" if is_dir else ""),
            "href": escape(folder + urllib.parse.quote(name) + ("/" if is_dir else "")),
            "text": escape(name) + ("/" if is_dir else ""),
            "size": "", "modified": modified(when),
            "type": "[Directory]" if is_dir else f"[{KINDS[kind][1]}]",
        })
    header = escape(f"Directory listing for {urllib.parse.unquote(request.path)}")
    return Response(LISTING % {"header": header, "rows": "".join(rows)}, mimetype="text/html")


def kind_route(rule):
    """The view at /logs<rule> and /items<rule>; a folder also without its
    final slash, answered in place (a redirect would come before auth)."""

    def decorator(view):
        for kind in KINDS:
            variants = {f"{kind}_{view.__name__}": rule}
            if rule.endswith("/"):
                variants[f"{kind}_{view.__name__}_bare"] = rule.rstrip("/")
            for endpoint, variant in variants.items():
                bp.add_url_rule(f"/{kind}{variant}", endpoint, view, defaults={"kind": kind},
                                methods=["GET"])
        return view

    return decorator


@kind_route("/")
def top(kind):
    store = services().store
    return listing(kind, [(d["_id"], True, d.get("updated_at"))
                          for d in store.projects.find({}, {"updated_at": 1})])


@kind_route("/<project>/")
def project_folder(kind, project):
    store = services().store
    if store.projects.find_one({"_id": project}, {"_id": 1}) is None:
        abort(404)
    return listing(kind, [(d["_id"], True, d.get("updated_at"))
                          for d in store.spiders.find({"project": project}, {"updated_at": 1})])


@kind_route("/<project>/<spider>/")
def spider_folder(kind, project, spider):
    store = services().store
    tasks = jobs.latest(store.tasks.find(
        {"project": project, "spider": spider, "started_at": {"$ne": None}}, jobs.FIELDS)
        .sort("created_at", -1).limit(JOBS_LISTED))
    if not tasks:
        abort(404)
    ids = jobids.jobids_of(store, [jobs.root_of(t) for t in tasks])
    suffix = KINDS[kind][0]
    return listing(kind, [(ids[jobs.root_of(t)] + suffix, False,
                           t.get("finished_at") or t.get("started_at")) for t in tasks])


@kind_route("/<project>/<spider>/<filename>")
def job_file(kind, project, spider, filename):
    suffix, mimetype = KINDS[kind]
    if not filename.endswith(suffix):
        abort(404)
    store = services().store
    task = jobs.find_job(store, filename[:-len(suffix)], project)
    if task is None or task["spider"] != spider or not task.get("started_at"):
        abort(404)
    if kind == "logs":
        body = logfile.scrapy_log(store.task_logs, task["_id"])
    else:
        name = task.get("results_collection") or results_collection_for(spider)
        docs = export.items_cursor(store.results(name), task["_id"])
        body = export.jsonl_lines({k: v for k, v in doc.items() if k not in ITEM_FIELDS}
                                  for doc in docs)
    return Response(stream_with_context(body), mimetype=mimetype)
