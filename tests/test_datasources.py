"""Data sources: a spider's items delivered to real PostgreSQL and MariaDB
servers (127.0.0.1:5432 trust, 127.0.0.1:3306 root), the table layout and its
upserts, passwords sealed at rest and never shown, a source that is down
failing the task loudly — and `books` delivered end to end by a node."""

import os
import stat
import uuid

import pytest
import sqlalchemy as sa

from conftest import free_port, task_log, wait_task
from crawlfleet import datasources
from crawlfleet.results import dedup, manage
from crawlfleet.results.delivery import DeliveryFailed, deliver
from crawlfleet.results.sql import SqlTable
from crawlfleet.secretbox import SecretBox
from test_node import platform as platform_fixture
from test_node import run

SERVERS = {
    "postgresql": {"kind": "postgresql", "host": "127.0.0.1", "port": 5432, "database": "test",
                   "user": "postgres"},
    "mysql": {"kind": "mysql", "host": "127.0.0.1", "port": 3306, "database": "test",
              "user": "root"},
}


def engine_of(kind):
    doc = dict(SERVERS[kind])
    try:
        eng = datasources.engine(doc, None)
        with eng.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"{kind} is not running on this machine (scripts/services.sh starts it): {exc}")
    return eng


@pytest.fixture(params=list(SERVERS))
def sql(request):
    eng = engine_of(request.param)
    name = f"results_t{uuid.uuid4().hex[:8]}"
    yield request.param, eng, name
    with eng.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    eng.dispose()


def item(n, **extra):
    return {"url": f"http://x/{n}", "title": f"Book {n}", "price": n + 0.5, "stock": n,
            "in_stock": n % 2 == 0, "tags": ["a", "b"], "_tid": "t1", "_at": 1000.0 + n, **extra}


def test_table_layout_types_and_plain_inserts(sql):
    kind, eng, name = sql
    table = SqlTable(eng, name)
    assert table.write([item(n) for n in range(3)], None) == 3
    assert table.write([item(3, isbn="123")], None) == 1  # a new field: a new column
    columns = {c["name"]: c for c in sa.inspect(eng).get_columns(name)}
    assert set(columns) == {"_rowid", "_key", "_tid", "_at", "_first_at", "item", "url", "title",
                            "price", "stock", "in_stock", "isbn"}
    assert isinstance(columns["stock"]["type"], sa.BigInteger)
    assert isinstance(columns["price"]["type"], (sa.Double, sa.Float))
    assert isinstance(columns["title"]["type"], sa.Text)
    uniques = sa.inspect(eng).get_unique_constraints(name) + [
        i for i in sa.inspect(eng).get_indexes(name) if i.get("unique")]
    assert any(u["column_names"] == ["_key"] for u in uniques)
    with eng.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT url, price, stock, _tid, _at, item FROM {name} "
                                    "ORDER BY _at")).all()
    assert len(rows) == 4 and rows[0].url == "http://x/0" and rows[1].stock == 1
    assert rows[0]._tid == "t1" and rows[0]._at == 1000.0
    whole = rows[0].item if isinstance(rows[0].item, dict) else __import__("json").loads(rows[0].item)
    assert whole["tags"] == ["a", "b"]
    # a value of another type stays in `item` only
    table.write([item(9, stock="many")], None)
    assert table.count() == 5


@pytest.mark.parametrize("mode", ["overwrite", "ignore"])
def test_upsert_on_the_dedup_key(sql, mode):
    kind, eng, name = sql
    policy = dedup.DedupPolicy(("url",), mode)
    table = SqlTable(eng, name)
    table.write([item(n, _tid="t1") for n in range(5)], policy)
    table.write([item(n, _tid="t2", _at=2000.0 + n, title="new") for n in range(3, 8)], policy)
    with eng.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT url, title, _tid, _first_at FROM {name} "
                                    "ORDER BY stock")).all()
    assert len(rows) == 8
    titles = [r.title for r in rows[3:5]]
    assert titles == (["new", "new"] if mode == "overwrite" else ["Book 3", "Book 4"])
    assert rows[3]._first_at == 1003.0  # first seen by t1, whatever the mode


