"""The project editor and project management in a real headless Chromium,
against a real `crawlfleet up`: make a project with the wizard and run it on
a node, edit a file in CodeMirror and save it as a new version (its diff
shown), the unsaved-change guards, compare two versions, deploy from git and
pull it again ("unchanged"), and delete a project from its dialog.
Screenshots go to test-artifacts/screenshots/editor-*.png."""

import shutil
import subprocess

import pytest

from helpers import ROOT
from test_ui_browser import PASSWORD, page, running_platform, shot  # noqa: F401  the page fixture


@pytest.fixture
def repo(tmp_path):
    """A local git repository holding the bundled plain_catalogue, renamed."""
    folder = tmp_path / "repos" / "gitshop"
    shutil.copytree(ROOT / "spiders" / "plain_catalogue", folder,
                    ignore=shutil.ignore_patterns("__pycache__"))
    manifest = (folder / "crawlfleet.json").read_text()
    (folder / "crawlfleet.json").write_text(manifest.replace('"plain_catalogue"', '"git_catalogue"'))
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": str(tmp_path)}
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "first"]):
        subprocess.run(["git", *argv], cwd=folder, env=env, check=True, timeout=60)
    return folder


@pytest.fixture
def platform(tmp_path, repo):
    # deploy_wait 0: a save answers 202 at once, so the page follows the
    # inspection (the answer in one go is covered by tests/test_editing.py)
    with running_platform(tmp_path, git_local_roots=str(repo.parent), deploy_wait=0) as running:
        yield running


def sign_in(page, url):
    page.goto(url + "/projects/")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/projects/")


