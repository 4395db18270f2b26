"""A generated fuzz of every route of the served OpenAPI document (issue 16,
item 6): hypothesis sends each operation bad path parameters, query values
and JSON bodies — NaN, infinities, integers past 64 bits, lone surrogates,
deep nesting, operator documents, fields of the wrong type — and no answer
may be a 5xx. Requests run through Flask's test client on a real store."""

import json
import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import scan  # discovery.scan, each `scrapy list` answer remembered
from web import openapi

METHODS = ("get", "post", "put", "patch", "delete")
EXAMPLES = 40

NASTY_TEXT = st.sampled_from(["", " ", "\ud800", "\udfff", "a" * 5000, "$ne", "{\"$gt\": 1}",
                              "../../etc/passwd", "%00", "\x00", "books", "any", "all",
                              "99999999999999999999999", "-1", "1e400", "NaN", "<b>x</b>"])
TEXT = st.one_of(NASTY_TEXT, st.text(max_size=40))
NUMBERS = st.one_of(st.integers(min_value=-(2 ** 80), max_value=2 ** 80),
                    st.floats(allow_nan=True, allow_infinity=True))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4),
    st.fixed_dictionaries({"$ne": inner}), st.fixed_dictionaries({"$gt": inner})),
    max_leaves=12)


def operations():
    doc = openapi.document()
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            query = [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]
            schema = ((op.get("requestBody") or {}).get("content") or {}) \
                .get("application/json", {}).get("schema", {})
            if "$ref" in schema:
                schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
            fields = sorted((schema.get("properties") or {}).keys())
            out.append((method, path, query, fields))
    return out


def encode(text):
    """Percent-encoded, lone surrogates included (as their UTF-8-like bytes)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def dump(value):
    """JSON text as an attacker would send it (NaN and Infinity included)."""
    try:
        return json.dumps(value, allow_nan=True)
    except (UnicodeEncodeError, ValueError, RecursionError):
        return "{}"


def body_for(fields):
    shaped = st.fixed_dictionaries({}, optional={f: JSON for f in fields}) if fields else JSON
    deep = st.integers(min_value=100, max_value=6000).map(lambda n: "[" * n + "]" * n)
    # mostly objects of the operation's own fields, whose values reach the code behind
    return st.one_of(shaped.map(dump), shaped.map(dump), shaped.map(dump), JSON.map(dump),
                     deep, st.sampled_from(["", "{", "null", "[]", '{"a": NaN}', '{"x": 1e400}']))


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory, mongo_server):
    from conftest import Tokens, make_config
    from crawlfleet.store import Store
    from web import create_app

    config = make_config(tmp_path_factory.mktemp("fuzz"), mongo_server)
    store = Store(config)
    store.ensure_indexes()
    assert not scan(store, config)["errors"]
    app = create_app(config)
    app.config["TESTING"] = True
    client, tokens = app.test_client(), Tokens(store)
    task = client.post("/api/v1/spiders/books/run", headers=tokens.operator).get_json()
    schedule = client.post("/api/v1/schedules", headers=tokens.operator,
                           json={"spider": "books", "cron": "0 0 * * *"}).get_json()
    real = {"name": "books", "task_id": task["task_ids"][0], "schedule_id": schedule["_id"],
            "version": store.projects.find_one({"_id": "books"})["current_version"],
            "path": "scrapy.cfg"}
    yield client, tokens, real
    app.extensions["crawlfleet"].close()
    store.client.drop_database(config.mongo_db)
    store.close()


def test_the_served_document_is_the_one_fuzzed(fuzz_env):
    client, tokens, _ = fuzz_env
    served = client.get("/api/v1/openapi.json").get_json()
    assert served["paths"].keys() == openapi.document()["paths"].keys()


@pytest.mark.parametrize("method,path,query,fields", operations(),
                         ids=[f"{m.upper()} {p}" for m, p, _, _ in operations()])
def test_no_route_answers_5xx(fuzz_env, method, path, query, fields):
    client, tokens, real = fuzz_env
    names = re.findall(r"\{([^}]+)\}", path)
    # mostly a real spider, task or schedule, so that the body reaches the code behind
    param = {n: st.one_of(st.just(real.get(n, "x")), st.just(real.get(n, "x")), TEXT)
             for n in names}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(params=st.fixed_dictionaries(param),
           query_values=st.lists(TEXT, min_size=len(query), max_size=len(query)),
           body=body_for(fields), role=st.sampled_from(["admin", "admin", "admin", "viewer"]))
    def probe(params, query_values, body, role):
        url = "/api/v1" + re.sub(r"\{([^}]+)\}",
                                 lambda m: encode(params[m.group(1)]) or "x", path)
        qs = "&".join(f"{name}={encode(value)}"
                      for name, value in zip(query, query_values))
        headers = {**getattr(tokens, role), "Content-Type": "application/json"}
        response = client.open(url + ("?" + qs if qs else ""), method=method.upper(),
                               data=body if method != "get" else None, headers=headers)
        assert response.status_code < 500, (method, url, qs, body[:200], response.data[:300])

    probe()

