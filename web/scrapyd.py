"""Scrapyd's JSON API under /scrapyd/, so scrapyd-deploy (scrapyd-client) and
tools built for Scrapyd work against crawlfleet unchanged.

Point them at ``http://host:8080/scrapyd/`` with HTTP basic auth: the
password is a crawlfleet API token (the user name is free), or a web UI
user's name and password. Replies have Scrapyd's shapes — ``{"node_name":
..., "status": "ok", ...}`` and ``{"status": "error", "message": ...}`` —
but errors keep real HTTP status codes. What differs from Scrapyd:

- a job id is a crawlfleet task id: a ``jobid`` sent to schedule.json is kept
  on the task (``scrapyd_jobid``) but the reply names the task id;
- versions are content-addressed: the ``version`` of addversion.json is the
  version's label, and deploying the same content again changes nothing;
- priority is rounded into crawlfleet's 0-9.
"""

import datetime
import logging
import socket

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException

from crawlfleet.errors import BadRequest, Conflict, CrawlfleetError, NotFound, Unauthorized
from crawlfleet.models import FINAL_VALUES, TaskStatus
from master import dispatch, uploads, versions
from web import api, credentials, errors, services
from web.projects_api import read_multipart

log = logging.getLogger(__name__)

bp = Blueprint("scrapyd", __name__, url_prefix="/scrapyd")

WRITE_ENDPOINTS = {"scrapyd.addversion", "scrapyd.schedule", "scrapyd.cancel",
                   "scrapyd.delversion", "scrapyd.delproject"}
SCHEDULE_FIELDS = {"project", "spider", "_version", "jobid", "priority", "setting"}
FINISHED_SHOWN = 100  # Scrapyd's finished_to_keep


class Forbidden(CrawlfleetError):
    """Read-only (viewer) credentials asked for a change."""

    status_code = 403


def node_name():
    return services().config.node_id or socket.gethostname()


def reply(**fields):
    return jsonify({"node_name": node_name(), "status": "ok", **fields})


