"""The spiders pages: the list, one spider (its run history charts, last
run, schedules, data settings, environment, tasks and versions), rescanning
the spider folders and the run form."""

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from crawlfleet import runhistory, schedules
from crawlfleet.errors import CrawlfleetError
from crawlfleet.results.manage import spider_settings
from master import discovery, dispatch
from master.nodes import list_nodes
from web import auth, errors, runcharts, services
from web.ui import bp, parse_pairs


def next_runs(store, spider_names):
    """{spider: next fire time} from enabled schedules. A store that does not
    answer is the page's error (503), not an empty column that looks like
    "no schedule"."""
    out = {}
    for doc in store.db.schedules.find({"spider": {"$in": spider_names}, "enabled": True},
                                       {"spider": 1, "next_fire_at": 1}):
        at = doc.get("next_fire_at")
        if isinstance(at, (int, float)) and (doc["spider"] not in out
                                             or at < out[doc["spider"]]):
            out[doc["spider"]] = at
    return out


@bp.get("/spiders")
def spiders():
    store = services().store
    docs = list(store.spiders.find().sort("_id", 1))
    last = {}
    for doc in docs:
        found = list(store.tasks.find({"spider": doc["_id"]},
                                      {"status": 1, "created_at": 1, "stats": 1})
                     .sort("created_at", -1).limit(1))
        last[doc["_id"]] = found[0] if found else None
    return render_template("spiders.html", spiders=docs, last=last,
                           next_runs=next_runs(store, [d["_id"] for d in docs]),
                           node_ids=[n["_id"] for n in store.nodes.find({}, {"_id": 1})])


def history_size():
    """How many runs the charts show (`?runs=N`); a bad value falls back to the default."""
    raw = request.args.get("runs", "")
    return (max(1, min(int(raw), runhistory.MAX_RUNS)) if raw.isdigit()
            else runhistory.DEFAULT_RUNS)


@bp.get("/spiders/<name>")
def spider(name):
    svc = services()
    store = svc.store
    with errors.missing_is_404():
        doc = dispatch.get_spider(store, name)
    tasks = list(store.tasks.find({"spider": name}).sort("created_at", -1).limit(20))
    versions = list(store.versions.find({"project": doc["project"]})
                    .sort("created_at", -1).limit(20))
    history = runhistory.spider_history(store, name, history_size())
    spider_schedules = [schedules.public_schedule(d, upcoming=1)
                        for d in store.schedules.find({"spider": name}).sort("_id", 1)]
    return render_template("spider.html", spider=doc, tasks=tasks, versions=versions,
                           next_run=next_runs(store, [name]).get(name),
                           history=history, charts=runcharts.charts(history["runs"]),
                           last_run=tasks[0] if tasks else None,
                           schedules=spider_schedules, data_settings=spider_settings(doc),
                           node_ids=[n["_id"] for n in list_nodes(store, svc.config)
                                     if n["online"]])


@bp.post("/spiders/rescan")
@auth.require("operator")
def rescan():
    svc = services()
    report = discovery.scan(svc.store, svc.config)
    errors = report.get("errors") or []
    spiders = sum(len(p.get("spiders") or []) for p in report.get("projects") or [])
    flash(_("Rescanned the spider folders: %(projects)s projects, %(spiders)s spiders.",
            projects=len(report.get("projects") or []), spiders=spiders) + "".join(f" {e['path']}: {e['error']}" for e in errors[:3]),
          "error" if errors else "ok")
    return redirect(url_for("ui.spiders"))


@bp.post("/spiders/<name>/run")
@auth.require("operator")
def run(name):
    svc = services()
    form = request.form
    try:
        args = parse_pairs(form.get("args"), "arguments")
        settings = parse_pairs(form.get("settings"), "settings")
        target = form.get("target", "any")
        nodes = form.getlist("nodes") if target == "nodes" else target
        timeout = float(form["timeout"]) if form.get("timeout", "").strip() else None
        if form.get("workers", "").strip() or form.get("persist"):
            from web import crawls_ui  # a crawl of workers sharing a frontier

            return crawls_ui.run_from_form(name, form)
        tasks = dispatch.run_spider(svc.store, svc.broker, svc.config, name, args=args,
                                    settings=settings, nodes=nodes, timeout=timeout,
                                    trigger="ui", extra={"user": g.user["_id"]},
                                    labels=form.get("labels", "").strip() or None)
    except ValueError:
        flash(_("The timeout must be a number of seconds."), "error")
        return redirect(url_for("ui.spider", name=name))
    except CrawlfleetError as exc:
        flash(str(exc), "error")
        return redirect(url_for("ui.spider", name=name))
    if len(tasks) == 1:
        return redirect(url_for("ui.task", task_id=tasks[0]["_id"]))
    flash(_("Started %(num)s tasks, one per node.", num=len(tasks)), "ok")
    return redirect(url_for("ui.tasks", spider=name))
