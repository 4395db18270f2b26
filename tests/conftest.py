"""Shared fixtures: a real MongoDB-wire server, isolated databases and brokers.

Every process a test starts runs in its own process group, and the fixture
that started it ends that group. Helpers (waits, ports, configs, process
groups) live in tests/helpers.py; they are imported here for the fixtures and
re-exported, so ``from conftest import wait_task`` keeps working.

Test tiers: markers are given per module in `MODULE_MARKS` below (one place to
see which tier a module is in); `make test-fast` runs ``-m "not slow"``.
"""

import subprocess
from pathlib import Path

import pytest

from crawlfleet.store import Store
from helpers import *  # noqa: F401,F403  (re-exported for `from conftest import ...`)
from helpers import (BIN, Processes, Tokens, free_port, make_config, stop_group,
                     wait_for_port)

# Markers of whole modules, or of single tests as "module::test" (paths
# relative to tests/). `slow`: starts whole platforms (master, nodes, web as
# processes), real crawls or stress runs; `faults`: kills and restarts
# services mid-run; `browser`: headless Chromium; `multihost`: several hosts'
# worth of processes.
MODULE_MARKS = {
    "faults/test_faults.py": ("faults", "slow"),
    "browser/test_ui_browser.py": ("browser", "slow"),
    "browser/test_accessibility.py": ("browser", "slow"),
    "test_multihost.py": ("multihost", "slow"),
    "test_compose.py": ("multihost", "slow"),
    "test_readme_e2e.py": ("slow",),
    "test_node.py": ("slow",),
    "test_leader.py": ("slow",),
    "test_schedules_e2e.py": ("slow",),
    "test_metrics.py": ("slow",),
    "test_warm.py": ("slow",),
    "test_retries.py": ("slow",),
    "test_uploads.py": ("slow",),
    "test_scrapyd.py": ("slow",),
    "test_logformat.py": ("slow",),
    "test_health.py": ("slow",),
    "test_ui_cli.py": ("slow",),
    "test_demosite.py::test_books_full_crawl": ("slow",),
    "test_demosite.py::test_books_max_pages": ("slow",),
    "test_embedded_broker.py::test_thousands_of_concurrent_publishes_and_consumes_lose_and_garble_nothing":
        ("slow",),
    "test_ui.py::test_results_browser_pages_in_insertion_order_by_at": ("slow",),
}
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        try:
            module = Path(str(item.fspath)).resolve().relative_to(TESTS).as_posix()
        except ValueError:
            continue
        test = f"{module}::{getattr(item, 'originalname', None) or item.name}"
        for name in MODULE_MARKS.get(module, ()) + MODULE_MARKS.get(test, ()):
            item.add_marker(getattr(pytest.mark, name))


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory):
    """An nx-27017 MongoDB-wire server on a free port, for the whole session."""
    folder = tmp_path_factory.mktemp("nx")
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "nx-27017"), "--data-dir", str(folder / "data"), "--host", "127.0.0.1",
         "-p", str(port), "--log-file", str(folder / "nx.log"), "--pid-file", str(folder / "nx.pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_for_port(port, proc=proc)
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        stop_group(proc)


@pytest.fixture
def config(tmp_path, mongo_server):
    """A config with its own database, home folder and embedded broker."""
    return make_config(tmp_path, mongo_server)


@pytest.fixture
def store(config):
    store = Store(config)
    store.ensure_indexes()
    yield store
    store.client.drop_database(config.mongo_db)
    store.close()


@pytest.fixture(scope="session")
def demo_site():
    """The bundled demo site, served on a free port for the whole session."""
    from spiders.demosite.server import start_in_thread

    server = start_in_thread("127.0.0.1", 0)
    yield server.url
    server.stop()


@pytest.fixture
def processes(config, demo_site, tmp_path):
    procs = Processes(config, demo_site, tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def app(config, store):
    """The Flask application on the test's store and broker."""
    from web import create_app

    app = create_app(config)
    app.config["TESTING"] = True
    yield app
    app.extensions["crawlfleet"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth(store):
    return Tokens(store)
