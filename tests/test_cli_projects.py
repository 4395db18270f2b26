"""The project verbs of the CLI (crawlfleet/cli/projects.py) against the API
served over real HTTP: deploy a folder, a zip and a git repository, list,
roll back, pull, delete."""

import json
import zipfile

import pytest
from click.testing import CliRunner

from crawlfleet.cli import main
from deploy_helpers import (BUNDLED, PROJECTS, app, auth, client, copy_project, live,  # noqa: F401
                            sandbox_tmp, zip_folder)
from test_gitimport import Repo


@pytest.fixture
def config(tmp_path, mongo_server):
    from helpers import make_config

    return make_config(tmp_path, mongo_server, git_local_roots=str(tmp_path / "repos"))




@pytest.fixture
def cli_env(live, auth, config, monkeypatch):
    for name, value in config.as_environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CRAWLFLEET_CONFIG", raising=False)
    monkeypatch.setenv("CRAWLFLEET_API_URL", live.url)
    monkeypatch.setenv("CRAWLFLEET_TOKEN", auth.operator_token)


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def shop(tmp_path):
    """A project folder with what must never be deployed next to it."""
    folder = copy_project(BUNDLED / "plain_catalogue", tmp_path / "src" / "shop")
    for junk in (".git/config", "__pycache__/main.cpython-311.pyc", ".venv/bin/python"):
        (folder / junk).parent.mkdir(parents=True, exist_ok=True)
        (folder / junk).write_text("junk")
    return folder


def test_deploy_a_folder_zips_it_without_junk(cli_env, store, shop):
    result = cli("deploy", shop, "--label", "first")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("shop: version ")
    assert "(first) — new version; spiders: plain_catalogue" in result.output
    version = store.versions.find_one({"project": "shop"})
    assert version["files"] == 2 and version["label"] == "first"  # crawlfleet.json, main.py
    again = cli("deploy", shop)
    assert "already known, now current" in again.output


