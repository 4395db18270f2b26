"""Per-project and per-spider environment variables and secrets: encrypted at
rest with a key that is not in the store, masked everywhere after they are
set, given decrypted only to that project's spider processes, masked in
their logs, never in a task document."""

import os
import stat

import pytest
from click.testing import CliRunner

from conftest import task_log, wait_task
from crawlfleet.cli import main
from deploy_helpers import app, auth, client, live, sandbox_tmp  # noqa: F401
from test_node import emb, run  # noqa: F401
from test_ui import spiders  # noqa: F401

SECRET = "s3cr3t-" + os.urandom(6).hex()


def test_variables_and_secrets_through_the_api(client, auth, store, config, spiders):
    base = "/api/v1/projects/books/env"
    r = client.put(f"{base}/SHOP_REGION", json={"value": "eu"}, headers=auth.operator)
    assert r.status_code == 200 and r.get_json()["value"] == "eu"
    r = client.put(f"{base}/SHOP_KEY", json={"value": SECRET, "secret": True, "spider": "books"},
                   headers=auth.operator)
    assert r.status_code == 200 and SECRET not in r.get_data(as_text=True)
    listed = client.get(base, headers=auth.viewer)
    assert SECRET not in listed.get_data(as_text=True)
    by_name = {v["name"]: v for v in listed.get_json()["variables"]}
    assert by_name["SHOP_REGION"]["value"] == "eu" and by_name["SHOP_KEY"]["secret"]
    assert by_name["SHOP_KEY"]["spider"] == "books"
    # at rest: encrypted with a key that is not in the store
    raw = store.db.spider_env.find_one({"name": "SHOP_KEY"})
    assert SECRET not in repr(raw) and "value" not in raw
    key_file = config.home_path / "secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert not any(key in repr(doc) for name in ("spider_env", "projects", "spiders", "tasks")
                   for doc in store.db[name].find())
    # refused cleanly
    assert client.put(f"{base}/X", json={"value": "1"}, headers=auth.viewer).status_code == 403
    for name, body in (("CRAWLFLEET_TOKEN", {"value": "x"}), ("1BAD", {"value": "x"}),
                       ("OK", {"value": 1}), ("OK", {}), ("OK", {"value": "x", "secret": "y"}),
                       ("OK", {"value": "x", "other": 1})):
        assert client.put(f"{base}/{name}", json=body, headers=auth.operator).status_code == 400
    assert client.put("/api/v1/projects/nope/env/X", json={"value": "1"},
                      headers=auth.operator).status_code == 404
    assert client.put(f"{base}/X", json={"value": "1", "spider": "nope"},
                      headers=auth.operator).status_code == 404
    assert client.delete(f"{base}/SHOP_REGION", headers=auth.operator).status_code == 200
    assert client.delete(f"{base}/SHOP_REGION", headers=auth.operator).status_code == 404


def test_the_cli_sets_lists_and_removes(live, auth, config, store, spiders, monkeypatch):
    for name, value in config.as_environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CRAWLFLEET_CONFIG", raising=False)
    monkeypatch.setenv("CRAWLFLEET_API_URL", live.url)
    monkeypatch.setenv("CRAWLFLEET_TOKEN", auth.operator_token)
    cli = lambda *a: CliRunner().invoke(main, list(a), catch_exceptions=False)  # noqa: E731
    result = cli("env", "set", "books", "REGION", "eu")
    assert result.exit_code == 0 and "REGION = eu" in result.output
    result = cli("env", "set", "books", "--spider", "books", "API_KEY", SECRET, "--secret")
    assert result.exit_code == 0 and SECRET not in result.output
    result = cli("env", "ls", "books")
    assert "REGION" in result.output and "API_KEY" in result.output
    assert SECRET not in result.output
    assert cli("env", "rm", "books", "REGION").exit_code == 0
    result = cli("env", "rm", "books", "REGION")
    assert result.exit_code != 0 and "no variable" in result.output


def test_a_spider_gets_its_variables_and_its_secrets_stay_out_of_logs(emb):
    from crawlfleet import spiderenv

    config, store, broker, procs = emb
    project = store.spiders.find_one({"_id": "echo_args"})["project"]
    spiderenv.set_variable(store, config, project, "REGION", "eu")
    spiderenv.set_variable(store, config, project, "REGION", "us", spider="echo_args")
    spiderenv.set_variable(store, config, project, "API_KEY", SECRET, secret=True)
    spiderenv.set_variable(store, config, project, "ECHO_PRINT", "API_KEY")
    procs.node(store)
    task_id = run(config, store, broker, "echo_args")
    task = wait_task(store, task_id)
    assert task["status"] == "finished", task_log(store, task_id)
    other = store.results("results_echo_args").find_one({"_tid": task_id})["other_env"]
    assert other["REGION"] == "us" and other["API_KEY"] == SECRET
    log = "\n".join(task_log(store, task_id))
    assert "saved ••••••" in log and SECRET not in log
    assert SECRET not in repr(store.tasks.find_one({"_id": task_id}))


@pytest.mark.parametrize("bad_key", ["not-a-key"])
def test_a_wrong_key_is_a_clear_configuration_error(config, bad_key):
    from crawlfleet import secrets
    from crawlfleet.errors import ConfigError

    with pytest.raises(ConfigError, match="not a Fernet key"):
        secrets.encrypt(config.replace(secrets_key=bad_key), "x")


def test_the_project_and_spider_pages_show_them_masked(app, store, spiders):
    """An operator sets a secret on the project page; every page shows it
    masked; a viewer sees no form."""
    from test_ui import Browser

    operator = Browser(app, store, "operator")
    operator.post("/projects/books/env", data={"name": "API_KEY", "value": SECRET, "secret": "1"})
    operator.post("/projects/books/env", data={"name": "REGION", "value": "eu",
                                               "spider": "books", "back_spider": "books"})
    for path in ("/projects/books", "/spiders/books"):
        page = operator.get(path).get_data(as_text=True)
        assert "API_KEY" in page and "••••••" in page and SECRET not in page, path
    assert "REGION" in operator.get("/spiders/books").get_data(as_text=True)
    viewer = Browser(app, store, "viewer")
    page = viewer.get("/projects/books").get_data(as_text=True)
    assert "API_KEY" in page and 'name="value"' not in page
    assert viewer.post("/projects/books/env", data={"name": "X", "value": "1"}).status_code == 403
    operator.post("/projects/books/env/API_KEY/delete", data={"spider": ""})
    assert store.db.spider_env.find_one({"name": "API_KEY"}) is None
