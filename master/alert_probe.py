"""The "send test" of an alert channel (the UI's button, the API's
``POST /alerts/channels/ID/test``, ``crawlfleet alerts test``): one
notification, one attempt (someone is waiting for the answer), checked like
any alert to a generic webhook; the result is kept on the channel and said in
one line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crawlfleet.alerting import channels, delivery, history
from crawlfleet.errors import ConfigError
from crawlfleet.models import Doc
from master import webhook_target

if TYPE_CHECKING:
    from crawlfleet.config import Config
    from crawlfleet.store import Store

TITLE = "[crawlfleet] test alert"


def send_test(config: Config, store: Store, channel_id: str) -> Doc:
    """{"ok", "message", "at"}: whether the channel took a test notification."""
    channel = channels.get(store, channel_id)
    text = f"crawlfleet: a test of alert channel {channel['name']}; it works."
    try:
        url = channels.clear_url(config, channel)
        hook = delivery.webhook_url(url)
        if hook:
            webhook_target.check(hook, config.alert_allow_private)
        delivery.send(url, TITLE, text)
        ok, message = True, f"test sent to {channel['name']} ({channel.get('service')})"
    except (ConfigError, webhook_target.TargetRefused, delivery.DeliveryFailed) as exc:
        ok, message = False, f"test to {channel['name']} failed: {exc}"
    history.record(store, kind="test", subject=channel["_id"], events=["test"],
                   channel=channel["name"], target=channel.get("redacted") or "", text=text,
                   ok=ok, attempts=1, error=None if ok else message)
    return channels.record_test(store, channel["_id"], ok, message)
