"""Alert channels, rules and history in the API (crawlfleet/alerting/), admins only:

    GET    /api/v1/alerts/channels                 list (URLs redacted)
    POST   /api/v1/alerts/channels                 {"name": "ops", "url": "slack://..."}
    GET    /api/v1/alerts/channels/ID
    PATCH  /api/v1/alerts/channels/ID              any of name, url, enabled
    DELETE /api/v1/alerts/channels/ID              409 while a rule sends to it
    POST   /api/v1/alerts/channels/ID/test         one test notification: 200, or 422 and why
    GET    /api/v1/alerts/rules
    POST   /api/v1/alerts/rules                    see crawlfleet/alerting/rules.py
    PATCH  /api/v1/alerts/rules/ID
    DELETE /api/v1/alerts/rules/ID
    GET    /api/v1/alerts/history?limit=&before=   newest first
"""

import math

from flask import Blueprint, g, jsonify, request
from flask.views import MethodView
from werkzeug.exceptions import Forbidden

from crawlfleet.alerting import channels, history, rules
from crawlfleet.errors import BadRequest
from master.alert_probe import send_test
from web import api, services

# nested in `web.api.bp`: its authentication and error handlers hold here too
bp = Blueprint("alerts_api", __name__, url_prefix="/alerts")


@bp.before_request
def admins_only():
    if g.get("token", {}).get("role") != "admin":
        raise Forbidden("only an admin may read or change alert channels, rules and history")


def who():
    return g.token.get("name")


@bp.get("/channels")
def list_channels():
    return jsonify({"channels": channels.list_channels(services().store)})


@bp.post("/channels")
def create_channel():
    body = api.json_body(channels.FIELDS)
    svc = services()
    return jsonify(channels.create(svc.store, svc.config, body, by=who())), 201


@bp.post("/channels/<channel_id>/test")
def test_channel(channel_id):
    api.json_body(())
    svc = services()
    result = send_test(svc.config, svc.store, channel_id)
    if not result["ok"]:
        return jsonify({"error": result["message"], **result}), 422
    return jsonify(result)


@bp.get("/rules")
def list_rules():
    kind = request.args.get("kind") or None
    if kind is not None and kind not in rules.KINDS:
        raise BadRequest(f"kind must be one of {', '.join(rules.KINDS)}")
    return jsonify({"rules": rules.list_rules(services().store, kind)})


@bp.post("/rules")
def create_rule():
    body = api.json_body(rules.FIELDS)
    return jsonify(rules.create(services().store, body, by=who())), 201


@bp.get("/history")
def list_history():
    before = request.args.get("before")
    try:
        before_at = float(before) if before else None
        if before_at is not None and not math.isfinite(before_at):
            raise ValueError
    except ValueError:
        raise BadRequest(f"before must be a time in epoch seconds, got {before!r}") from None
    limit = api.int_arg("limit", history.PAGE[0], history.PAGE[1], smallest=1)
    return jsonify({"alerts": history.recent(services().store, limit, before_at)})


class AlertItem(MethodView):
    """GET, PATCH and DELETE of one channel or rule: crawlfleet.alerting's
    channels and rules modules read, show and delete theirs alike."""

    init_every_request = False
    kind = None  # the alerting module: channels or rules

    def dispatch_request(self, **url):
        # the URL's one variable keeps its own name (<channel_id>, <rule_id>),
        # as the OpenAPI document calls it
        (item_id,) = url.values()
        return super().dispatch_request(item_id=item_id)

    def update(self, item_id, body):
        raise NotImplementedError

    def get(self, item_id):
        return jsonify(self.kind.public(self.kind.get(services().store, item_id)))

    def patch(self, item_id):
        return jsonify(self.update(item_id, api.json_body(self.kind.FIELDS)))

    def delete(self, item_id):
        self.kind.delete(services().store, item_id)
        return jsonify({"deleted": item_id})


class ChannelItem(AlertItem):
    kind = channels

    def update(self, item_id, body):
        svc = services()  # a changed URL is sealed with the config's key
        return channels.update(svc.store, svc.config, item_id, body)


class RuleItem(AlertItem):
    kind = rules

    def update(self, item_id, body):
        return rules.update(services().store, item_id, body)


bp.add_url_rule("/channels/<channel_id>", view_func=ChannelItem.as_view("channel"))
bp.add_url_rule("/rules/<rule_id>", view_func=RuleItem.as_view("rule"))
