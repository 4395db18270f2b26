"""One notification through Apprise (https://github.com/caronc/apprise), the
library that speaks email, JSON/XML webhooks, Slack, Microsoft Teams,
Telegram, Discord, DingTalk, WeCom, Lark/Feishu and ~100 other services from
one URL each, so crawlfleet has no hand-written client per service.

Apprise reports a failure as False plus log lines; `send` turns that into
`DeliveryFailed` carrying the last warning line, with the URL's secret parts
masked, so the UI, the API and the history can show why in one line.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote, urlsplit

from crawlfleet.secrets import mask_in

# Apprise's generic webhooks: their host is whatever the URL says, so the
# master checks it like an alert webhook (master/webhook_target.py).
WEBHOOK_SCHEMES = {"json": "http", "jsons": "https", "xml": "http", "xmls": "https",
                   "form": "http", "forms": "https"}


class DeliveryFailed(Exception):
    """Apprise did not deliver a notification; the message says why in one line."""


class UnknownService(DeliveryFailed):
    """Apprise does not understand the URL (no service has that scheme, or a part is missing)."""


def instantiate(url: str) -> Any:
    """Apprise's plugin object for `url`, or raise UnknownService."""
    import apprise  # imported when needed: it loads ~100 service plugins

    if not isinstance(url, str) or "://" not in url:
        raise UnknownService("not an Apprise URL: expected scheme://..., e.g. "
                             "json://host/path, mailtos://user:pass@host, slack://...")
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as output:
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        detail = last_line(output.getvalue(), url)
        raise UnknownService("Apprise cannot use this URL"
                             + (f": {detail}" if detail else
                                f" (is {url.split('://', 1)[0]!r} a service it supports?)"))
    return plugin


def service_name(url: str) -> str:
    return str(getattr(instantiate(url), "service_name", "") or url.split("://", 1)[0])


def webhook_url(url: str) -> str | None:
    """The http(s) URL a generic Apprise webhook (json://, xml://, form://) posts
    to, for the master's target check; None for a named service."""
    parts = urlsplit(url)
    scheme = WEBHOOK_SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        return None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}{f':{parts.port}' if parts.port else ''}/"


def secret_parts(url: str) -> list[str]:
    """The pieces of `url` that may be credentials: masked in any message."""
    parts = urlsplit(url)
    pieces = [parts.password or "", parts.username or ""]
    pieces += [unquote(p) for p in parts.path.split("/") if p]
    pieces += [unquote(v) for q in parts.query.split("&") for v in q.split("=")[1:]]
    if parts.hostname and not any(c == "." for c in parts.hostname):
        pieces.append(parts.hostname)  # e.g. slack://TokenA/..., tgram://bottoken/
    return [p for p in pieces if len(p) >= 4]


def last_line(log_text: str, url: str) -> str:
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    return mask_in(lines[-1], secret_parts(url))[:300] if lines else ""


def send(url: str, title: str, body: str) -> None:
    """Deliver one notification to `url`; raise DeliveryFailed with the reason."""
    import apprise

    plugin = instantiate(url)
    notifier = apprise.Apprise()
    notifier.add(plugin)
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as output:
        try:
            ok = notifier.notify(title=title, body=body)
        except Exception as exc:  # a plugin's own bug: still one line, not a traceback
            raise DeliveryFailed(mask_in(f"{type(exc).__name__}: {exc}", secret_parts(url))
                                 [:300]) from None
    if not ok:
        reason = last_line(output.getvalue(), url)
        raise DeliveryFailed(reason or f"{service_name(url)} did not accept the notification")
