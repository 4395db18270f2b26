"""Listing a new version's spiders (crawlfleet/inspection.py): in the
project's own environment, in the spider sandbox, never in the web process;
a failure reads as what went wrong, with no path of the server."""

import pytest

from deploy_helpers import (PROJECTS, app, assert_nothing_deployed, auth,  # noqa: F401
                            client, copy_project, sandbox_tmp, upload, zip_folder)


def refused(client, auth, data):
    response = upload(client, auth.operator, data)
    assert 400 <= response.status_code < 500, response.get_json()
    return response.get_json()["error"]


def test_a_spider_importing_its_own_requirement_deploys_first_time(client, auth, store, config,
                                                                  sandbox_tmp):
    """`from slugify import slugify` at module top, python-slugify in
    requirements.txt: the environment is built first, then the spiders listed."""
    response = upload(client, auth.operator,
                      zip_folder(PROJECTS / "needs_slugify", top="needs_slugify"))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["spiders"] == ["slug_titles"]
    assert store.spiders.find_one({"_id": "slug_titles"})["project"] == "needs_slugify"
    # the environment the nodes of this machine will reuse, filled by pip in the
    # sandbox (as the sandbox user, when there is one)
    ready = list((config.home_path / "venvs").glob("*/.crawlfleet-ready"))
    assert ready
    from crawlfleet.sandbox import Sandbox

    box = Sandbox(config)
    if box.mode == "user":
        assert ready[0].parent.stat().st_uid == box.state.uid


def test_a_syntax_error_is_refused_readably_and_registers_nothing(client, auth, store, config,
                                                                  sandbox_tmp):
    """The error line first, then the traceback; no server path in it."""
    error = refused(client, auth, zip_folder(PROJECTS / "syntax_error", top="syntax_error"))
    assert error.startswith("`scrapy list` failed with exit code 1: SyntaxError"), error
    assert "broken.py" in error
    assert str(config.home_path) not in error and "/tmp/" not in error
    assert_nothing_deployed(store, config, sandbox_tmp)


def test_a_broken_requirement_is_refused_with_pips_words(client, auth, store, config,
                                                        sandbox_tmp):
    error = refused(client, auth, zip_folder(PROJECTS / "bad_requirement",
                                             top="bad_requirement"))
    assert "requirements could not be installed" in error
    assert "crawlfleet-no-such-package-zz9" in error
    assert str(config.home_path) not in error
    assert_nothing_deployed(store, config, sandbox_tmp)


def test_inspection_runs_sandboxed(client, auth, store, config, tmp_path, sandbox_tmp):
    """Code imported while listing cannot read the platform's HOME or any
    process's environment (the web process's included)."""
    from crawlfleet.sandbox import Sandbox

    if Sandbox(config).mode == "none":
        pytest.skip("no sandbox can run on this machine")
    (config.home_path / "admin-token").write_text("cft_probe\n")
    project = copy_project(PROJECTS / "inspect_probe", tmp_path / "inspect_probe")
    (project / "home.txt").write_text(str(config.home_path))
    response = upload(client, auth.operator, zip_folder(project, top="inspect_probe"))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["spiders"] == ["found_nothing"]
