"""Where an alert webhook may be sent: not into the platform's own network.

A webhook URL is chosen by whoever configures alerts (a schedule's operator,
or the settings), and the master sends it a POST from inside the network; so
unless ``CRAWLFLEET_ALERT_ALLOW_PRIVATE`` is set, the host must resolve only
to public addresses: no loopback, private, link-local (the cloud metadata
service at 169.254.169.254 among them), shared, multicast or reserved one.
The check runs on every delivery, after DNS resolution, and again on each
redirect when redirects are followed at all (they are not, by default).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlparse


class TargetRefused(Exception):
    """The webhook's host is, or resolves to, an address alerts may not reach."""


def check(url: str, allow_private: bool = False) -> None:
    """Raise TargetRefused unless `url` is http(s) to a public address (or
    `allow_private`)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise TargetRefused("the webhook must be an http:// or https:// URL")
    if allow_private:
        return
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        infos = socket.getaddrinfo(parsed.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, ValueError, UnicodeError) as exc:
        raise TargetRefused(f"the webhook's host {parsed.hostname!r} does not resolve: "
                            f"{exc}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        mapped = getattr(address, "ipv4_mapped", None)
        if not (mapped or address).is_global:
            raise TargetRefused(
                f"the webhook's host {parsed.hostname!r} resolves to {address}, a loopback, "
                "private, link-local or reserved address (CRAWLFLEET_ALERT_ALLOW_PRIVATE "
                "allows it)")