def test_turning_dedup_on_keys_rows_stored_without_it(sql):
    kind, eng, name = sql
    table = SqlTable(eng, name)
    table.write([item(n) for n in range(3)] + [item(0, _at=1500.0)], None)
    policy = dedup.DedupPolicy(("url",), "overwrite")
    table.write([item(n, _tid="t2", _at=3000.0) for n in range(3)], policy)
    with eng.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT url, _tid, _key FROM {name} ORDER BY url")).all()
    assert [(r.url, r._tid) for r in rows] == [(f"http://x/{n}", "t2") for n in range(3)]
    assert all(r._key for r in rows)


def test_a_table_changed_by_another_process_is_learned_anew(sql):
    """Two nodes write one table: a column one of them added, or the table
    dropped with its results collection, does not fail the other's writes."""
    kind, eng, name = sql
    mine, theirs = SqlTable(eng, name), SqlTable(eng, name)
    assert mine.write([item(1)], None) == 1 and theirs.write([item(2)], None) == 1
    assert theirs.write([item(3, isbn="978")], None) == 1  # adds `isbn`
    assert mine.write([item(4, isbn="979")], None) == 1  # its ALTER fails: it re-reads
    with eng.connect() as conn:
        assert sorted(conn.execute(sa.text(f"SELECT isbn FROM {name} WHERE isbn IS NOT NULL"))
                      .scalars()) == ["978", "979"]
    assert theirs.drop() == 4
    assert mine.write([item(5)], None) == 1  # made again
    assert mine.count() == 1 and theirs.delete_tasks(["t1"]) == 1
    assert theirs.drop() == 0 and mine.delete_tasks(["t1"]) == 0  # no table: nothing, none made
    assert not sa.inspect(eng).has_table(name)


def test_passwords_are_sealed_and_never_shown(client, auth, store, config):
    made = client.post("/api/v1/datasources", headers=auth.admin, json={
        "name": "pg", "kind": "postgresql", "host": "127.0.0.1", "database": "test",
        "user": "postgres", "password": "s3cret-pw"})
    assert made.status_code == 201, made.json
    assert made.json["has_password"] is True and "s3cret-pw" not in made.get_data(as_text=True)
    stored = store.db.datasources.find_one({"_id": "pg"})
    assert "s3cret-pw" not in str(stored) and stored["password_sealed"]
    assert SecretBox.for_config(config).open(stored["password_sealed"]) == "s3cret-pw"
    key_file = config.home_path / "secrets.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    listed = client.get("/api/v1/datasources", headers=auth.viewer)
    assert "s3cret-pw" not in listed.get_data(as_text=True)
    assert "password_sealed" not in listed.get_data(as_text=True)
    assert client.post("/api/v1/datasources", headers=auth.operator, json={
        "name": "x", "kind": "mysql", "host": "h", "database": "d", "user": "u"}).status_code == 403
    bad = client.post("/api/v1/datasources", headers=auth.admin, json={
        "name": "y", "kind": "oracle", "host": "h", "database": "d", "user": "u"})
    assert bad.status_code == 400 and "kind" in bad.json["error"]
    # a password change keeps the rest; no password keeps the sealed one
    client.patch("/api/v1/datasources/pg", headers=auth.admin, json={"port": 5432})
    assert store.db.datasources.find_one({"_id": "pg"})["password_sealed"] == stored["password_sealed"]
    tested = client.post("/api/v1/datasources/pg/test", headers=auth.admin)
    assert tested.status_code == 200 and tested.json["ok"] is True  # trust auth ignores it


