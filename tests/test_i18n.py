"""The UI's languages (web/i18n.py, web/translations/): the Chinese catalog is
complete, in step with the marked strings of the code and with its committed
.mo; the locale follows the user's stored choice, else Accept-Language; and a
user who chose Simplified Chinese sees no English left among the marked UI
strings of the pages, compared text node by text node with the English page."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from crawlfleet import schedules, users
from crawlfleet.models import new_task, now
from helpers import scan  # discovery.scan, each `scrapy list` answer remembered
from web import create_app

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "web" / "translations"
ZH_PO = TRANSLATIONS / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"  # Babel's name of zh_CN
ZH_MO = ZH_PO.with_suffix(".mo")
PASSWORD = "correct horse battery"
PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdrf]")
CJK = re.compile(r"[\u4e00-\u9fff]")


def catalog():
    with ZH_PO.open("rb") as f:
        return read_po(f)


def keyed(message):
    return message.id if isinstance(message.id, str) else tuple(message.id)


def translated(message):
    return message.string if isinstance(message.string, str) else tuple(message.string)


# -- the catalog -----------------------------------------------------------------

def test_every_entry_is_translated_with_its_placeholders():
    """No empty or fuzzy entry, and each translation keeps the msgid's %(name)s
    placeholders (a lost or misspelt one would raise at render time)."""
    problems = []
    for message in catalog():
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings) or message.fuzzy:
            problems.append(("untranslated", keyed(message)))
            continue
        source = message.id[-1] if isinstance(message.id, tuple) else message.id
        wanted = sorted(PLACEHOLDER.findall(source))
        for text in strings:
            if sorted(PLACEHOLDER.findall(text)) != wanted:
                problems.append(("placeholders", keyed(message), text))
    assert not problems, problems


def test_catalog_holds_every_marked_string():
    """What pybabel extracts from web/ now is what the .po holds: run
    `make translations` after marking new strings (README "Languages")."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    extracted = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map,
            keywords={"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "N_": None,
                      "lazy_gettext": None}):
        extracted.add(message if isinstance(message, str) else tuple(message))
    held = {keyed(m) for m in catalog() if m.id}
    assert extracted - held == set(), "marked but not in the catalog"
    assert held - extracted == set(), "in the catalog but no longer marked"


def test_committed_mo_matches_the_po():
    """The .mo is committed (no compile step at install): it must say what the
    .po says (`make translations-compile` after editing the .po)."""
    with ZH_MO.open("rb") as f:
        compiled = {keyed(m): translated(m) for m in read_mo(f) if m.id}
    source = {keyed(m): translated(m) for m in catalog() if m.id}
    assert compiled == source


# -- pages -------------------------------------------------------------------------

