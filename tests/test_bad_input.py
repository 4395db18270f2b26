"""Bad input answers 4xx with one readable line, never 500 (issue 16, item 6):
the requests an outside review found answering 500, and a generated fuzz of
every route of the served OpenAPI document (tests/test_api_fuzz.py)."""

import json

import pytest
from bson import ObjectId

from crawlfleet.models import new_task
from helpers import scan  # discovery.scan, each `scrapy list` answer remembered


@pytest.fixture
def books(store, config):
    report = scan(store, config)
    assert not report["errors"], report
    return store.spiders.find_one({"_id": "books"})


def post_raw(client, path, raw, headers):
    return client.post(path, data=raw, headers={**headers, "Content-Type": "application/json"})


BAD_BODIES = [
    '{"timeout": 1e400}', '{"timeout": Infinity}', '{"timeout": NaN}', '{"timeout": 1e29}',
    '{"timeout": -Infinity}', '{"priority": 1e400}', '{"priority": 99999999999999999999999}',
    '{"nodes": [{"$ne": null}]}', '{"nodes": {"$ne": null}}',
    '{"args": {"a": "\\ud800"}}', '{"settings": {"\\udfff": "x"}}', '{"args": {"a": 1e400}}',
    '{"args": {"a": 99999999999999999999999}}',
    '{"args": ' + "[" * 5000 + "]" * 5000 + '}',
    "[" * 5000 + "]" * 5000,
]


def test_run_refuses_bad_bodies_with_400(client, auth, books, store):
    for raw in BAD_BODIES:
        response = post_raw(client, "/api/v1/spiders/books/run", raw, auth.operator)
        assert response.status_code == 400, (raw[:40], response.status_code, response.data[:300])
        assert "\n" not in response.json["error"]
    assert store.tasks.count_documents({}) == 0


SCHEDULE = {"spider": "books", "cron": "*/5 * * * *"}


BAD_SCHEDULE_VALUES = [
    ("timeout", "1e400"), ("timeout", "Infinity"), ("timeout", "NaN"), ("timeout", "1e29"),
    ("args", '{"a": "\\ud800"}'), ("settings", '{"\\udfff": "x"}'), ("priority", "1e400"),
    ("nodes", '[{"$ne": null}]'),
]


def test_schedules_refuse_bad_values_with_400(client, auth, books, store):
    for field, raw in BAD_SCHEDULE_VALUES:
        body = json.dumps(SCHEDULE)[:-1] + f', "{field}": {raw}}}'
        response = post_raw(client, "/api/v1/schedules", body, auth.operator)
        assert response.status_code == 400, (field, raw, response.status_code, response.data[:300])
    assert store.db.schedules.count_documents({}) == 0
    response = post_raw(client, "/api/v1/schedules/preview", '{"cron": "* * * * *", "count": 1e400}',
                        auth.operator)
    assert response.status_code == 400


def test_log_offsets_and_result_cursors_out_of_range_are_400(client, auth, books, store):
    task = new_task(books, target="any")
    store.tasks.insert_one(task)
    base = f"/api/v1/tasks/{task['_id']}"
    for query in ("offset=99999999999999999999999", "limit=99999999999999999999999",
                  "offset=-1"):
        response = client.get(f"{base}/log?{query}", headers=auth.viewer)
        assert response.status_code == 400, (query, response.data[:200])
    for cursor in ('{"$date": 99999999999999999999999}', '{"$date": 1e400}',
                   str(2 ** 63), str(2 ** 70), '{"$oid": "zz"}', "%ED%A0%80"):
        response = client.get(f"{base}/results", query_string={"after": cursor},
                              headers=auth.viewer)
        assert response.status_code in (200, 400), (cursor, response.data[:200])
    assert client.get("/api/v1/tasks?limit=99999999999999999999999",
                      headers=auth.viewer).status_code in (200, 400)
    assert client.get("/api/v1/tasks?before=%ED%A0%80", headers=auth.viewer).status_code < 500


def test_results_browser_cursors_out_of_range_are_400(client, auth, books, store, app):
    """The results browser's cursors (`$date`, big ints, `$oid`) never answer 500."""
    import base64

    from test_ui import PASSWORD, Browser

    store.users.delete_many({})
    from crawlfleet import users
    users.create_user(store, "admin", PASSWORD, "admin")
    store.results("results_books").insert_one({"_tid": "t", "title": "x", "_at": 1.0})
    admin = Browser(app, store, "admin")
    for raw in ('[{"$date": 99999999999999999999999}, 1]', '[{"$date": 1e400}, 1]',
                f'[{2 ** 63}, 1]', f'[1, {2 ** 70}]', '[1, {"$oid": "zz"}]',
                '[{"$numberLong": "99999999999999999999"}, 1]', '["\\ud800", 1]'):
        cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        response = admin.get(f"/results/results_books?after={cursor}")
        assert response.status_code in (200, 400), (raw, response.status_code)
        assert b"invalid page cursor" in response.data, raw