def error_reply(message, status):
    response = jsonify({"node_name": node_name(), "status": "error", "message": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="crawlfleet"'
    return response


@bp.errorhandler(CrawlfleetError)
def crawlfleet_error(exc):
    response = error_reply(errors.hide_paths(str(exc)), exc.status_code)
    if getattr(exc, "retry_after", None):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


@bp.errorhandler(HTTPException)
def http_error(exc):
    response = error_reply(exc.description or exc.name, exc.code or 500)
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


@bp.errorhandler(Exception)
def unexpected_error(exc):
    if isinstance(exc, HTTPException):
        return http_error(exc)
    log.exception("unhandled error in %s %s", request.method, request.path)
    return error_reply("internal server error", 500)


@bp.before_request
def authenticate():
    """Basic auth: an API token as the password, else a UI user's password
    (rate limited by `web.guard`); a bearer token or the UI's session also do."""
    principal = credentials.identify(allow_basic=True)
    if principal is None:
        raise Unauthorized("send HTTP basic auth with a crawlfleet API token as the password "
                           "(or a web user's name and password)")
    if request.endpoint in WRITE_ENDPOINTS and not principal.may_write:
        raise Forbidden("this needs an operator or admin token")


def required(source, name):
    value = source.get(name)
    if not value:
        raise BadRequest(f"'{name}' parameter is required")
    return value


def project_of(name):
    return versions.get_project(services().store, name)


def stamp(value):
    """Scrapyd's time format: local time, microseconds."""
    if not value:
        return None
    return datetime.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S.%f")


def job_urls(task_id):
    return {"log_url": f"{api.PREFIX}/tasks/{task_id}/log?format=text",
            "items_url": f"{api.PREFIX}/tasks/{task_id}/results?format=jsonl"}


# -- read ------------------------------------------------------------------------

@bp.get("/daemonstatus.json")
def daemonstatus():
    tasks = services().store.tasks
    return reply(pending=tasks.count_documents({"status": TaskStatus.PENDING.value}),
                 running=tasks.count_documents({"status": TaskStatus.RUNNING.value}),
                 finished=tasks.count_documents({"status": {"$in": FINAL_VALUES}}))


@bp.get("/listprojects.json")
def listprojects():
    store = services().store
    return reply(projects=[d["_id"] for d in store.projects.find({}, {"_id": 1}).sort("_id", 1)])


@bp.get("/listversions.json")
def listversions():
    project = required(request.args, "project")
    store = services().store
    docs = list(store.versions.find({"project": project}, {"label": 1, "created_at": 1})
                .sort("created_at", 1))
    # Scrapyd lists oldest first: the last one is the newest
    return reply(versions=[d.get("label") or d["_id"] for d in docs])


@bp.get("/listspiders.json")
def listspiders():
    project = required(request.args, "project")
    store = services().store
    doc = project_of(project)
    ref = request.args.get("_version") or doc.get("current_version")
    version = versions.find_version(store, project, ref)
    return reply(spiders=sorted(s["name"] for s in version.get("spiders") or []))


@bp.get("/listjobs.json")
def listjobs():
    store = services().store
    query = {}
    if request.args.get("project"):
        query["project"] = request.args["project"]
    fields = {"spider": 1, "project": 1, "version": 1, "status": 1, "args": 1, "settings": 1,
              "pid": 1, "started_at": 1, "finished_at": 1, "scrapyd_jobid": 1}

    def base(t):
        return {"id": t["_id"], "project": t.get("project"), "spider": t["spider"]}

    pending = [dict(base(t), version=t.get("version"), settings=t.get("settings") or {},
                    args=t.get("args") or {})
               for t in store.tasks.find(dict(query, status="pending"), fields).sort("_id", 1)]
    running = [dict(base(t), pid=t.get("pid"), start_time=stamp(t.get("started_at")),
                    **job_urls(t["_id"]))
               for t in store.tasks.find(dict(query, status="running"), fields).sort("_id", 1)]
    finished = [dict(base(t), start_time=stamp(t.get("started_at")),
                     end_time=stamp(t.get("finished_at")), status=t["status"],
                     **job_urls(t["_id"]))
                for t in store.tasks.find(dict(query, status={"$in": FINAL_VALUES}), fields)
                .sort("_id", -1).limit(FINISHED_SHOWN)]
    return reply(pending=pending, running=running, finished=finished)


@bp.get("/status.json")
def status():
    job = required(request.args, "job")
    query = {"_id": job}
    if request.args.get("project"):
        query["project"] = request.args["project"]
    task = services().store.tasks.find_one(query, {"status": 1})
    if task is None:
        state = "unknown"
    elif task["status"] in (TaskStatus.PENDING.value, TaskStatus.RUNNING.value):
        state = task["status"]
    else:
        state = "finished"
    return reply(currstate=state)


# -- write -----------------------------------------------------------------------

@bp.post("/addversion.json")
def addversion():
    svc = services()
    with uploads.scratch(svc.config, "body-") as tmp:
        form, files = read_multipart(tmp, svc.config.max_upload_bytes)
        project = required(form, "project")
        label = required(form, "version")
        egg = files.get("egg")
        if egg is None:
            raise BadRequest("'egg' parameter is required")
        egg.stream.seek(0)
        try:
            result = uploads.deploy_egg(svc.store, svc.config, egg.stream, project=project,
                                        label=label)
        finally:
            egg.close()
    return reply(project=project, version=result["label"], spiders=len(result["spiders"]),
                 version_id=result["version"])


@bp.post("/schedule.json")
def schedule():
    svc = services()
    form = request.form
    project = required(form, "project")
    name = required(form, "spider")
    spider = svc.store.spiders.find_one({"_id": name, "project": project}, {"_id": 1})
    if spider is None:
        project_of(project)
        raise NotFound(f"spider {name!r} not found in project {project!r}")
    version = None
    if form.get("_version"):
        version = versions.find_version(svc.store, project, form["_version"])["_id"]
    settings = {}
    for item in form.getlist("setting"):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadRequest(f"setting must be NAME=VALUE, got {item!r}")
        settings[key] = value
    priority = 0
    if form.get("priority"):
        try:
            priority = min(9, max(0, round(float(form["priority"]))))
        except (ValueError, OverflowError):
            raise BadRequest(f"priority must be a number, got {form['priority']!r}") from None
    jobid = form.get("jobid")
    if jobid is not None and (len(jobid) > 200 or not jobid.isprintable()):
        raise BadRequest("jobid must be at most 200 printable characters")
    args = {key: form.get(key) for key in form if key not in SCHEDULE_FIELDS}
    tasks = dispatch.run_spider(svc.store, svc.broker, svc.config, name, args=args,
                                settings=settings, priority=priority, trigger="scrapyd",
                                version=version,
                                extra={"scrapyd_jobid": jobid} if jobid else None)
    return reply(jobid=tasks[0]["_id"])


@bp.post("/cancel.json")
def cancel():
    svc = services()
    project = required(request.form, "project")
    job = required(request.form, "job")
    task = svc.store.tasks.find_one({"_id": job, "project": project}, {"status": 1})
    prevstate = None
    if task is not None and task["status"] in (TaskStatus.PENDING.value,
                                               TaskStatus.RUNNING.value):
        prevstate = task["status"]
        try:
            dispatch.request_cancel(svc.store, svc.broker, job)
        except Conflict:  # it ended in the meantime
            prevstate = None
    return reply(prevstate=prevstate)


@bp.post("/delversion.json")
def delversion():
    """Scrapyd's semantics: deleting the newest version makes the one before it
    current; deleting the only version deletes the project."""
    store = services().store
    project = required(request.form, "project")
    doc = project_of(project)
    version = versions.find_version(store, project, required(request.form, "version"))
    if version["_id"] == doc.get("current_version"):
        others = [v for v in versions.versions_of(store, project) if v["_id"] != version["_id"]]
        if not others:
            versions.delete_project(store, project)
            return reply()
        busy = versions.active_tasks(store, {"version": version["_id"]})
        if busy:
            raise Conflict(f"version {version['_id']} is used by pending or running tasks: "
                           f"{', '.join(busy)}")
        versions.activate(store, project, others[0]["_id"])
    versions.delete_version(store, project, version["_id"])
    return reply()


@bp.post("/delproject.json")
def delproject():
    store = services().store
    versions.delete_project(store, required(request.form, "project"))
    return reply()
