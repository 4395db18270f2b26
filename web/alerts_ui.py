"""The Alerts page (admins only): channels (Apprise URLs, shown redacted) with
a "Send test" button each, rules for tasks (per spider, per schedule or all)
and for node resources, and the history of sent alerts. Same rules as the
API (web/alerts_api.py): crawlfleet/alerting/."""

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from crawlfleet.alerting import channels, history, rules
from crawlfleet.errors import BadRequest
from crawlfleet.schedules import ALERT_EVENTS
from master.alert_probe import send_test
from web import auth, errors, services

bp = Blueprint("alerts_ui", __name__, url_prefix="/alerts")
bp.before_request(auth.login_required_for_blueprint)

HISTORY = 50


@bp.before_request
def admins_only():
    if g.get("user") is not None and not auth.can("admin"):
        abort(403, _("only admins configure alerts"))


def back():
    return redirect(url_for("alerts_ui.index"))


def act(operation, said):
    """One of the page's buttons: `operation()`, then `said(its result)` flashed
    (or the refusal, as an error), and back to the page."""
    with errors.flash_errors():
        flash(said(operation()), "ok")
    return back()


def enabled(form):
    """The change an Enable or Disable button posts."""
    return {"enabled": form.get("enabled") == "1"}


@bp.get("/")
def index():
    svc = services()
    store, config = svc.store, svc.config
    return render_template(
        "alerts.html", channels=channels.list_channels(store), rules=rules.list_rules(store),
        history=history.recent(store, HISTORY), events=ALERT_EVENTS, metrics=rules.METRICS,
        spiders=[d["_id"] for d in store.spiders.find({}, {"_id": 1}).sort("_id", 1)],
        schedules=list(store.schedules.find({}, {"_id": 1, "spider": 1}).sort("_id", 1)),
        settings={"webhook": bool(config.alert_webhook), "email": config.alert_email_to,
                  "on": config.alert_on})


@bp.post("/channels")
def create_channel():
    svc, form = services(), request.form
    return act(lambda: channels.create(svc.store, svc.config, {"name": form.get("name", ""),
                                                               "url": form.get("url", "")},
                                       by=g.user["_id"]),
               lambda made: _("Channel %(name)s added (%(service)s).", name=made["name"],
                              service=made["service"]))


@bp.post("/channels/<channel_id>/test")
def test_channel(channel_id):
    svc = services()
    with errors.flash_errors():
        result = send_test(svc.config, svc.store, channel_id)
        flash(result["message"] + ".", "ok" if result["ok"] else "error")
    return back()


@bp.post("/channels/<channel_id>/enabled")
def switch_channel(channel_id):
    svc = services()
    return act(lambda: channels.update(svc.store, svc.config, channel_id, enabled(request.form)),
               lambda done: (_("Channel %(name)s enabled.") if done["enabled"]
                             else _("Channel %(name)s disabled.")) % {"name": done["name"]})


@bp.post("/channels/<channel_id>/delete")
def delete_channel(channel_id):
    return act(lambda: channels.delete(services().store, channel_id),
               lambda _deleted: _("Channel deleted."))


def number(form, name, kind=float):
    raw = form.get(name, "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise BadRequest(_("%(field)s must be a number", field=name.replace("_", " "))) from None


def rule_body(form):
    """The rule of a submitted form, as crawlfleet/alerting/rules.py takes it."""
    body = {"kind": form.get("kind", "task"), "channels": form.getlist("channels")}
    if body["kind"] == "node":
        body.update(metric=form.get("metric"), above=number(form, "above"),
                    minutes=number(form, "minutes") or 0, node=form.get("node") or None)
        return body
    scope = form.get("scope", "")
    kind, _sep, name = scope.partition(":")
    body.update(on=form.getlist("on"), items_below=number(form, "items_below", int),
                duration_above=number(form, "duration_above"),
                spider=name if kind == "spider" else None,
                schedule_id=name if kind == "schedule" else None)
    return body


@bp.post("/rules")
def create_rule():
    return act(lambda: rules.create(services().store, rule_body(request.form), by=g.user["_id"]),
               lambda made: _("Rule added: %(summary)s.", summary=made["summary"]))


@bp.post("/rules/<rule_id>/enabled")
def switch_rule(rule_id):
    return act(lambda: rules.update(services().store, rule_id, enabled(request.form)),
               lambda done: (_("Rule enabled: %(summary)s.") if done["enabled"]
                             else _("Rule disabled: %(summary)s.")) % {"summary": done["summary"]})


@bp.post("/rules/<rule_id>/delete")
def delete_rule(rule_id):
    return act(lambda: rules.delete(services().store, rule_id), lambda _deleted: _("Rule deleted."))
