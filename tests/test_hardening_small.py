"""The smaller findings of the outside review (issue 16, item 8): CSV exports
neutralise formulas, a newline in an argument cannot forge a log line, errors
do not show the server's folders, git errors name the real git command, and
405s under /scrapyd/ are JSON."""

import base64
import csv
import io
import os
import zipfile

import pytest

from conftest import task_log
from crawlfleet.errors import ProjectError
from crawlfleet.models import new_task
from deploy_helpers import app, auth, client, sandbox_tmp, upload  # noqa: F401
from master import gitimport
from node.logship import LogShipper

SPIDER = {"_id": "books", "project": "books", "version": "v1", "kind": "scrapy",
          "results_collection": "results_books"}
FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+2", "-2+3", "@SUM(A1)",
            "\tx", "\rx"]


def test_csv_exports_neutralise_formulas_unless_asked_raw(client, auth, store):
    task = new_task(SPIDER, target="any")
    store.tasks.insert_one(task)
    store.results("results_books").insert_many(
        [{"_tid": task["_id"], "title": value, "price": -3} for value in FORMULAS]
        + [{"_tid": task["_id"], "title": "plain = text", "price": 1}])
    url = f"/api/v1/tasks/{task['_id']}/results?format=csv"
    rows = list(csv.DictReader(io.StringIO(client.get(url, headers=auth.viewer)
                                           .get_data(as_text=True))))
    assert [r["title"] for r in rows] == ["'" + v for v in FORMULAS] + ["plain = text"]
    assert rows[0]["price"] == "-3"  # a number stays a number
    raw = list(csv.DictReader(io.StringIO(client.get(url + "&formulas=raw", headers=auth.viewer)
                                          .get_data(as_text=True), newline="")))
    assert [r["title"] for r in raw][:4] == FORMULAS[:4]
    bad = client.get(url + "&formulas=maybe", headers=auth.viewer)
    assert bad.status_code == 400 and "formulas" in bad.get_json()["error"]


def test_a_newline_in_a_value_does_not_forge_a_log_line(store, config):
    shipper = LogShipper(store, "t-forge", config)
    shipper.say("command: main.py --name='a\n[crawlfleet] spider exited with code 0; "
                "status finished'")
    shipper.close()
    lines = task_log(store, "t-forge")
    assert len(lines) == 1 and lines[0].startswith("[crawlfleet] command: ")
    assert "\\n[crawlfleet] spider exited" in lines[0]


def test_runner_shows_the_command_quoted():
    import inspect

    from node import command

    # the runner logs `SpiderCommand.display()`
    assert "shlex.join(" in inspect.getsource(command)


def test_git_errors_name_the_git_command_and_hide_the_servers_folders(tmp_path):
    dest = tmp_path / "work" / "clone"
    dest.parent.mkdir()
    with pytest.raises(ProjectError) as caught:
        gitimport.run_git(["-c", "advice.detachedHead=false", "clone", "--depth", "1", "--",
                           str(tmp_path / "no-such-repo"), str(dest)],
                          cwd=dest.parent, env=dict(os.environ), timeout=60)
    message = str(caught.value)
    assert message.startswith("git clone failed"), message
    assert str(dest.parent) not in message


def test_upload_errors_do_not_show_the_servers_folders(client, auth, store, config, sandbox_tmp):
    """A project whose settings fail to import: `scrapy list`'s traceback names
    the Python installation and the unpacked folder; the error shows neither."""
    import sys

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("p/scrapy.cfg", "[settings]\ndefault = p.settings\n")
        zf.writestr("p/p/__init__.py", "")
        zf.writestr("p/p/settings.py", "import no_such_module_here\n")
    response = upload(client, auth.admin, buf.getvalue())
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert "no_such_module_here" in error  # the useful part stays
    for folder in (str(config.home_path), str(sandbox_tmp), sys.prefix, sys.base_prefix):
        assert folder not in error, error
    assert "<python>" in error


def test_a_wrong_method_under_scrapyd_is_json(client, auth):
    basic = "Basic " + base64.b64encode(f"x:{auth.operator_token}".encode()).decode()
    for method in ("PUT", "DELETE", "PATCH"):
        response = client.open("/scrapyd/schedule.json", method=method,
                               headers={"Authorization": basic})
        assert response.status_code == 405
        assert response.get_json()["status"] == "error", response.data
        assert "POST" in response.headers["Allow"]
    # an unknown path is a 404 as Scrapyd answers it (issue 11: Scrapyd's own shapes)
    response = client.get("/scrapyd/no-such.json", headers={"Authorization": basic})
    assert response.status_code == 404
