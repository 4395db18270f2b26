"""The crawl client verbs (crawlfleet/cli/crawls.py, `run --workers`) against
the real app served in a thread, on real Redis (the refusal without Redis is
tested at the API, tests/test_crawls_api.py)."""

import pytest

from conftest import make_config, purge_broker
from crawlfleet.config import Config
from master import crawls
from test_cli_client import api, cli  # noqa: F401  the served API fixture


@pytest.fixture
def config(tmp_path, mongo_server):
    """The API's config: a Redis broker, so the frontier is the broker's Redis."""
    config = make_config(tmp_path, mongo_server, broker="redis")
    yield config
    purge_broker(config)


def test_run_workers_then_show_scale_cancel_and_resume(api, store, config):  # noqa: F811
    """`run --workers 2` prints a crawl id; `crawl show` lists its 2 workers;
    `crawl scale` makes 3; `crawl cancel` stops it; `resume` of a crawl that
    was not persistent is one error line."""
    result = cli("run", "books", "--workers", "2", "-s", "CONCURRENT_REQUESTS=4")
    assert result.exit_code == 0, result.output
    crawl_id = result.output.strip()
    assert store.crawls.find_one({"_id": crawl_id})["workers"] == 2
    shown = cli("crawl", "show", crawl_id)
    assert shown.exit_code == 0 and shown.output.count("pending") >= 2, shown.output
    assert cli("crawl", "scale", crawl_id, "3").output.strip() == f"crawl {crawl_id}: 3 worker(s)"
    assert store.tasks.count_documents({"crawl_id": crawl_id}) == 3
    listed = cli("crawl", "list")
    assert crawl_id in listed.output and "books" in listed.output
    assert cli("crawl", "cancel", crawl_id).exit_code == 0
    crawls.supervise(store, None, Config.from_dict(config.as_dict()))
    resumed = cli("resume", crawl_id)
    assert resumed.exit_code == 1
    assert resumed.output.startswith("error: ") and "frontier" in resumed.output
    assert len(resumed.output.strip().splitlines()) == 1
    bad = cli("crawl", "scale", crawl_id, "0")
    assert bad.exit_code == 2  # click's range check, before any request

