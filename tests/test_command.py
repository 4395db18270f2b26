"""What a spider process runs, as data (node/command.py): the fresh command line
and the warm path's launcher arguments come from the same fields."""

import shlex

import pytest

from crawlfleet.models import SpiderKind
from node.command import SCRAPY_ENTRY, spider_command

SCRAPY_TASK = {"kind": "scrapy", "spider": "books",
               "args": {"max_pages": "2", "q": "a b;$(rm -rf /)"},
               "settings": {"LOG_LEVEL": "INFO"}}


def test_a_scrapy_task_runs_the_launcher_with_its_arguments_and_settings():
    command = spider_command(SCRAPY_TASK, {"_id": "books"})
    assert command.kind is SpiderKind.SCRAPY and command.warm_capable
    assert command.entry == SCRAPY_ENTRY
    launch = ["books", "-a", "max_pages=2", "-a", "q=a b;$(rm -rf /)", "-s", "LOG_LEVEL=INFO"]
    assert command.launch_args() == launch
    assert command.argv("/venv/bin/python") == ["/venv/bin/python", *SCRAPY_ENTRY, *launch]
    # shell-quoted: an argument with spaces or a newline cannot forge the log line
    assert command.display() == shlex.join([*SCRAPY_ENTRY, *launch])


def test_a_command_spider_gets_the_project_python_and_its_arguments_as_options():
    task = {"kind": "command", "spider": "plain", "args": {"max_pages": "3"},
            "settings": {"IGNORED": "1"}}
    command = spider_command(task, {"command": ["python", "main.py"]})
    assert not command.warm_capable and command.settings == {}
    assert command.argv("/venv/bin/python") == ["/venv/bin/python", "main.py", "--max_pages=3"]
    assert command.display() == "main.py --max_pages=3"
    with pytest.raises(ValueError):
        command.launch_args()


def test_a_non_python_command_is_run_as_written():
    task = {"kind": "command", "spider": "node_catalogue", "args": {}}
    command = spider_command(task, {"command": ["node", "main.js"]})
    assert command.argv("/venv/bin/python") == ["node", "main.js"]
    assert command.display() == "node main.js"
