"""The web UI in a real headless Chromium (Debian's, driven by Playwright),
against a real `crawlfleet up`: sign in, upload a project by drag and drop,
run a spider, watch its log stream and stats, browse and export its results,
and visit every page. A screenshot of each page is saved under
test-artifacts/screenshots/."""

import base64
import contextlib
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from helpers import ROOT, free_port, stop_group

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "browser-test-password"
XSS = 'How to Escape <script>alert("xss")</script> & Other Tricks'

playwright_api = pytest.importorskip("playwright.sync_api")


@contextlib.contextmanager
def running_platform(tmp_path, **settings):
    """`crawlfleet up` on free ports with its own home (and `settings` as
    CRAWLFLEET_* variables); yields (url, banner)."""
    home = tmp_path / "home"
    port, demo_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLFLEET_")}
    env.update(CRAWLFLEET_HOME=str(home), CRAWLFLEET_ADMIN_PASSWORD=PASSWORD,
               CRAWLFLEET_STATS_INTERVAL="0.5", CRAWLFLEET_HEARTBEAT_INTERVAL="1")
    env.update({f"CRAWLFLEET_{name.upper()}": str(value) for name, value in settings.items()})
    log_path = tmp_path / "up.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "crawlfleet", "up", "--port", str(port),
                             "--demo-port", str(demo_port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "crawlfleet is up." not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", log_path.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        stop_group(proc)
        log.close()


@pytest.fixture
def platform(tmp_path):
    with running_platform(tmp_path) as running:
        yield running


@pytest.fixture
def page():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it (scripts/chromium.sh)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                    headless=True)
        context = browser.new_context(viewport={"width": 1360, "height": 900},
                                      accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.problems = []
        # a cron being typed is invalid on purpose at one point: its preview and its
        # description answer 400
        page.on("console", lambda m: m.type == "error" and not any(
            route in (m.location or {}).get("url", "")
            for route in ("/schedules/preview", "/schedules/describe"))
            and page.problems.append(m.text))
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        try:
            yield page
        finally:
            context.close()
            browser.close()


def shot(page, name):
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def demo_project_zip(tmp_path):
    """The bundled plain_catalogue spider as a new project `uploaded_demo`."""
    folder = tmp_path / "uploaded_demo"
    shutil.copytree(ROOT / "spiders" / "plain_catalogue", folder)
    manifest = json.loads((folder / "crawlfleet.json").read_text())
    manifest["spiders"][0]["name"] = "uploaded_catalogue"
    manifest["spiders"][0]["description"] = "The demo catalogue, uploaded from the browser."
    (folder / "crawlfleet.json").write_text(json.dumps(manifest, indent=2))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, "uploaded_demo/" + path.relative_to(folder).as_posix())
    return buf.getvalue()


def drop_file(page, selector, name, data):
    """A real drop event carrying a file, as a person's drag and drop makes it."""
    page.evaluate("""([selector, name, b64]) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, {type: "application/zip"}));
        const target = document.querySelector(selector);
        for (const type of ["dragenter", "dragover", "drop"]) {
            target.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true,
                                                      dataTransfer: transfer}));
        }
    }""", [selector, name, base64.b64encode(data).decode()])


