"""Data settings in a real headless Chromium against a real `crawlfleet up`:
an admin adds a PostgreSQL data source (its password never shown again) and
tests it, turns dedup on `url` for `books` and picks the source on the
spider's Data settings page, runs `books` twice from the Run dialog — the
second run counts 300 updated and the database holds 300 rows — and exports
the results as Excel. Screenshots go to test-artifacts/screenshots/."""

import io
import re
import uuid

import pytest
import sqlalchemy as sa

from test_ui_browser import PASSWORD, page, platform, shot  # noqa: F401  (fixtures)

openpyxl = pytest.importorskip("openpyxl")
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def run_books(page, url):
    page.goto(url + "/spiders/books")
    page.click("#run-button")
    page.locator("#run-dialog-books button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/tasks/[0-9a-f]+$"))
    page.wait_for_selector("#task-status .badge.finished", timeout=120_000)
    return page.url.rsplit("/", 1)[1]


def test_dedup_and_a_data_source_from_the_browser(platform, page):  # noqa: F811
    url, _ = platform
    engine = sa.create_engine(PG_URL)
    source = f"pg{uuid.uuid4().hex[:6]}"
    page.goto(url + "/login")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/(tasks|)$"))

    # -- a data source, added by the admin ---------------------------------------------
    page.click("text=Data sources")
    page.fill("#ds-name", source)
    page.select_option("#ds-kind", "postgresql")
    page.fill("#ds-database", "test")
    page.fill("#ds-user", "postgres")
    page.fill("#ds-password", "never-shown-again")
    page.click("#save-datasource")
    assert f"data source {source} added" in page.inner_text(".flash.ok")
    row = page.locator("#datasources-table tr", has_text=source)
    assert "set" in row.inner_text()
    assert "never-shown-again" not in page.content()
    row.locator("button", has_text="Test").click()
    assert f"data source {source}: connected" in page.inner_text(".flash.ok")
    shot(page, "data-01-datasources")

    # -- dedup on url and the source, on the spider's Data settings page -------------------
    page.goto(url + "/spiders/books")
    page.click("#data-settings")
    page.fill("#dedup_keys", "url")
    page.select_option("#dedup_mode", "overwrite")
    page.check(f"input[name=datasources][value={source}]")
    shot(page, "data-02-spider-settings")
    page.click("#save-data-settings")
    assert "books: results settings saved" in page.inner_text(".flash.ok")
    shot(page, "data-02b-saved")
    assert page.input_value("#dedup_keys") == "url", page.url
    assert page.is_checked(f"input[name=datasources][value={source}]")

    table = "results_books"
    with engine.begin() as conn:  # left by an earlier, interrupted run
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    try:
        run_books(page, url)
        second = run_books(page, url)
        page.reload()  # the page was drawn while the task ran; its counts card comes with the end
        stats = page.inner_text("#task-stats")
        assert "0 / 300 / 0" in stats, stats  # new / updated / ignored
        shot(page, "data-03-second-run")
        with engine.connect() as conn:
            assert conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar() == 300
            assert conn.execute(sa.text(f"SELECT COUNT(*) FROM {table} WHERE _tid = :t"),
                                {"t": second}).scalar() == 300

        # -- the results browser: first seen / last seen, and an Excel export ---------------
        page.goto(url + "/results/results_books")
        assert page.locator("#dedup-legend").count() == 1
        with page.expect_download() as download:
            page.click("#export-xlsx")
        book = openpyxl.load_workbook(io.BytesIO(open(download.value.path(), "rb").read()))
        rows = list(book.active.values)
        assert len(rows) == 301 and "url" in rows[0] and "_first_at" in rows[0]
        shot(page, "data-04-results")
        assert not page.problems, page.problems
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()
