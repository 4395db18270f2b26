"""Scrapyd 1.6's JSON API (its webservice.py), answered from crawlfleet.

A Scrapyd project is a crawlfleet project; a Scrapyd version is a label of
a crawlfleet version (one content may carry several labels, as several eggs
of the same code would in Scrapyd); a Scrapyd job is a crawl (`jobs`).
Parameters are read from the query string and the form body alike, as
Twisted does.
"""

import io
import urllib.parse
import zipfile

from flask import request

from crawlfleet.errors import Conflict, CrawlfleetError
from master import dispatch, uploads, versions
from web import services
from web.multipart import read_multipart
from web.scrapyd import bp, jobids, jobs, mount_path
from web.scrapyd.protocol import SERVED, ScrapydError, check_traversal, param, reply

SCHEDULE_FIELDS = {"project", "spider", "_version", "jobid", "priority", "setting"}


def route(rule, method):
    """An endpoint serving `method`; the others reach it too, to be answered
    after authentication (protocol.options_reply)."""

    def decorator(view):
        SERVED[f"{bp.name}.{view.__name__}"] = method
        return bp.route(rule, methods=["GET", "POST", "OPTIONS", "PUT", "DELETE", "PATCH"],
                        provide_automatic_options=False)(view)

    return decorator


def project_exists(project: str) -> bool:
    return services().store.projects.find_one({"_id": project}, {"_id": 1}) is not None


def need_project(project: str | None) -> None:
    if project is not None and not project_exists(project):
        raise ScrapydError(f"project '{project}' not found")


def labelled(store, project: str, label: str) -> dict:
    """The version a Scrapyd version name (a label, or a version id) names."""
    try:
        return versions.find_version(store, project, label)
    except CrawlfleetError:
        raise ScrapydError(f"version '{label}' not found") from None


def labels_of(version: dict) -> list:
    """A version's Scrapyd names: none left when newer content took its labels,
    as Scrapyd's egg of that name was overwritten."""
    if "labels" in version:
        return version["labels"]
    return [version.get("label") or version["_id"]]  # made before versions had labels


def file_urls(task: dict) -> dict:
    if not task.get("started_at"):
        return {"log_url": None, "items_url": None}
    path = f"{task['project']}/{task['spider']}/{task['jobid']}"
    base = mount_path()
    return {"log_url": urllib.parse.quote(f"{base}/logs/{path}.log"),
            "items_url": urllib.parse.quote(f"{base}/items/{path}.jl")}


# -- read ------------------------------------------------------------------------

@route("/daemonstatus.json", "GET")
def daemonstatus():
    return reply(**jobs.counts(services().store))


@route("/listprojects.json", "GET")
def listprojects():
    store = services().store
    return reply(projects=[d["_id"] for d in store.projects.find({}, {"_id": 1}).sort("_id", 1)])


@route("/listversions.json", "GET")
def listversions():
    project = check_traversal(param(request.args, "project"))
    store = services().store
    current = (store.projects.find_one({"_id": project}, {"current_version": 1}) or {}).get(
        "current_version")
    docs = store.versions.find({"project": project}, {"label": 1, "labels": 1, "created_at": 1})
    # oldest first and the current one last, as clients take the last for the one in use
    order = sorted(docs, key=lambda d: (d["_id"] == current, d.get("created_at", 0)))
    return reply(versions=[name for doc in order for name in labels_of(doc)])


@route("/listspiders.json", "GET")
def listspiders():
    store = services().store
    project = param(request.args, "project")
    label = param(request.args, "_version", required=False)
    need_project(project)
    if label:
        version = labelled(store, project, label)
    else:
        current = store.projects.find_one({"_id": project}, {"current_version": 1})
        version = store.versions.find_one({"_id": current.get("current_version")},
                                          {"spiders": 1}) or {}
    return reply(spiders=sorted(s["name"] for s in version.get("spiders") or []))


