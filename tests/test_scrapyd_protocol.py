"""Scrapyd's conventions as pure functions (web/scrapyd/protocol.py, logfile.py,
jobids.py): which project names are a directory traversal, how a platform line
becomes a Scrapy log line, which client job ids are refused."""

import time

import pytest

from crawlfleet.errors import BadRequest
from web.scrapyd import jobids, logfile
from web.scrapyd.protocol import ScrapydError, check_traversal


@pytest.mark.parametrize("name", ["../p", "a/b", "..", "/etc", "a\\b", "./../x"])
def test_names_that_leave_the_eggs_folder_are_a_traversal(name):
    """As twisted's FilePath.child refuses them in Scrapyd's egg storage."""
    with pytest.raises(ScrapydError, match=r"^DirectoryTraversalError: "):
        check_traversal(name)


@pytest.mark.parametrize("name", ["books", "my.project", "a-b_c", ".", "", "a/.."])
def test_names_inside_the_eggs_folder_pass(name):
    assert check_traversal(name) == name


def test_platform_lines_take_scrapys_format_and_spider_lines_stay():
    at = time.mktime((2024, 6, 1, 12, 0, 5, 0, 0, -1))
    assert logfile.scrapy_line("[crawlfleet] task t1 on node n1", at) == \
        "2024-06-01 12:00:05 [crawlfleet] INFO: task t1 on node n1"
    assert logfile.scrapy_line("[crawlfleet] error: exit code 1", at).endswith(
        "[crawlfleet] ERROR: error: exit code 1")
    spider = "2024-06-01 12:00:06 [scrapy.core.engine] INFO: Spider opened"
    assert logfile.scrapy_line(spider, at) == spider
    assert logfile.scrapy_line("Traceback (most recent call last):", at) == \
        "Traceback (most recent call last):"


@pytest.mark.parametrize("jobid", ["", "a/b", "a\\b", "..", ".", "x" * 201, "tab\there"])
def test_job_ids_that_cannot_be_a_file_name_are_refused(jobid):
    with pytest.raises(BadRequest, match="jobid must be"):
        jobids.check_jobid(jobid)


def test_generated_job_ids_look_like_scrapyds():
    first, second = jobids.new_jobid(), jobids.new_jobid()
    assert len(first) == 32 and first != second and int(first, 16)
