"""Schedule pages of the web UI: list, create and edit (the cron field shows
its next fire times as you type, from ``/schedules/preview``), enable and
disable, delete, "run now", the expression in words as you type (from
``/schedules/describe``), and each schedule's fire history. The rules are those of
`crawlfleet.schedules`, which the schedules API and the master's scheduler
also use."""

from flask import (Blueprint, abort, flash, g, jsonify, redirect, render_template, request,
                   session, url_for)
from flask_babel import get_locale
from flask_babel import gettext as _

from crawlfleet import schedules
from crawlfleet.errors import BadRequest, CrawlfleetError, NotFound
from master.runnow import run_schedule_now
from web import auth, errors, services
from web.ui import parse_pairs

bp = Blueprint("schedules_ui", __name__, url_prefix="/schedules")
bp.before_request(auth.login_required_for_blueprint)

PREVIEW_COUNT = 5
HISTORY = 30


@bp.get("/")
def index():
    store = services().store
    docs = [schedules.public_schedule(d) for d in store.schedules.find().sort("_id", -1)]
    return render_template("schedules.html", schedules=docs)


def form_body(form):
    """The schedule fields of a submitted form, as the schedules module takes them."""
    body = {
        "spider": form.get("spider", ""),
        "cron": form.get("cron", "").strip(),
        "timezone": form.get("timezone", "").strip() or "UTC",
        "args": parse_pairs(form.get("args"), "arguments"),
        "settings": parse_pairs(form.get("settings"), "settings"),
        "nodes": form.get("nodes") or "any",
        "labels": form.get("labels", "").strip() or None,
        "description": form.get("description", "").strip(),
        "enabled": form.get("enabled") == "on",
        "overlap": form.get("overlap") or "skip",
    }
    for name in ("timeout", "max_attempts"):
        raw = form.get(name, "").strip()
        if raw:
            try:
                body[name] = float(raw) if name == "timeout" else int(raw)
            except ValueError:
                raise BadRequest(f"{name.replace('_', ' ')} must be a number") from None
    attempts = body.pop("max_attempts", None)
    body["retry"] = {"max_attempts": attempts, "backoff": 30} if attempts else None
    return body


def spider_names():
    return [d["_id"] for d in services().store.spiders.find({}, {"_id": 1}).sort("_id", 1)]


def render_form(schedule, status=200, history=None):
    return render_template("schedule.html", schedule=schedule, spiders=spider_names(),
                           overlaps=schedules.OVERLAP_POLICIES, history=history,
                           preview_url=url_for("schedules_ui.preview"),
                           describe_url=url_for("schedules_ui.describe")), status


@bp.route("/new", methods=["GET", "POST"])
def new():
    if request.method == "GET":
        return render_form({**schedules.DEFAULTS, "cron": "0 3 * * *",
                            "spider": request.args.get("spider", "")})
    if not auth.can("operator"):
        abort(403, _("creating a schedule needs the operator role"))
    try:
        doc = schedules.create(services().store, form_body(request.form))
    except CrawlfleetError as exc:
        flash(str(exc), "error")
        return render_form({**schedules.DEFAULTS, **request.form.to_dict()}, 400)
    flash(_("Schedule for %(spider)s created.", spider=doc["spider"]), "ok")
    return redirect(url_for("schedules_ui.edit", schedule_id=doc["_id"]))


@bp.route("/<schedule_id>", methods=["GET", "POST"])
def edit(schedule_id):
    store = services().store
    with errors.missing_is_404():
        current = schedules.get(store, schedule_id)
    if request.method == "POST":
        if not auth.can("operator"):
            abort(403, _("changing a schedule needs the operator role"))
        try:
            schedules.update(store, schedule_id, form_body(request.form))
        except CrawlfleetError as exc:
            flash(str(exc), "error")
            return render_form({**current, **request.form.to_dict()}, 400)
        flash(_("Schedule saved."), "ok")
        return redirect(url_for("schedules_ui.edit", schedule_id=schedule_id))
    return render_form(schedules.public_schedule(current, upcoming=PREVIEW_COUNT),
                       history=schedules.history(store, schedule_id, limit=HISTORY)["fires"])


@bp.post("/<schedule_id>/enabled")
@auth.require("operator")
def set_enabled(schedule_id):
    enabled = request.form.get("enabled") == "true"
    with errors.flash_errors():
        schedules.set_enabled(services().store, schedule_id, enabled)
        flash(_("Schedule enabled.") if enabled else _("Schedule disabled."), "ok")
    if request.form.get("back") == "edit":
        return redirect(url_for("schedules_ui.edit", schedule_id=schedule_id))
    return redirect(url_for("schedules_ui.index"))


@bp.post("/<schedule_id>/delete")
@auth.require("operator")
def delete(schedule_id):
    with errors.flash_errors():
        schedules.delete(services().store, schedule_id)
        flash(_("Schedule deleted."), "ok")
    return redirect(url_for("schedules_ui.index"))


@bp.get("/preview")
def preview():
    """The next fire times of a cron expression in a zone (JSON, read-only)."""
    try:
        out = schedules.preview(request.args.get("cron", ""),
                                request.args.get("timezone") or "UTC", PREVIEW_COUNT)
    except CrawlfleetError as exc:
        return jsonify({"error": str(exc)}), 400
    session.modified = False
    return jsonify({"cron": out["cron"], "timezone": out["timezone"],
                    "fire_times": out["fire_times"]})


@bp.get("/describe")
def describe():
    """A cron expression in words, and its sixth (seconds) field explained (JSON)."""
    locale = str(get_locale() or "en")
    try:
        out = schedules.describe(request.args.get("cron", ""),
                                 request.args.get("timezone") or "UTC",
                                 locale="zh_CN" if locale.startswith("zh") else "en")
    except CrawlfleetError as exc:
        return jsonify({"error": str(exc)}), 400
    if out["seconds_words"]:
        field = out["cron"].split(" ")[5]
        out["seconds"] = _("The sixth field (%(field)s) is seconds: %(words)s, in each minute "
                           "that matches the first five fields.", field=field,
                           words=out["seconds_words"])
    session.modified = False
    return jsonify(out)


@bp.post("/<schedule_id>/run")
@auth.require("operator")
def run_now(schedule_id):
    """Run the schedule's spider now with its options; the task's trigger is ui."""
    svc = services()
    try:
        tasks = run_schedule_now(svc.store, svc.broker, svc.config, schedule_id,
                                 trigger="ui", extra={"user": g.user["_id"]})
    except NotFound as exc:
        abort(404, str(exc))
    except CrawlfleetError as exc:
        flash(str(exc), "error")
        return redirect(url_for("schedules_ui.edit", schedule_id=schedule_id))
    if len(tasks) == 1:
        flash(_("Started now, outside the schedule's times."), "ok")
        return redirect(url_for("ui.task", task_id=tasks[0]["_id"]))
    flash(_("Started %(num)s tasks now, outside the schedule's times.", num=len(tasks)), "ok")
    return redirect(url_for("ui.tasks", spider=tasks[0]["spider"]))