@route("/listjobs.json", "GET")
def listjobs():
    project = param(request.args, "project", required=False)
    need_project(project)
    groups = jobs.list_jobs(services().store, project)

    def base(task):
        return {"id": task["jobid"], "project": task["project"], "spider": task["spider"]}

    return reply(
        pending=[dict(base(t), version=t.get("scrapyd_version"),
                      settings=t.get("settings") or {}, args=t.get("args") or {})
                 for t in groups["pending"]],
        running=[dict(base(t), pid=t.get("pid"), start_time=jobs.stamp(t.get("started_at")),
                      **file_urls(t)) for t in groups["running"]],
        finished=[dict(base(t), start_time=jobs.stamp(t.get("started_at")),
                       end_time=jobs.stamp(t.get("finished_at")), **file_urls(t))
                  for t in groups["finished"]],
    )


@route("/status.json", "GET")
def status():
    job = param(request.args, "job")
    project = param(request.args, "project", required=False)
    need_project(project)
    return reply(currstate=jobs.state_of(jobs.find_job(services().store, job, project)))


# -- write -----------------------------------------------------------------------

def addversion_fields(tmp, limit):
    """(fields, egg bytes or file) of a multipart or url-encoded body; the query
    string counts too, as in Twisted."""
    fields = {k: v for k, v in request.args.items()}
    if request.mimetype == "multipart/form-data":
        form, files = read_multipart(tmp, limit)
        fields.update({k: v for k, v in form.items() if k != "egg"})
        if "egg" in files:
            return fields, files["egg"].stream
        if "egg" in form:
            return fields, io.BytesIO(form["egg"].encode("utf-8", "surrogateescape"))
        return fields, None
    request.max_content_length = limit
    body = request.get_data(cache=False)
    egg = None
    for key, value in url_encoded_pairs(body):
        if key == b"egg":
            egg = egg or io.BytesIO(value)
        else:
            try:
                fields.setdefault(key.decode(), value.decode())
            except UnicodeDecodeError:
                raise ScrapydError(f"{key!r} is invalid: not UTF-8") from None
    return fields, egg


def url_encoded_pairs(body: bytes):
    """(name, value) bytes of a url-encoded body; parse_qsl would decode the
    values as UTF-8, and an egg is binary."""
    for part in body.split(b"&"):
        if part:
            key, _, value = part.partition(b"=")
            yield (urllib.parse.unquote_to_bytes(key.replace(b"+", b" ")),
                   urllib.parse.unquote_to_bytes(value.replace(b"+", b" ")))


@route("/addversion.json", "POST")
def addversion():
    svc = services()
    with uploads.scratch(svc.config, "body-") as tmp:
        fields, egg = addversion_fields(tmp, svc.config.max_upload_bytes)
        project = param(fields, "project")
        label = param(fields, "version")
        if egg is None:
            raise ScrapydError("'egg' parameter is required")
        egg.seek(0)
        if not zipfile.is_zipfile(egg):
            raise ScrapydError("egg is not a ZIP file (if using curl, use egg=@path not egg=path)")
        check_traversal(project)
        egg.seek(0)
        result = uploads.deploy_egg(svc.store, svc.config, egg, project=project, label=label)
    # version_id: crawlfleet's own id of the version (content hash), besides Scrapyd's answer
    return reply(project=project, version=label, spiders=len(result["spiders"]),
                 version_id=result["version"])


def schedule_settings(items) -> dict:
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ScrapydError(f"setting must be NAME=VALUE, got {item!r}")
        settings[key] = value
    return settings


