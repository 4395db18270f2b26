"""How an alert is sent, for `master.alerts.Alerter`: a webhook POST checked
against the target rules (master/webhook_target.py) on every hop, an email
through ``smtplib``, a channel through Apprise (crawlfleet/alerting/delivery.py),
each tried as `crawlfleet.retrying.ALERT_DELIVERY` says. Which tasks are
alerted, and to whom, is `master.alerts`'s part.
"""

import json
import smtplib
from email.message import EmailMessage
from urllib.parse import urljoin

from crawlfleet.alerting import channels as alert_channels
from crawlfleet.alerting import delivery
from crawlfleet.errors import ConfigError
from crawlfleet.retrying import ALERT_DELIVERY
from master import webhook_target

WEBHOOK_TIMEOUT = 5.0
MAX_REDIRECTS = 5       # followed only with alert_follow_redirects
SMTP_TIMEOUT = 10.0
ATTEMPTS = ALERT_DELIVERY.attempts  # tries of one delivery


class Deliveries:
    """The sending half of the alerter; needs `config`, `session` (requests),
    `sleep` and `sender` on the instance."""

    def retrying(self, send):
        """Run `send` under the `ALERT_DELIVERY` policy; it returns None when done,
        raises `Permanent` to stop at once, anything else to try again."""
        attempts = 0

        def attempt():
            nonlocal attempts
            attempts += 1
            send()

        try:
            # Any failure but Permanent (network, SMTP, 5xx) is worth another try.
            ALERT_DELIVERY.call(attempt, retry_on=(Exception,), give_up_on=(Permanent,),
                                sleep=self.sleep)
        except Permanent as exc:
            return {"ok": False, "attempts": attempts, "error": str(exc)}
        except Exception as exc:  # the last attempt failed too: recorded, not raised
            return {"ok": False, "attempts": attempts, "error": f"{type(exc).__name__}: {exc}"}
        return {"ok": True, "attempts": attempts, "error": None}

    def post(self, url, body):
        """POST `body`; the target is checked first (master/webhook_target.py), and
        again on each redirect when the settings follow them. The reply's body
        is never kept: it would be shown with the task to anyone who may read it."""
        for hop in range(MAX_REDIRECTS + 1):
            try:
                webhook_target.check(url, self.config.alert_allow_private)
            except webhook_target.TargetRefused as exc:
                raise Permanent(str(exc)) from None
            response = self.session.post(url, json=body, timeout=WEBHOOK_TIMEOUT,
                                         headers={"User-Agent": "crawlfleet-alerts"},
                                         allow_redirects=False)
            response.close()
            if not response.is_redirect:
                break
            if not self.config.alert_follow_redirects or hop == MAX_REDIRECTS:
                raise Permanent(f"HTTP {response.status_code}: a redirect, not followed "
                                "(CRAWLFLEET_ALERT_FOLLOW_REDIRECTS)")
            url = urljoin(url, response.headers.get("Location", ""))
        if response.status_code >= 500 or response.status_code == 429:
            raise Transient(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise Permanent(f"HTTP {response.status_code}")

    def to_channel(self, channel, subject, text):
        """Send to a channel (its store document) under the `ALERT_DELIVERY` policy."""
        try:
            url = alert_channels.clear_url(self.config, channel)
        except ConfigError as exc:
            return {"ok": False, "attempts": 0, "error": str(exc)}
        return self.retrying(lambda: self.apprise_send(url, subject, text))

    def apprise_send(self, url, subject, text):
        hook = delivery.webhook_url(url)
        if hook:
            try:
                webhook_target.check(hook, self.config.alert_allow_private)
            except webhook_target.TargetRefused as exc:
                raise Permanent(str(exc)) from None
        try:
            delivery.send(url, subject, text)
        except delivery.UnknownService as exc:
            raise Permanent(str(exc)) from None
        except delivery.DeliveryFailed as exc:
            raise Transient(str(exc)) from None

    def mail(self, to, task, body):
        message = EmailMessage()
        info = body["task"]
        message["Subject"] = (f"[crawlfleet] {info['spider']} {info['status']}"
                              + (" (no item)" if "zero_items" in body["events"] else "")
                              + f": task {info['id']}")
        message["From"] = self.sender
        message["To"] = ", ".join(to)
        message.set_content(body["text"] + "\n\n" + json.dumps(body, indent=2, default=str))
        config = self.config
        cls = smtplib.SMTP_SSL if config.alert_smtp_security == "ssl" else smtplib.SMTP
        with cls(config.alert_smtp_host, config.alert_smtp_port, timeout=SMTP_TIMEOUT) as smtp:
            if config.alert_smtp_security == "starttls":
                smtp.starttls()
            if config.alert_smtp_user:
                smtp.login(config.alert_smtp_user, config.alert_smtp_password)
            smtp.send_message(message)



def title(body):
    info = body["task"]
    return (f"[crawlfleet] {info['spider']} {info['status']}: task {info['id']} "
            f"({', '.join(body['events'])})")


class Transient(Exception):
    """A delivery failed in a way another attempt may fix."""


class Permanent(Exception):
    """A delivery was refused for good (4xx): no other attempt."""