def test_a_source_that_is_down_fails_loudly_after_retries(store, config):
    box = SecretBox.for_config(config)
    datasources.save(store, box, "gone", {"kind": "postgresql", "host": "127.0.0.1",
                                         "port": free_port(), "database": "test",
                                         "user": "postgres"}, create=True)
    store.db.results_down.insert_many([{"n": n, "_tid": "t-down", "_at": float(n)}
                                      for n in range(3)])
    said = []
    config = config.replace(sink_attempts=2)
    with pytest.raises(DeliveryFailed, match="gone"):
        deliver(store, config, {"_id": "t-down", "results_collection": "results_down"},
                ["gone"], None, said.append)
    assert any("retry 1" in line for line in said)
    assert store.db.results_down.count_documents({}) == 3  # nothing lost


@pytest.fixture
def emb(tmp_path, mongo_server, demo_site):
    yield from platform_fixture("embedded", tmp_path, mongo_server, demo_site, sink_attempts=2)


def test_books_delivered_to_postgresql_and_mariadb(emb):
    """A node delivers `books` to both servers: 300 rows in each, and 300 again
    after a second run with dedup on url."""
    config, store, broker, procs = emb
    engines = {kind: engine_of(kind) for kind in SERVERS}
    table = f"results_books_{uuid.uuid4().hex[:8]}"
    box = SecretBox.for_config(config)
    for kind, doc in SERVERS.items():
        datasources.save(store, box, f"{kind}-test", doc, create=True)
    store.spiders.update_one({"_id": "books"}, {"$set": {
        "results_collection": table, "datasources": ["postgresql-test", "mysql-test"]}})
    procs.node(store)
    try:
        first = run(config, store, broker, "books")
        task = wait_task(store, first, timeout=120)
        assert task["status"] == "finished", (task.get("error"), task_log(store, first)[-5:])
        counts = {}
        for kind, eng in engines.items():
            with eng.connect() as conn:
                counts[kind] = conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()
        assert counts == {"postgresql": 300, "mysql": 300}
        assert any("data source postgresql-test: 300 rows" in line for line in task_log(store, first))
        # dedup on url (the MongoDB collection holds no duplicates: no keep_newest needed)
        manage.update_spider(store, "books", {"dedup_keys": ["url"]})
        second = run(config, store, broker, "books")
        task = wait_task(store, second, timeout=120)
        assert task["status"] == "finished", task.get("error")
        assert task["stats"]["updated"] == 300
        for kind, eng in engines.items():
            with eng.connect() as conn:
                total = conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()
                latest = conn.execute(sa.text(f"SELECT COUNT(*) FROM {table} WHERE _tid = :t"),
                                      {"t": second}).scalar()
            assert (kind, total, latest) == (kind, 300, 300)
    finally:
        for eng in engines.values():
            with eng.begin() as conn:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
            eng.dispose()


def test_scrapy_feeds_are_passed_through(emb, tmp_path):
    """A spider's `feeds` reach Scrapy as its FEEDS setting: Scrapy writes the
    feed itself, here a JSON-lines file of the 300 books."""
    config, store, broker, procs = emb
    feed = tmp_path / "feeds" / "books.jsonl"
    manage.update_spider(store, "books", {"feeds": {str(feed): {"format": "jsonlines"}}})
    # local feeds land only in the node's feeds folder (the spider is sandboxed)
    procs.node(store, CRAWLFLEET_FEEDS_DIR=str(tmp_path / "feeds"))
    task_id = run(config, store, broker, "books")
    task = wait_task(store, task_id, timeout=120)
    assert task["status"] == "finished", task.get("error")
    lines = feed.read_text().splitlines()
    assert len(lines) == 300 and '"url"' in lines[0]