def test_deploy_a_zip_with_a_name(cli_env, store, shop, tmp_path):
    path = tmp_path / "upload.zip"
    path.write_bytes(zip_folder(shop, top="whatever"))
    result = cli("deploy", path, "--project", "named", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["project"] == "named" and body["spiders"] == ["plain_catalogue"]


def test_deploy_errors_are_one_line(cli_env, store, tmp_path):
    empty = tmp_path / "empty"
    (empty / "notes").mkdir(parents=True)
    (empty / "notes" / "a.txt").write_text("hello")
    result = CliRunner().invoke(main, ["deploy", str(empty)])
    assert result.exit_code == 1
    assert "error: no scrapy.cfg or crawlfleet.json" in result.output
    text = tmp_path / "file.txt"
    text.write_text("not a zip")
    result = CliRunner().invoke(main, ["deploy", str(text)])
    assert result.exit_code == 1 and "neither a folder nor a zip" in result.output
    result = CliRunner().invoke(main, ["deploy"])
    assert result.exit_code == 2 and "give a project folder, a zip, or --git URL" in result.output


def test_deploy_of_a_spider_importing_its_requirement_follows_its_inspection(
        cli_env, app, config, store, tmp_path):
    """The slugify case (issue 10) through `crawlfleet deploy`, with the server
    answering before its environment is built (deploy_wait 0): the CLI says it
    is inspecting, follows it and prints the usual line; a syntax error ends
    in one readable error line and registers nothing."""
    app.extensions["crawlfleet"].config = config.replace(deploy_wait=0.0)
    folder = copy_project(PROJECTS / "needs_slugify", tmp_path / "src" / "needs_slugify")
    result = cli("deploy", folder, "--label", "v1")
    assert result.exit_code == 0, result.output
    assert "needs_slugify: uploaded; inspecting…" in result.stderr
    assert "(v1) — new version; spiders: slug_titles" in result.stdout
    assert store.spiders.find_one({"_id": "slug_titles"})["project"] == "needs_slugify"
    broken = copy_project(PROJECTS / "syntax_error", tmp_path / "src" / "syntax_error")
    result = CliRunner().invoke(main, ["deploy", str(broken)])
    assert result.exit_code == 1, result.output
    assert "error: `scrapy list` failed with exit code 1: SyntaxError" in result.output
    assert str(config.home_path) not in result.output
    assert store.projects.find_one({"_id": "syntax_error"}) is None


def test_projects_versions_rollback_and_rmversion(cli_env, store, shop):
    cli("deploy", shop, "--label", "v1")
    (shop / "README.txt").write_text("second version\n")
    cli("deploy", shop, "--label", "v2")
    table = cli("projects").output.splitlines()
    assert table[0].split() == ["NAME", "CURRENT", "LABEL", "VERSIONS", "SOURCE", "SPIDERS"]
    assert table[1].split()[2:] == ["v2", "2", "upload", "plain_catalogue"]
    listed = json.loads(cli("versions", "shop", "--json").output)
    v2, v1 = [v["id"] for v in listed["versions"]]
    lines = cli("versions", "shop").output.splitlines()
    assert lines[1].startswith("*") and v2 in lines[1] and v1 in lines[2]
    rolled = cli("rollback", "shop", "v1")
    assert rolled.exit_code == 0 and f"version {v1} (v1) is current" in rolled.output
    assert store.spiders.find_one({"_id": "plain_catalogue"})["version"] == v1
    refused = CliRunner().invoke(main, ["rmversion", "shop", v1])
    assert refused.exit_code == 1 and "is the current version" in refused.output
    removed = cli("rmversion", "shop", "v2")
    assert removed.exit_code == 0 and f"version {v2} (v2) deleted" in removed.output
    gone = cli("rmproject", "shop", "--yes")
    assert gone.exit_code == 0 and store.projects.count_documents({}) == 0


def test_deploy_from_git_and_pull(cli_env, store, tmp_path):
    repo = Repo(tmp_path)
    result = cli("deploy", "--git", repo.bare, "--ref", "main", "--project", "shop")
    assert result.exit_code == 0, result.output
    assert "shop: version" in result.output and "(main@" in result.output
    assert "unchanged" in cli("pull", "shop").output
    repo.push_change()
    pulled = cli("pull", "shop")
    assert "new version" in pulled.output
    assert store.versions.count_documents({"project": "shop"}) == 2
    bad = CliRunner().invoke(main, ["deploy", "--git", "--upload-pack=touch x", "--project", "x"])
    assert bad.exit_code == 1 and "refused git URL" in bad.output


def test_zip_project_uses_the_packaging_rules(shop, tmp_path):
    from crawlfleet.cli.projects import zip_project

    path = zip_project(shop, tmp_path / "out.zip")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["shop/crawlfleet.json", "shop/main.py"]


def test_new_from_a_template_then_compare_two_versions(cli_env, store, client, auth):
    made = cli("new", "tpl_shop", "--template", "script", "--spider", "tpl_books")
    assert made.exit_code == 0, made.output
    assert "tpl_books" in made.output
    first = store.projects.find_one({"_id": "tpl_shop"})["current_version"]
    saved = client.post(f"/api/v1/projects/tpl_shop/versions/{first}/save",
                        headers=auth.operator,
                        json={"ops": [{"op": "write", "path": "notes.txt", "content": "hi\n"}],
                              "label": "v2"}).get_json()
    result = cli("compare", "tpl_shop", first, "v2")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("A notes.txt\n") and "+hi" in result.output
    assert saved["version"] != first
    assert cli("compare", "tpl_shop", first, "v2", "--files").output == "A notes.txt\n"


def test_credentials_come_from_an_environment_variable(cli_env, monkeypatch):
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    result = cli("deploy", "--git", "https://example.org/r.git", "--credentials-env",
                 "NO_SUCH_TOKEN")
    assert result.exit_code == 2 and "NO_SUCH_TOKEN is empty or unset" in result.output