def test_a_new_user_does_everything_from_the_browser(platform, page, tmp_path):
    """Sign in with the printed password, upload, run, watch, query, export, administer."""
    url, banner = platform
    assert "web login     user admin" in banner

    # -- sign in -------------------------------------------------------------------
    page.goto(url + "/tasks")
    assert "/login" in page.url
    shot(page, "01-login")
    page.fill("#username", "admin")
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    assert page.locator(".flash.error").inner_text() == "Wrong user name or password."
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/tasks")
    page.problems.clear()  # the refused password's 401 page is logged as a failed load

    # -- dashboard and nodes -------------------------------------------------------------
    page.goto(url + "/")
    page.wait_for_selector("#daily-chart")
    page.wait_for_function("() => window.Chart && Chart.getChart('daily-chart')")
    shot(page, "02-dashboard-empty")
    page.goto(url + "/nodes")
    page.wait_for_selector("#nodes-table .badge.online")
    shot(page, "03-nodes")

    # -- upload a project by drag and drop ---------------------------------------------------
    page.goto(url + "/projects/")
    page.fill("#upload-label", "v1")
    drop_file(page, "#dropzone", "uploaded_demo.zip", demo_project_zip(tmp_path))
    page.wait_for_function("() => location.pathname === '/projects/uploaded_demo'"
                           " || document.querySelector('#upload-status.error')")
    assert page.url == url + "/projects/uploaded_demo", page.inner_text("#upload-status")
    assert "uploaded_catalogue" in page.inner_text("#versions-table")
    assert page.locator("#versions-table .badge.ok").inner_text() == "current"
    shot(page, "04-project")
    page.goto(url + "/projects/")
    shot(page, "05-projects")
    page.goto(url + "/projects/uploaded_demo")
    page.click("text=Browse files")
    page.wait_for_selector("#file-content")
    assert '"uploaded_catalogue"' in page.inner_text("#file-content")
    page.click("#file-tree >> text=main.py")
    assert "def main" in page.inner_text("#file-content") or "import" in page.inner_text(
        "#file-content")
    shot(page, "06-files")

    # -- run the uploaded spider from its Run dialog ---------------------------------------------
    page.goto(url + "/spiders")
    assert "uploaded_catalogue" in page.inner_text("table")
    shot(page, "07-spiders")
    page.goto(url + "/spiders/uploaded_catalogue")
    page.click("#run-button")
    dialog = page.locator("#run-dialog-uploaded_catalogue")
    dialog.locator("textarea[name=args]").fill("max_pages=2")
    dialog.locator("input[name=timeout]").fill("120")
    shot(page, "08-run-dialog")
    dialog.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/tasks/[0-9a-f]+$"))
    page.wait_for_selector("#task-status .badge.finished", timeout=90_000)
    page.wait_for_selector("#results-table")
    assert "max_pages=2" in page.inner_text("dl.facts")
    assert page.locator("#results-table tbody tr").count() == 40

    # -- run books: watch the log stream in and the stats change ----------------------------------
    page.goto(url + "/spiders/books")
    page.click("#run-button")
    page.locator("#run-dialog-books button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/tasks/[0-9a-f]+$"))
    task_url = page.url
    page.wait_for_function(
        "() => document.querySelectorAll('#log div').length > 5", timeout=60_000)
    seen_items = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        seen_items.add(page.inner_text("[data-stat=items]"))
        if page.locator("#task-status .badge.finished").count():
            break
        if len(seen_items) == 2:
            shot(page, "09-task-running")
        time.sleep(0.3)
    assert len(seen_items) >= 2, f"the items counter never changed: {seen_items}"
    page.wait_for_selector("#results-table", timeout=60_000)
    page.wait_for_function("() => document.getElementById('log-state').textContent === 'complete'")
    log_text = page.inner_text("#log")
    assert "Spider closed (finished)" in log_text
    page.fill("#log-search", "Spider closed")
    visible = page.locator("#log div:not(.hidden)")
    assert 1 <= visible.count() < 5
    assert page.inner_text("[data-stat=items]") == "300"
    shot(page, "10-task-finished")
    with page.expect_download() as download:
        page.click("#log-download")
    assert "Spider closed (finished)" in Path(download.value.path()).read_text()

    # -- results: the tricky title is text; filter, page and export ---------------------------------
    page.goto(url + "/results/results_books?q=title+~+escape")
    cell = page.locator("#results-table td", has_text="How to Escape")
    assert cell.first.inner_text() == XSS  # shown as text, not run as markup
    assert page.locator("#results-table script").count() == 0
    page.goto(url + "/results/results_books")
    page.fill("#filter-rows input", "price >= 50")
    page.click("#add-filter")
    page.locator("#filter-rows input").nth(1).fill("title ~ the")
    page.click("#filter-form button[type=submit]")
    page.wait_for_selector("#results-table")
    shot(page, "11-results")
    prices = [float(t) for t in page.locator("#results-table tbody tr td:nth-child(3)")
              .all_inner_texts() if t]
    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows and all(float(r["price"]) >= 50 and "the" in r["title"].lower() for r in rows)
    assert prices or rows
    page.goto(url + "/results/")
    shot(page, "12-results-index")

    # -- tasks list, filters ---------------------------------------------------------------------
    page.goto(url + "/tasks?status=finished")
    assert page.locator("#tasks-table tbody tr").count() == 2
    shot(page, "13-tasks")
    page.goto(url + "/")
    page.wait_for_function("() => window.Chart && Chart.getChart('daily-chart')")
    shot(page, "14-dashboard")

    # -- a schedule: the cron field previews its fire times as it is typed ---------------------------
    page.goto(url + "/schedules/")
    page.click("#new-schedule")
    page.select_option("#s-spider", "books")
    page.fill("#s-tz", "Asia/Tokyo")
    page.fill("#s-cron", "")
    page.type("#s-cron", "0 3 * * MON")
    page.wait_for_function("""() => [...document.querySelectorAll('#cron-preview li time')]
        .length === 5 && document.querySelector('#cron-preview li time').dateTime
        .includes('T03:00:00+09:00')""")
    page.fill("#s-cron", "61 * * * *")
    page.wait_for_selector("#cron-words.error")
    page.fill("#s-cron", "30 6 * * *")
    page.wait_for_function("() => document.querySelector('#cron-preview li time') && "
                           "document.querySelector('#cron-preview li time').dateTime"
                           ".includes('T06:30:00+09:00')")
    page.fill("#s-desc", "Every morning in Tokyo")
    shot(page, "15-schedule-new")
    page.click("#save-schedule")
    page.wait_for_selector("text=Schedule for books created.")
    page.goto(url + "/schedules/")
    assert "30 6 * * *" in page.inner_text("#schedules-table")
    shot(page, "16-schedules")
    page.goto(url + "/spiders")
    assert "UTC" in page.inner_text("table")  # books' next scheduled run

    # -- admin: users and tokens ------------------------------------------------------------------
    page.goto(url + "/admin/users")
    page.fill("#nu-name", "olivia")
    page.select_option("#nu-role", "operator")
    page.click("text=Create user")
    secret = page.inner_text("#secret")
    assert len(secret) >= 12
    shot(page, "17-users")
    page.goto(url + "/admin/tokens")
    page.fill("#nt-name", "exporter")
    page.click("text=Create token")
    assert page.inner_text("#secret").startswith("cft_")
    shot(page, "18-tokens")
    page.goto(url + "/account")
    shot(page, "19-account")
    page.goto(task_url)
    page.wait_for_selector("#results-table")

    # -- a viewer sees no buttons that change things -------------------------------------------------
    page.click("#logout")
    page.wait_for_url(re.compile(r".*/login$"))
    page.fill("#username", "olivia")
    page.fill("#password", secret)
    page.click("button[type=submit]")
    page.goto(url + "/spiders/books")
    assert page.locator("#run-button").count() == 1  # operator
    assert not page.problems, page.problems  # no CSP violation, no script error anywhere