def test_a_local_feed_outside_the_feeds_folder_fails_the_task_readably(emb, tmp_path):
    """A feed path outside CRAWLFLEET_FEEDS_DIR is refused: the node writes no
    file a spider's settings name anywhere else on its disk."""
    config, store, broker, procs = emb
    manage.update_spider(store, "books", {"feeds": {"/etc/cf-probe.jsonl": {"format": "jsonlines"}}})
    procs.node(store, CRAWLFLEET_FEEDS_DIR=str(tmp_path / "feeds"))
    task = wait_task(store, run(config, store, broker, "books"), timeout=120)
    assert task["status"] == "error" and "outside the feeds folder" in task["error"]
    assert not os.path.exists("/etc/cf-probe.jsonl")


# -- removing results removes their rows in the SQL data sources too ------------------

def sql_sources(store, config, table):
    """Both servers as data sources of a spider `sq` whose results go to `table`."""
    box = SecretBox.for_config(config)
    for kind, doc in SERVERS.items():
        datasources.save(store, box, f"{kind}-test", doc, create=True)
    store.spiders.insert_one({"_id": "sq", "results_collection": table,
                              "datasources": ["postgresql-test", "mysql-test"]})
    return {kind: engine_of(kind) for kind in SERVERS}


def stored(store, config, table, task_id, items, attempt=1, root=None):
    """`items` of task `task_id` in MongoDB and delivered to both servers."""
    root = root or task_id
    task = {"_id": task_id, "root_id": root, "attempt": attempt, "spider": "sq",
            "results_collection": table, "status": "finished", "created_at": 1000.0}
    store.tasks.insert_one(task)
    store.db[table].insert_many([dict(it, _tid=task_id) for it in items])
    deliver(store, config, task, ["postgresql-test", "mysql-test"], None, lambda line: None)
    return task


def sql_rows(engines, table):
    """{kind: sorted (_tid, url)} of `table` on each server (None: no table)."""
    out = {}
    for kind, eng in engines.items():
        if not sa.inspect(eng).has_table(table):
            out[kind] = None
            continue
        with eng.connect() as conn:
            out[kind] = sorted(tuple(r) for r in conn.execute(
                sa.text(f"SELECT _tid, url FROM {table}")).all())
    return out


def drop_all(engines, table):
    for eng in engines.values():
        with eng.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        eng.dispose()


def test_deleting_results_deletes_their_rows_in_postgresql_and_mariadb(app, client, auth,
                                                                       store, config):
    """`DELETE /tasks/<id>/results` (the CLI's results-delete), the task page's
    Delete results and dropping the collection remove the same rows from both
    servers as from MongoDB, so the two never disagree."""
    from crawlfleet import users
    from test_ui import PASSWORD, Browser

    table = f"results_sq_{uuid.uuid4().hex[:8]}"
    engines = sql_sources(store, config, table)
    try:
        stored(store, config, table, "crawl1", [item(1), item(2)])
        stored(store, config, table, "crawl1-a2", [item(3), item(4), item(5)], attempt=2,
               root="crawl1")
        stored(store, config, table, "crawl2", [item(6)])
        stored(store, config, table, "crawl3", [item(7)])

        out = client.delete("/api/v1/tasks/crawl1/results", headers=auth.admin)
        assert out.status_code == 200, out.json
        assert out.json["removed"] == 5
        assert out.json["data_sources"] == {"postgresql-test": 5, "mysql-test": 5}
        left = [("crawl2", "http://x/6"), ("crawl3", "http://x/7")]
        assert sql_rows(engines, table) == {"postgresql": left, "mysql": left}
        assert store.db[table].count_documents({}) == 2

        # the task page's button, as an admin
        users.create_user(store, "boss", PASSWORD, "admin")
        page = Browser(app, store, None)
        assert page.login("boss", PASSWORD).status_code == 302
        done = page.post("/tasks/crawl2/results/delete")
        assert done.status_code == 302
        left = [("crawl3", "http://x/7")]
        assert sql_rows(engines, table) == {"postgresql": left, "mysql": left}
        assert store.db[table].count_documents({}) == 1

        dropped = client.delete(f"/api/v1/results/{table}?confirm={table}", headers=auth.admin)
        assert dropped.status_code == 200, dropped.json
        assert dropped.json["data_sources"] == {"postgresql-test": 1, "mysql-test": 1}
        assert sql_rows(engines, table) == {"postgresql": None, "mysql": None}
        assert table not in store.db.list_collection_names()

        # a later delivery makes the table again (the cached layout is forgotten)
        stored(store, config, table, "crawl4", [item(8)])
        assert sql_rows(engines, table) == {k: [("crawl4", "http://x/8")] for k in SERVERS}
    finally:
        drop_all(engines, table)


