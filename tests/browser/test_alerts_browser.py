"""The Alerts page in a real headless Chromium (web/alerts_ui.py): an admin adds
Apprise channels (json:// to a loopback receiver), sends a test that works
and one that fails, adds a task rule and a node rule, and sees the alert the
master's pass sent in the history; the channel URL is never shown back."""

import threading

import pytest
from werkzeug.serving import make_server

from crawlfleet import users
from helpers import free_port
from test_alerts import Receiver, alerter, final_task
from test_cli_client import QuietHandler
from test_ui_browser import PASSWORD, page, shot  # noqa: F401  the page fixture
from web import create_app

SECRET = "xoxb-S3cretPath"


@pytest.fixture
def site(config, store, monkeypatch):
    """The web app on a free port (werkzeug in a thread), on the test's store."""
    monkeypatch.setenv("CRAWLFLEET_ADMIN_PASSWORD", PASSWORD)
    app = create_app(config.replace(alert_allow_private=True))  # the receiver is on loopback
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
    app.extensions["crawlfleet"].close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def sign_in(page, url, name, password=PASSWORD):
    page.goto(url + "/alerts/")
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_an_admin_sets_up_alerts_from_the_browser(site, page, config, store,  # noqa: F811
                                                  receiver):
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, site, "admin")
    page.wait_for_url(site + "/alerts/")
    assert page.locator("nav a.active").inner_text() == "Alerts"
    assert page.locator(".empty").first.inner_text() == "No channel yet."

    # -- channels and their tests ----------------------------------------------------
    page.fill("#ch-name", "ops")
    page.fill("#ch-url", receiver.url.replace("http://", "json://") + "/" + SECRET)
    page.click("#new-channel button[type=submit]")
    assert page.locator(".flash.ok").inner_text() == "Channel ops added (JSON)."
    assert SECRET not in page.content()
    page.locator("#channels-table tr", has_text="ops").locator("button.test-channel").click()
    assert page.locator(".flash.ok").inner_text().startswith("test sent to ops (JSON)")
    assert len(receiver.bodies) == 1 and "test of alert channel ops" in receiver.bodies[0][
        "message"]
    page.fill("#ch-name", "dead")
    page.fill("#ch-url", f"json://127.0.0.1:{free_port()}/hook")
    page.click("#new-channel button[type=submit]")
    page.locator("#channels-table tr", has_text="dead").locator("button.test-channel").click()
    failed = page.locator(".flash.error").inner_text()
    assert failed.startswith("test to dead failed:") and "\n" not in failed
    assert page.locator("#channels-table tr", has_text="dead").locator(
        ".badge.error").inner_text() == "failed"
    shot(page, "60-alerts-channels")

    # -- rules -----------------------------------------------------------------------
    form = page.locator("#new-rule")
    form.locator("input[name=on][value=timeout]").check()
    form.locator("label", has_text="ops").locator("input").check()
    form.locator("button[type=submit]").click()
    assert page.locator(".flash.ok").inner_text() == "Rule added: every task: error, timeout."
    node_form = page.locator("#new-node-rule")
    node_form.locator("#n-metric").select_option("memory")
    node_form.locator("#n-above").fill("90")
    node_form.locator("#n-minutes").fill("10")
    node_form.locator("label", has_text="ops").locator("input").check()
    node_form.locator("button[type=submit]").click()
    assert "any node: memory above 90% for 10 min" in page.locator("#rules-table").inner_text()
    # a rule without a channel: one readable line, nothing added
    page.locator("#new-rule button[type=submit]").click()
    assert "channels must be a non-empty list" in page.locator(".flash.error").inner_text()
    assert page.locator("#rules-table tbody tr").count() == 2

    # -- the master's pass sends, the history shows it ------------------------------------
    final_task(store, "t-browser-err")
    sent = alerter(config, store).run_once()
    assert sent["t-browser-err"][0]["ok"] and len(receiver.bodies) == 2
    page.goto(site + "/alerts/")
    first = page.locator("#history-table tbody tr").first
    assert "t-browser-err" in first.inner_text() and "sent" in first.inner_text()
    assert SECRET not in page.content()
    shot(page, "61-alerts-rules-history")

    # -- a channel in use cannot go; once free it can ---------------------------------------
    page.locator("#channels-table tr", has_text="dead").locator("button.danger").click()
    assert page.locator(".flash.ok").inner_text() == "Channel deleted."
    assert page.locator("#channels-table tbody tr").count() == 1
    page.locator("#channels-table tr", has_text="ops").locator("button.danger").click()
    assert "send to this channel" in page.locator(".flash.error").inner_text()
    assert page.problems == []


def test_operators_get_403_and_no_alerts_link(site, page, store):  # noqa: F811
    users.create_user(store, "op", PASSWORD, "operator")
    sign_in(page, site, "op")
    page.wait_for_url(site + "/alerts/")
    assert "403" in page.title() or "only admins configure alerts" in page.content()
    page.goto(site + "/")
    assert page.locator("nav a", has_text="Alerts").count() == 0