@route("/schedule.json", "POST")
def schedule():
    svc = services()
    form = request.values
    project = param(form, "project")
    name = param(form, "spider")
    label = param(form, "_version", required=False)
    jobid = param(form, "jobid", required=False)
    need_project(project)
    version = labelled(svc.store, project, label) if label else None
    if version is None:
        current = svc.store.projects.find_one({"_id": project}, {"current_version": 1})
        spiders_of = svc.store.versions.find_one({"_id": current.get("current_version")},
                                                 {"spiders": 1}) or {}
    else:
        spiders_of = version
    if name not in {s["name"] for s in spiders_of.get("spiders") or []}:
        raise ScrapydError(f"spider '{name}' not found")
    try:
        priority = min(9, max(0, round(float(form.get("priority") or 0))))
    except (ValueError, OverflowError):
        raise ScrapydError(f"priority is invalid: {form.get('priority')!r}") from None
    settings = schedule_settings(form.getlist("setting"))
    args = {key: form.get(key) for key in form if key not in SCHEDULE_FIELDS}
    jobid = jobids.check_jobid(jobid) if jobid is not None else jobids.new_jobid()
    jobids.reserve(svc.store, jobid, project, name)
    try:
        tasks = dispatch.run_spider(svc.store, svc.broker, svc.config, name, args=args,
                                    settings=settings, priority=priority, trigger="scrapyd",
                                    version=version["_id"] if version else None,
                                    extra={"scrapyd_jobid": jobid, "scrapyd_version": label})
    except BaseException:
        jobids.release(svc.store, jobid)
        raise
    jobids.attach(svc.store, jobid, tasks[0]["_id"])
    return reply(jobid=jobid, task_id=tasks[0]["_id"])


@route("/cancel.json", "POST")
def cancel():
    svc = services()
    project = param(request.values, "project")
    job = param(request.values, "job")
    need_project(project)
    task = jobs.find_job(svc.store, job, project)
    prevstate = None
    if jobs.state_of(task) in ("pending", "running"):
        prevstate = task["status"]
        try:
            dispatch.request_cancel(svc.store, svc.broker, task["_id"])
        except Conflict:  # it ended in the meantime
            prevstate = None
    return reply(prevstate=prevstate)


@route("/delversion.json", "POST")
def delversion():
    """Scrapyd's semantics: a version name is one egg. Deleting a label that
    shares its content with others removes just the label; deleting the newest
    version makes the one before it current; deleting the only one deletes
    the project."""
    store = services().store
    project = check_traversal(param(request.values, "project"))
    label = param(request.values, "version")
    if not project_exists(project):
        raise ScrapydError(f"version '{label}' not found")
    version = labelled(store, project, label)
    names = labels_of(version)
    if label in names and len(names) > 1:
        store.versions.update_one({"_id": version["_id"]},
                                  {"$set": {"labels": [n for n in names if n != label],
                                            "label": next(n for n in names if n != label)}})
        return reply()
    doc = store.projects.find_one({"_id": project}, {"current_version": 1})
    if version["_id"] == doc.get("current_version"):
        others = [v for v in versions.versions_of(store, project) if v["_id"] != version["_id"]]
        if not others:
            versions.delete_project(store, project)
            return reply()
        refuse_while_busy(store, {"version": version["_id"]}, f"version '{label}'")
        versions.activate(store, project, others[0]["_id"])
    versions.delete_version(store, project, version["_id"])
    return reply()


@route("/delproject.json", "POST")
def delproject():
    project = check_traversal(param(request.values, "project"))
    if not project_exists(project):
        raise ScrapydError(f"project '{project}' not found")
    store = services().store
    refuse_while_busy(store, {"project": project}, f"project '{project}'")
    versions.delete_project(store, project)
    return reply()


def refuse_while_busy(store, query: dict, what: str) -> None:
    """crawlfleet keeps what a waiting or running job needs: name those jobs."""
    busy = list(store.tasks.find(dict(query, status={"$in": [jobs.PENDING, jobs.RUNNING]}),
                                 {"root_id": 1}).limit(5))
    if busy:
        ids = jobids.jobids_of(store, [jobs.root_of(t) for t in busy])
        raise ScrapydError(f"{what} is used by pending or running jobs: "
                           f"{', '.join(ids.values())}; cancel them or wait for them to end")