def test_a_source_that_is_down_stops_a_deletion_and_nothing_is_removed(client, auth, store,
                                                                      config):
    box = SecretBox.for_config(config)
    datasources.save(store, box, "gone", {"kind": "postgresql", "host": "127.0.0.1",
                                         "port": free_port(), "database": "test",
                                         "user": "postgres"}, create=True)
    store.spiders.insert_one({"_id": "sq", "results_collection": "results_sq",
                              "datasources": ["gone"]})
    store.tasks.insert_one({"_id": "t1", "results_collection": "results_sq", "spider": "sq"})
    store.db.results_sq.insert_many([{"n": n, "_tid": "t1", "_at": float(n)} for n in range(3)])
    out = client.delete("/api/v1/tasks/t1/results", headers=auth.admin)
    assert out.status_code == 503
    assert "data source 'gone'" in out.json["error"] and "\n" not in out.json["error"]
    dropped = client.delete("/api/v1/results/results_sq?confirm=results_sq", headers=auth.admin)
    assert dropped.status_code == 503
    assert store.db.results_sq.count_documents({}) == 3


@pytest.mark.parametrize("policy", [None, dedup.DedupPolicy(("url",), "overwrite")])
def test_a_finished_retry_removes_earlier_attempts_rows_in_sql(store, config, policy):
    """An attempt whose delivery failed half-way left rows in the data sources:
    the retry that finishes removes them (with dedup, only rows first seen
    during this crawl) before it delivers its own, as it does in MongoDB."""
    from node.crawlresults import ResultsSettings, finish

    table = f"results_sq_{uuid.uuid4().hex[:8]}"
    engines = sql_sources(store, config, table)
    sources = ["postgresql-test", "mysql-test"]
    try:
        root = {"_id": "c1", "root_id": "c1", "attempt": 1, "created_at": 1000.0,
                "results_collection": table}
        store.tasks.insert_one(root)
        box = SecretBox.for_config(config)
        partial = [item(1, _tid="c1", _first_at=1001.0), item(2, _tid="c1", _first_at=1002.0)]
        if policy is not None:  # a row an earlier crawl stored first, last written by c1
            partial.append(item(9, _tid="c1", _first_at=500.0))
        for name in sources:
            from crawlfleet.results.delivery import table_for
            table_for(store.db.datasources.find_one({"_id": name}), box, table).write(partial,
                                                                                      policy)
        store.db[table].insert_many([dict(it) for it in partial])
        retry = {"_id": "c1-a2", "root_id": "c1", "attempt": 2, "created_at": 1100.0,
                 "results_collection": table}
        store.tasks.insert_one(retry)
        store.db[table].insert_many([item(n, _tid="c1-a2", _first_at=1101.0) for n in (2, 3)])
        said = []
        settings = ResultsSettings(policy=policy, sources=sources)
        assert finish(store, config, retry, settings, said.append) is None
        expected = sorted([("c1-a2", "http://x/2"), ("c1-a2", "http://x/3")]
                          + ([("c1", "http://x/9")] if policy is not None else []))
        assert sql_rows(engines, table) == {"postgresql": expected, "mysql": expected}
        in_mongo = sorted((d["_tid"], d["url"]) for d in store.db[table].find())
        assert in_mongo == expected
        assert any("removed from data sources" in line for line in said), said
    finally:
        drop_all(engines, table)