class Texts(HTMLParser):
    """A page's visible strings: text nodes (not in script or style) and the
    attributes people read (title, placeholder, aria-label, data-confirm)."""

    READ_ATTRS = {"title", "placeholder", "aria-label", "data-confirm"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        self.texts += [v for k, v in attrs if k in self.READ_ATTRS and v]

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.texts.append(data)


def visible(html: str) -> list[str]:
    parser = Texts()
    parser.feed(html)
    return [t.strip(" \n\t·«»+:/.") for t in parser.texts if t.strip(" \n\t·«»+:/.")]


def plain_msgids():
    """Msgids a page shows as one whole text: no placeholder, no markup."""
    out = set()
    for message in catalog():
        if isinstance(message.id, str) and message.id and "%" not in message.id \
                and "<" not in message.id and "&" not in message.id:
            out.add(message.id.strip(" ·«»+:/."))
    return out


@pytest.fixture
def app(config, store, monkeypatch):
    monkeypatch.setenv("CRAWLFLEET_ADMIN_PASSWORD", PASSWORD)
    app = create_app(config)
    app.config["TESTING"] = True
    yield app
    app.extensions["crawlfleet"].close()


def signed_in(app, store, name, locale=None, headers=None):
    """A test client signed in as admin user `name`, with `locale` stored when given."""
    users.create_user(store, name, PASSWORD, "admin")
    if locale:
        users.set_locale(store, name, locale)
    client = app.test_client()
    page = client.get("/login", headers=headers)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post("/login", data={"username": name, "password": PASSWORD,
                                          "csrf_token": token})
    assert response.status_code == 302, response.text[:300]
    return client


@pytest.fixture
def fleet(store, config):
    """A spider, a finished task with items, a failed one: pages with rows to show."""
    report = scan(store, config)
    assert not report["errors"], report
    spider = store.spiders.find_one({"_id": "books"})
    done = new_task(spider, target="any")
    done.update(status="finished", started_at=now() - 90, finished_at=now() - 3,
                stats={"items": 2, "pages": 3, "errors": 0}, node_id="n1", exit_code=0,
                results_collection="results_books")
    failed = new_task(spider, target="any")
    failed.update(status="error", error="boom", exit_code=1, finished_at=now())
    store.tasks.insert_many([done, failed])
    store.results("results_books").insert_many(
        [{"title": f"Book {i}", "_tid": done["_id"]} for i in range(2)])
    store.nodes.insert_one({"_id": "n1", "hostname": "h1", "heartbeat_at": now(),
                            "max_runners": 2, "own_slots": 2, "running": [], "busy": 0, "free": 2,
                            "status": "online", "load": 0.5, "memory_percent": 40.0})
    schedule = schedules.create(store, {"spider": "books", "cron": "0 3 * * *"})
    done["schedule_id"] = schedule["_id"]
    done["project"], done["version"] = spider["project"], spider["version"]
    return done


# Data that happens to spell a msgid: the first user is named "admin".
DATA_ON_PAGE = {"/admin/users": {"admin"}}


def pages(task):
    return ["/", "/tasks", f"/tasks/{task['_id']}", "/results/", "/results/results_books",
            "/crawls/", "/account", "/admin/users", "/admin/tokens", "/datasources",
            "/alerts/", "/spiders/books/data", "/no-such-page",
            "/nodes", "/nodes/n1", "/spiders", "/spiders/books", "/projects/",
            f"/projects/{task['project']}",
            f"/projects/{task['project']}/versions/{task['version']}/files",
            f"/projects/{task['project']}/versions/{task['version']}/edit",
            f"/projects/{task['project']}/compare", "/schedules/", "/schedules/new",
            f"/schedules/{task['schedule_id']}"]


def test_pages_of_a_chinese_user_have_no_english_ui_string_left(app, store, fleet):
    """Each page as an English and as a zh_CN user: every marked string the English
    page shows as a whole text is gone from the Chinese page, and the Chinese
    page says lang="zh-CN"."""
    english = signed_in(app, store, "reader-en")
    chinese = signed_in(app, store, "reader-zh", locale="zh_CN")
    msgids = plain_msgids()
    for path in pages(fleet):
        en, zh = english.get(path), chinese.get(path)
        assert en.status_code == zh.status_code, path
        assert '<html lang="en">' in en.text and '<html lang="zh-CN">' in zh.text, path
        shown = [t for t in visible(en.text) if t in msgids]
        assert shown, f"{path}: no marked string found in the English page"
        left = sorted({t for t in visible(zh.text) if t in msgids} - DATA_ON_PAGE.get(path, set()))
        assert not left, f"{path}: English left in the Chinese page: {left}"
        assert CJK.search(zh.text), path


def test_locale_follows_choice_then_browser_then_english(app, store):
    """No choice: Accept-Language decides (any zh-* is Simplified Chinese), else
    English; a stored choice wins over the browser; the header switch stores it."""
    anonymous = app.test_client()
    assert "登录" in anonymous.get("/login", headers={"Accept-Language": "zh-TW,zh;q=0.9"}).text
    assert "Sign in" in anonymous.get("/login", headers={"Accept-Language": "fr, de"}).text
    assert "Sign in" in anonymous.get("/login").text

    client = signed_in(app, store, "switcher")
    assert "Sign out" in client.get("/", headers={"Accept-Language": "en"}).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/account").text).group(1)
    response = client.post("/account/language", data={"locale": "zh_CN", "next": "/tasks",
                                                      "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/tasks"
    assert users.get_user(store, "switcher")["locale"] == "zh_CN"
    page = client.get("/tasks", headers={"Accept-Language": "en"})
    assert "退出登录" in page.text and "语言已切换" in page.text
    bad = client.post("/account/language", data={"locale": "xx", "csrf_token": token})
    assert bad.status_code == 400
    offsite = client.post("/account/language", data={"locale": "en", "csrf_token": token,
                                                     "next": "https://evil.example/"})
    assert offsite.headers["Location"] == "/"


def test_flash_messages_are_translated(app, store, fleet):
    """A message flashed by a route reads in the user's language."""
    client = signed_in(app, store, "flasher", locale="zh_CN")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/account").text).group(1)
    client.post("/admin/tokens/nope/revoke", data={"csrf_token": token})
    assert "没有这个令牌。" in client.get("/admin/tokens").text
    client.post("/tasks/bulk", data={"action": "cancel", "csrf_token": token})
    assert "请先选择任务。" in client.get("/tasks").text


def test_a_cron_expression_is_put_in_words_in_the_users_language(app, store):
    """cron-descriptor carries its own Chinese; the seconds line is ours."""
    chinese = signed_in(app, store, "cron-zh", locale="zh_CN")
    out = chinese.get("/schedules/describe?cron=0+3+*+*+*+*/10").get_json()
    assert "03:00" in out["description"] and re.search(r"[\u4e00-\u9fff]", out["description"])
    assert out["seconds"].startswith("第六个字段（*/10）表示秒")
    english = signed_in(app, store, "cron-en", locale="en")
    out = english.get("/schedules/describe?cron=0+3+*+*+*+*/10").get_json()
    assert out["description"].startswith("Every 10 seconds") and out["seconds"].startswith("The sixth")