def test_wizard_edit_save_compare_git_and_delete(platform, page, repo):  # noqa: F811
    url, _ = platform
    sign_in(page, url)

    # -- the wizard: a plain-script project, run on a node against the demo site ------------
    page.check("#template-script")
    page.fill("#wizard-project", "wizard_shop")
    page.fill("#wizard-spider", "wizard_books")
    shot(page, "editor-01-projects-wizard")
    page.click("#wizard-create")
    page.wait_for_url(url + "/projects/wizard_shop")
    assert "wizard_books" in page.inner_text("#versions-table")
    page.goto(url + "/spiders/wizard_books")
    page.click("#run-button")
    dialog = page.locator("#run-dialog-wizard_books")
    dialog.locator("textarea[name=args]").fill("max_pages=2")
    dialog.locator("button[type=submit]").click()
    page.wait_for_url("**/tasks/*")
    page.wait_for_selector("#task-status .badge.finished", timeout=120_000)
    page.wait_for_selector("#results-table")
    assert page.locator("#results-table tbody tr").count() == 40

    # -- the editor: change a file, add one, save as a new version -----------------------------
    page.goto(url + "/projects/wizard_shop")
    page.click("text=Browse files")
    page.click("#file-tree >> text=main.py")
    page.click("#edit-version")  # the viewer's way into the editor, on the same file
    page.wait_for_selector("#editor[data-ready='1'] #editor-tree a[data-path='main.py'].active")
    page.goto(url + "/projects/wizard_shop")
    page.click("#edit-current")
    page.wait_for_selector("#editor[data-ready='1'] #editor-tree a[data-path='main.py']")
    page.click("#editor-tree a[data-path='main.py']")
    page.wait_for_function("() => document.querySelector('#editor-host .cm-content')"
                           ".textContent.includes('def main')")
    assert page.locator("#editor-host .cm-content .tok-keyword, #editor-host .cm-content "
                        "span[class*='ͼ']").count() > 0  # Python is highlighted
    assert page.inner_text("#editor-lang") == "py"
    assert page.locator("#editor-dirty").is_hidden()
    page.click("#editor-host .cm-content")
    page.keyboard.press("Control+End")
    page.keyboard.type("\n# edited in the browser\n")
    page.wait_for_selector("#editor-dirty", state="visible")
    page.click("#editor-new-file")
    page.fill("#editor-prompt-input", "notes/readme.txt")
    page.click("#editor-prompt-ok")
    page.wait_for_selector("#editor-tree a[data-path='notes/readme.txt']")
    page.click("#editor-host .cm-content")
    page.keyboard.type("What this project is for.")
    # rename the new folder, then upload a binary file into it
    page.click("#editor-tree a[data-path='notes']")
    page.click("#editor-rename")
    page.fill("#editor-prompt-input", "docs")
    page.click("#editor-prompt-ok")
    page.wait_for_selector("#editor-tree a[data-path='docs/readme.txt']")
    page.set_input_files("#editor-upload", files=[{
        "name": "logo.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\n\x00\x01"}])
    page.wait_for_selector("#editor-tree a[data-path='docs/logo.png']")
    assert "binary file" in page.inner_text("#editor-note")
    shot(page, "editor-02-editing")

    # the in-page guard: a link away asks first, and Stay keeps the edits
    page.click("nav >> text=Projects")
    page.wait_for_selector("#editor-leave[open]")
    shot(page, "editor-03-unsaved-guard")
    page.click("#editor-stay")
    assert page.url.endswith("/edit") and page.locator("#editor-dirty").is_visible()

    page.keyboard.press("Control+s")  # opens the save dialog
    page.wait_for_selector("#editor-save-dialog[open]")
    page.fill("#editor-label", "v2-browser")
    page.fill("#editor-message", "a note and a comment")
    page.click("#editor-save")
    page.wait_for_selector("#save-result:not([hidden])")
    files = page.inner_text("#save-result-files")
    assert "main.py" in files and "changed" in files
    assert "docs/readme.txt" in files and "docs/logo.png" in files and "added" in files
    assert "+# edited in the browser" in page.inner_text("#save-result-diff").replace("    ", "")
    assert "wizard_books" in page.inner_text("#save-result-summary")
    assert page.locator("#editor-dirty").is_hidden()
    assert page.inner_text("#editor-base-label") == "v2-browser"
    shot(page, "editor-04-saved-with-diff")

    # the browser's own guard (beforeunload) on an unsaved edit
    page.click("#editor-host .cm-content")
    page.keyboard.type("x")
    page.wait_for_selector("#editor-dirty", state="visible")
    asked = []
    page.once("dialog", lambda d: (asked.append(d.type), d.accept()))
    page.reload()
    page.wait_for_selector("#editor[data-ready='1']")
    assert asked == ["beforeunload"]

    # -- the new version on the project page, and the comparison ----------------------------
    page.goto(url + "/projects/wizard_shop")
    table = page.inner_text("#versions-table")
    assert "v2-browser" in table and "a note and a comment" in table
    page.click("#compare-versions")
    page.wait_for_selector("#compare-files")
    assert "docs/readme.txt" in page.inner_text("#compare-files")
    assert "2 added · 0 removed · 1 changed" in page.inner_text("#compare-counts")
    assert "# edited in the browser" in page.inner_text("#compare-diff")
    shot(page, "editor-05-compare")

    # -- deploy from git, then pull: unchanged ------------------------------------------------
    page.goto(url + "/projects/")
    page.fill("#git-url", str(repo))
    page.fill("#git-ref", "main")
    page.click("#git-deploy-submit")
    page.wait_for_url(url + "/projects/gitshop")
    assert "git_catalogue" in page.inner_text("#versions-table")
    page.click("#pull-project")
    page.wait_for_selector(".flash.ok")
    assert "unchanged" in page.inner_text(".flash.ok")
    shot(page, "editor-06-git-pulled")

    # -- delete a project: the dialog says what goes and what stays -----------------------------
    page.goto(url + "/projects/wizard_shop")
    page.click("#delete-project")
    page.wait_for_selector("#delete-project-dialog[open]")
    removes = page.inner_text("#delete-project-removes")
    assert "2 version(s)" in removes and "wizard_books" in removes
    assert "results" in page.inner_text("#delete-project-keeps")
    shot(page, "editor-07-delete-dialog")
    page.click("#delete-project-confirm")
    page.wait_for_url(url + "/projects/")
    assert "Project wizard_shop deleted" in page.inner_text(".flash.ok")
    assert "wizard_shop" not in page.inner_text("#projects-table")
    assert page.problems == []
