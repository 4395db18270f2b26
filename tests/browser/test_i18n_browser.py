"""The language switch in a real headless Chromium (web/i18n.py): a browser that
asks for Chinese gets the login page in Chinese; an English user switches to
简体中文 from the page header, which is stored on the user, keeps the page
they were on and survives signing in again; the account page switches back.
Screenshots of a few pages in both languages go to test-artifacts/screenshots/."""

import threading

import pytest
from werkzeug.serving import make_server

from crawlfleet import users
from crawlfleet.models import new_task, now
from master.discovery import scan
from test_cli_client import QuietHandler
from test_ui_browser import (CHROMIUM, CHROMIUM_ARGS, PASSWORD, page,  # noqa: F401
                             playwright_api, shot)
from web import create_app

PAGES = {"dashboard": "/", "tasks": "/tasks", "alerts": "/alerts/", "account": "/account"}


@pytest.fixture
def site(config, store, monkeypatch):
    """The web app on a free port (werkzeug in a thread), with a spider and a task to show."""
    monkeypatch.setenv("CRAWLFLEET_ADMIN_PASSWORD", PASSWORD)
    assert not scan(store, config)["errors"]
    task = new_task(store.spiders.find_one({"_id": "books"}), target="any")
    task.update(status="finished", started_at=now() - 60, finished_at=now() - 5,
                stats={"items": 3, "pages": 2})
    store.tasks.insert_one(task)
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
    app.extensions["crawlfleet"].close()


def sign_in(page, url, name):
    page.goto(url + "/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def shots(page, url, language):
    for name, path in PAGES.items():
        page.goto(url + path)
        shot(page, f"i18n-{name}-{language}")


def test_a_browser_asking_for_chinese_gets_the_login_page_in_chinese(site):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(locale="zh-CN")
            chinese = context.new_page()
            chinese.goto(site + "/login")
            assert chinese.locator("h1").inner_text() == "登录"
            assert chinese.locator("html").get_attribute("lang") == "zh-CN"
            shot(chinese, "i18n-login-zh_CN")
        finally:
            browser.close()


def test_a_user_switches_language_from_the_header_and_back(site, page, store):  # noqa: F811
    page.goto(site + "/login")
    assert page.locator("h1").inner_text() == "Sign in"  # Chromium's locale here is en-US
    shot(page, "i18n-login-en")
    sign_in(page, site, "admin")
    assert page.locator("h1").inner_text() == "Dashboard"
    shots(page, site, "en")

    page.goto(site + "/tasks")
    page.select_option("#lang-select", "zh_CN")  # auto-submits
    page.wait_for_url(site + "/tasks")
    assert page.locator(".flash.ok").inner_text() == "语言已切换。"
    assert page.locator("h1").inner_text() == "任务"
    assert page.locator("nav a.active").inner_text() == "任务"
    assert page.locator("#tasks-table .badge").first.inner_text() == "已完成"
    # what the scripts write is translated too (body's data-i18n)
    assert page.locator("#bulk-count").inner_text() == "选择任务，以便批量操作。"
    page.locator(".task-pick").first.check()
    assert page.locator("#bulk-count").inner_text() == "已选择 1 个"
    page.locator(".task-pick").first.uncheck()
    assert users.get_user(store, "admin")["locale"] == "zh_CN"
    shots(page, site, "zh_CN")

    page.click("#logout")  # signed out, the browser's language (en-US) decides again
    page.wait_for_url(site + "/login")
    assert page.locator(".flash.info").inner_text() == "已退出登录。"  # said while signed in
    assert page.locator("h1").inner_text() == "Sign in"
    sign_in(page, site, "admin")  # the choice is the user's, not the session's
    assert page.locator("h1").inner_text() == "仪表盘"

    page.goto(site + "/account")
    page.select_option("#locale", "en")
    page.click("#save-language")
    page.wait_for_url(site + "/account")
    assert page.locator(".flash.ok").inner_text() == "Language changed."
    assert page.locator("h2").last.inner_text() == "Language"
    assert page.locator("#locale").input_value() == "en"
    assert not page.problems, page.problems