FIXTURE_PROJECTS = ROOT / "tests" / "fixtures" / "projects"


def zip_of(folder, top):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, f"{top}/" + path.relative_to(folder).as_posix())
    return buf.getvalue()


def sign_in(page, url):
    page.goto(url + "/login")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda address: "/login" not in address)


def test_the_slugify_case_deploys_from_the_browser_through_inspecting_and_runs(tmp_path, page):
    """Issue 10's slugify case by drag and drop, with the server answering
    before the project's environment is built (deploy_wait 0): the upload
    shows "Inspecting…", then the project page with its spider, which runs on
    the node. A syntax error ends as its message with the traceback folded
    under it, on the upload and on the projects page."""
    with running_platform(tmp_path, deploy_wait=0) as (url, _):
        sign_in(page, url)
        page.goto(url + "/projects/")
        drop_file(page, "#dropzone", "syntax_error.zip",
                  zip_of(FIXTURE_PROJECTS / "syntax_error", "syntax_error"))
        page.wait_for_selector("#upload-status.error", timeout=120_000)
        assert page.inner_text("#upload-status").startswith(
            "Upload failed: `scrapy list` failed with exit code 1: SyntaxError")
        folded = page.locator("#upload-status details")
        assert folded.evaluate("d => d.open") is False
        assert "broken.py" in folded.text_content()
        assert str(tmp_path) not in page.inner_text("#upload-status")
        page.reload()
        row = page.locator("tr.inspection[data-status=failed]")
        assert "SyntaxError" in row.locator(".message").inner_text()
        assert row.locator("details").evaluate("d => d.open") is False
        shot(page, "20-inspection-failed")

        drop_file(page, "#dropzone", "needs_slugify.zip",
                  zip_of(FIXTURE_PROJECTS / "needs_slugify", "needs_slugify"))
        page.wait_for_function("() => document.getElementById('upload-status').textContent"
                               ".startsWith('Inspecting needs_slugify')")
        shot(page, "21-inspecting")
        page.wait_for_url(url + "/projects/needs_slugify", timeout=240_000)
        assert "slug_titles" in page.inner_text("#versions-table")

        page.goto(url + "/spiders/slug_titles")
        page.click("#run-button")
        page.locator("#run-dialog-slug_titles button[type=submit]").click()
        page.wait_for_url(re.compile(r".*/tasks/[0-9a-f]+$"))
        page.wait_for_selector("#task-status .badge.finished", timeout=180_000)
        page.wait_for_selector("#results-table")
        assert "hello-sandboxed-world" in page.inner_text("#results-table")
        assert not page.problems, page.problems
