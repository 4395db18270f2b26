"""Route tests of the web UI (web/ui.py, web/auth.py, web/admin.py,
web/results.py) through Flask's test client, against a real store: every
page for every role, login and sessions, CSRF, security headers, escaping."""

import re

import pytest
from bson import ObjectId

from crawlfleet import users
from crawlfleet.models import new_task, now
from helpers import scan  # discovery.scan, each `scrapy list` answer remembered
from web import create_app

PASSWORD = "correct horse battery"
XSS = 'How to Escape <script>alert("xss")</script> & Other Tricks'


@pytest.fixture
def app(config, store, monkeypatch):
    monkeypatch.setenv("CRAWLFLEET_ADMIN_PASSWORD", PASSWORD)
    app = create_app(config)
    app.config["TESTING"] = True
    yield app
    app.extensions["crawlfleet"].close()


class Browser:
    """A test client that signs in as a user of a role and posts forms with the CSRF token."""

    def __init__(self, app, store, role):
        self.client = app.test_client()
        self.name = None
        if role:
            self.name = "admin" if role == "admin" else f"u-{role}"
            if role != "admin":
                users.create_user(store, self.name, PASSWORD, role)
            response = self.login(self.name, PASSWORD)
            assert response.status_code == 302, response.data

    def csrf(self):
        page = self.client.get("/account")
        if page.status_code == 302:
            page = self.client.get("/login")
        return re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()

    def login(self, name, password):
        token = self.csrf()
        return self.client.post("/login", data={"username": name, "password": password,
                                                "csrf_token": token})

    def get(self, path, **kw):
        return self.client.get(path, **kw)

    def post(self, path, data=None, **kw):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf())
        return self.client.post(path, data=data, **kw)


@pytest.fixture
def browser(app, store):
    return lambda role: Browser(app, store, role)


@pytest.fixture
def spiders(store, config):
    report = scan(store, config)
    assert not report["errors"], report
    return store.spiders.find_one({"_id": "books"})


def add_task(store, spider, **fields):
    task = new_task(spider, target="any")
    task.update(fields)
    store.tasks.insert_one(task)
    return task


PAGES = ["/", "/nodes", "/spiders", "/spiders/books", "/tasks", "/results/",
         "/results/results_books", "/account"]


# -- login, sessions, roles ------------------------------------------------------

def test_first_admin_is_made_from_the_environment_once(store, app):
    """create_app makes user `admin` with CRAWLFLEET_ADMIN_PASSWORD, and only when no user exists."""
    admin = users.get_user(store, "admin")
    assert admin["role"] == "admin" and PASSWORD not in admin["password_hash"]
    assert users.ensure_first_admin(store, {}) is None


def test_first_admin_password_is_generated_when_not_given(store):
    """Without CRAWLFLEET_ADMIN_PASSWORD a random password is made and returned once."""
    name, password = users.ensure_first_admin(store, {})
    assert name == "admin" and len(password) >= 12
    assert users.authenticate(store, "admin", password)
    assert users.authenticate(store, "admin", "wrong-password") is None


def test_anonymous_is_sent_to_the_login_page(app, spiders):
    """Every page redirects an anonymous visitor to /login?next=<page>."""
    client = app.test_client()
    for path in PAGES + ["/admin/users", "/admin/tokens", "/tasks/x/log/stream"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next="), path


def test_api_without_token_still_gets_401(app):
    """The session does not weaken the API: no token and no session is a JSON 401."""
    response = app.test_client().get("/api/v1/spiders")
    assert response.status_code == 401 and response.get_json()["error"]
    response = app.test_client().post("/api/v1/spiders/books/run")
    assert response.status_code == 401


def test_wrong_password_is_refused(browser):
    """A wrong password shows the login page again with 401 and no session."""
    anon = browser(None)
    response = anon.login("admin", "not the password")
    assert response.status_code == 401 and b"Wrong user name or password" in response.data
    assert anon.get("/").status_code == 302


@pytest.mark.parametrize("role", ["admin", "operator", "viewer"])
def test_every_page_renders_for_every_role(browser, spiders, store, role):
    """Each page answers 200 for each role, with the security headers."""
    client = browser(role)
    task = add_task(store, spiders)
    for path in PAGES + [f"/tasks/{task['_id']}"]:
        response = client.get(path)
        assert response.status_code == 200, (path, response.data[:500])
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"]
        assert b"<script>" not in response.data  # no inline scripts anywhere


def test_session_cookie_flags(browser, app):
    """The session cookie is HttpOnly and SameSite=Lax, and Secure over https."""
    anon = browser(None)
    token = anon.csrf()
    response = anon.client.post("/login", data={"username": "admin", "password": PASSWORD,
                                                "csrf_token": token})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure = app.test_client()
    page = secure.get("/login", base_url="https://localhost")
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()
    response = secure.post("/login", base_url="https://localhost",
                           data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert "Secure" in response.headers["Set-Cookie"]


def test_viewer_cannot_run_cancel_rescan_or_administer(browser, spiders, store):
    """A viewer gets 403 on every state-changing page and sees no Run button."""
    viewer = browser("viewer")
    task = add_task(store, spiders)
    for path in ("/spiders/books/run", f"/tasks/{task['_id']}/cancel",
                 f"/tasks/{task['_id']}/retry", "/spiders/rescan", "/admin/users",
                 "/admin/tokens", "/admin/users/admin/delete"):
        assert viewer.post(path).status_code == 403, path
    for path in ("/admin/users", "/admin/tokens"):
        assert viewer.get(path).status_code == 403
    assert b"open-dialog" not in viewer.get("/spiders").data
    assert store.tasks.count_documents({}) == 1
    # and through the API with the session: still read-only
    response = viewer.client.post("/api/v1/spiders/books/run",
                                  headers={"X-CSRF-Token": viewer.csrf()})
    assert response.status_code == 403


def test_operator_runs_cancels_and_retries(browser, spiders, store):
    """An operator's Run form makes a task with its args, settings and timeout; cancel and retry work."""
    op = browser("operator")
    response = op.post("/spiders/books/run", {"args": "max_pages=2\n", "settings":
                                              "DOWNLOAD_DELAY=0", "target": "any",
                                              "timeout": "30"})
    assert response.status_code == 302
    task_id = response.headers["Location"].rsplit("/", 1)[1]
    task = store.tasks.find_one({"_id": task_id})
    assert task["args"] == {"max_pages": "2"} and task["settings"] == {"DOWNLOAD_DELAY": "0"}
    assert task["timeout"] == 30 and task["trigger"] == "ui" and task["user"] == "u-operator"

    assert op.post(f"/tasks/{task_id}/cancel").status_code == 302
    assert store.tasks.find_one({"_id": task_id})["status"] == "cancelled"
    response = op.post(f"/tasks/{task_id}/retry")
    again = store.tasks.find_one({"_id": response.headers["Location"].rsplit("/", 1)[1]})
    assert again["_id"] != task_id and again["args"] == {"max_pages": "2"}
    assert again["retry_of"] == task_id and again["status"] == "pending"
    assert op.post("/admin/users", {"username": "x", "role": "admin"}).status_code == 403


def test_run_form_errors_are_shown_not_raised(browser, spiders, store):
    """A malformed argument line or setting name comes back as a message."""
    op = browser("operator")
    response = op.post("/spiders/books/run", {"args": "no equals sign"}, follow_redirects=True)
    assert b"expected NAME=VALUE" in response.data
    response = op.post("/spiders/books/run", {"settings": "lower=1"}, follow_redirects=True)
    assert b"UPPER_CASE" in response.data
    assert store.tasks.count_documents({}) == 0


def test_csrf_token_is_required_on_every_post(browser, spiders, store):
    """A form or fetch without the session's CSRF token, or with a wrong one, is 403."""
    admin = browser("admin")
    for data in ({}, {"csrf_token": "forged"}):
        assert admin.client.post("/spiders/books/run", data=data).status_code == 403
        assert admin.client.post("/admin/tokens", data={"name": "x", **data}).status_code == 403
        assert admin.client.post("/logout", data=data).status_code == 403
    # the API through the session needs the header too; with it, it works
    assert admin.client.post("/api/v1/spiders/books/run").status_code == 403
    response = admin.client.post("/api/v1/spiders/books/run",
                                 headers={"X-CSRF-Token": admin.csrf()})
    assert response.status_code == 201
    # a login form without the token is refused as well
    assert browser(None).client.post("/login", data={"username": "admin",
                                                     "password": PASSWORD}).status_code == 403


def test_logout_ends_the_session(browser):
    """After signing out, pages redirect to the login page again."""
    admin = browser("admin")
    assert admin.post("/logout").status_code == 302
    assert admin.get("/").status_code == 302


def test_next_redirect_stays_on_this_site(browser):
    """The login's `next` can only be a local path."""
    anon = browser(None)
    token = anon.csrf()
    for evil in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = anon.client.post("/login", data={"username": "admin", "password": PASSWORD,
                                                    "csrf_token": token, "next": evil})
        assert response.headers["Location"] == "/", evil
        anon.post("/logout")
        token = anon.csrf()


# -- admin: users and tokens -----------------------------------------------------

def test_admin_manages_users(browser, store):
    """Create (random password shown once), change role, reset password, delete; the last admin stays."""
    admin = browser("admin")
    response = admin.post("/admin/users", {"username": "carol", "role": "operator"})
    password = re.search(rb'<code id="secret">([^<]+)</code>', response.data).group(1).decode()
    assert users.authenticate(store, "carol", password)
    carol = Browser.__new__(Browser)
    carol.client, carol.name = admin.client.application.test_client(), None
    assert carol.login("carol", password).status_code == 302
    assert carol.get("/").status_code == 200

    admin.post("/admin/users/carol/role", {"role": "viewer"})
    assert users.get_user(store, "carol")["role"] == "viewer"
    admin.post("/admin/users/carol/password")
    assert users.authenticate(store, "carol", password) is None
    assert carol.get("/").status_code == 302  # the password change ended carol's session
    admin.post("/admin/users/carol/delete")
    assert users.get_user(store, "carol") is None

    response = admin.post("/admin/users/admin/role", {"role": "viewer"}, follow_redirects=True)
    assert b"last admin" in response.data
    assert users.get_user(store, "admin")["role"] == "admin"


def test_admin_creates_and_revokes_api_tokens(browser, store, app):
    """A token made in the UI is shown once, works on the API with its role, and revocation ends it."""
    admin = browser("admin")
    response = admin.post("/admin/tokens", {"name": "exporter", "role": "viewer"})
    token = re.search(rb'<code id="secret">(cft_[^<]+)</code>', response.data).group(1).decode()
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/spiders", headers=headers).status_code == 200
    assert api.post("/api/v1/spiders/rescan", headers=headers).status_code == 403
    assert token.encode() not in admin.get("/admin/tokens").data  # shown once only
    doc = store.tokens.find_one({"name": "exporter"})
    admin.post(f"/admin/tokens/{doc['_id']}/revoke")
    assert api.get("/api/v1/spiders", headers=headers).status_code == 401


def test_account_password_change(browser, store):
    """A user changes their own password with the current one and stays signed in."""
    op = browser("operator")
    bad = op.post("/account", {"current": "wrong", "password": "new-password-1",
                               "again": "new-password-1"})
    assert bad.status_code == 400
    ok = op.post("/account", {"current": PASSWORD, "password": "new-password-1",
                              "again": "new-password-1"})
    assert ok.status_code == 302
    assert users.authenticate(store, "u-operator", "new-password-1")
    assert op.get("/").status_code == 200


# -- content -------------------------------------------------------------------------

def test_html_in_items_logs_and_errors_is_shown_as_text(browser, spiders, store):
    """Item fields, task errors and args holding HTML are escaped on every page."""
    admin = browser("admin")
    task = add_task(store, spiders, status="error", error=XSS, args={"q": XSS},
                    finished_at=now(), started_at=now() - 1)
    store.results("results_books").insert_one({"title": XSS, "_tid": task["_id"],
                                               "task_id": task["_id"]})
    for path in (f"/tasks/{task['_id']}", "/", "/results/results_books",
                 "/results/results_books?q=title+~+escape+<script>"):
        body = admin.get(path).data.decode()
        assert "<script>alert" not in body, path
    assert "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;" in admin.get(
        f"/tasks/{task['_id']}").data.decode()


def test_dashboard_counts_and_chart_series(browser, spiders, store):
    """Running/pending counts, success rate and the 30-day series come from the ledger."""
    admin = browser("admin")
    for status, items in (("finished", 10), ("finished", 5), ("error", 0), ("running", 3),
                          ("pending", 0)):
        add_task(store, spiders, status=status, stats={"items": items})
    add_task(store, spiders, status="finished", created_at=now() - 40 * 86400)  # outside
    body = admin.get("/").data.decode()
    assert re.search(r'id="stat-running">1<', body) and re.search(r'id="stat-pending">1<', body)
    assert "66.7 %" in body  # 2 finished of 3 final
    series = re.search(r"data-series='([^']+)'", body).group(1)
    import json
    series = json.loads(series.replace("&#34;", '"'))
    assert len(series["labels"]) == 30 and series["tasks"][-1] == 5
    assert series["items"][-1] == 18 and series["failures"][-1] == 1


def test_tasks_list_filters_and_keyset_pages(browser, spiders, store):
    """Filters by status and spider, and `More` pages by `_id < cursor` without repeats."""
    admin = browser("admin")
    ids = [add_task(store, spiders, status="finished")["_id"] for _ in range(55)]
    add_task(store, spiders, status="error")
    page1 = admin.get("/tasks?status=finished").data.decode()
    shown1 = re.findall(r'href="/tasks/([0-9a-f]+)"', page1)
    assert len(shown1) == 50 and set(shown1) <= set(ids)
    more = re.search(r'id="next-page" href="([^"]+)"', page1).group(1).replace("&amp;", "&")
    assert "before=" in more and "status=finished" in more
    shown2 = re.findall(r'href="/tasks/([0-9a-f]+)"', admin.get(more).data.decode())
    assert len(shown2) == 5 and not set(shown1) & set(shown2)
    assert set(shown1) | set(shown2) == set(ids)
    assert "next-page" not in admin.get("/tasks?spider=nope").data.decode()


def test_log_stream_sends_lines_then_ends_when_final(browser, spiders, store):
    """The SSE endpoint sends stored lines with their offset as id, resumes from
    Last-Event-ID, and ends with an `end` event once the task is final."""
    admin = browser("admin")
    task = add_task(store, spiders, status="finished", log_lines=3)
    store.task_logs.insert_many([
        {"task_id": task["_id"], "seq": 0, "start": 0, "end": 2, "lines": ["one", "<b>two</b>"]},
        {"task_id": task["_id"], "seq": 1, "start": 2, "end": 3, "lines": ["three"]},
    ])
    response = admin.get(f"/tasks/{task['_id']}/log/stream")
    assert response.mimetype == "text/event-stream"
    body = response.get_data(as_text=True)
    assert 'id: 3\ndata: ["one", "<b>two</b>", "three"]' in body
    assert body.rstrip().endswith('event: end\ndata: "finished"')
    resumed = admin.get(f"/tasks/{task['_id']}/log/stream",
                        headers={"Last-Event-ID": "2"}).get_data(as_text=True)
    assert 'data: ["three"]' in resumed and "one" not in resumed
    assert admin.get("/tasks/nope/log/stream").status_code == 404


# -- results browser -------------------------------------------------------------------

@pytest.fixture
def results(store):
    coll = store.results("results_books")
    coll.insert_many([{"title": f"Book {i}", "price": i * 1.5, "n": i, "code": f"{i:03d}",
                       "in_stock": i % 2 == 0, "_tid": "t1", "task_id": "t1"}
                      for i in range(120)])
    coll.create_index("price")
    return coll


def rows(body):
    return re.findall(r'<td class="mono small"[^>]*>([0-9a-f]{24})</td>', body)


def test_results_browser_filters_sorts_and_pages(browser, spiders, results):
    """Filters narrow the rows, an indexed column sorts, and `More` pages by keyset."""
    admin = browser("admin")
    body = admin.get("/results/results_books?q=price+>%3D+150&q=in_stock+%3D+true").data.decode()
    assert len(rows(body)) == 10  # n in 100..118 even
    assert "Book 100" in body and "Book 101" not in body
    body = admin.get("/results/results_books?q=title+~+BOOK+11").data.decode()
    assert len(rows(body)) == 11  # 11, 110..119
    page1 = admin.get("/results/results_books?sort=price&dir=asc").data.decode()
    titles = re.findall(r">Book (\d+)<", page1)
    assert titles[:3] == ["0", "1", "2"]
    more = re.search(r'id="next-page" href="([^"]+)"', page1).group(1).replace("&amp;", "&")
    page2 = admin.get(more).data.decode()
    assert re.findall(r">Book (\d+)<", page2)[:2] == ["50", "51"]
    all_ids = rows(page1) + rows(page2)
    page3 = admin.get(re.search(r'id="next-page" href="([^"]+)"', page2).group(1)
                      .replace("&amp;", "&")).data.decode()
    all_ids += rows(page3)
    assert len(all_ids) == len(set(all_ids)) == 120
    assert 'id="next-page"' not in page3


def test_results_export_streams_the_filtered_set(browser, spiders, results):
    """CSV, JSON and JSONL exports hold exactly the filtered rows."""
    import csv
    import io
    import json

    admin = browser("admin")
    q = "?q=n+<+10"
    got = admin.get("/results/results_books/export" + q + "&format=csv")
    assert got.mimetype == "text/csv" and "attachment" in got.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(got.get_data(as_text=True))))
    assert len(table) == 10 and {r["code"] for r in table} >= {"000", "009"}
    assert len(json.loads(admin.get("/results/results_books/export" + q + "&format=json")
                          .get_data(as_text=True))) == 10
    lines = admin.get("/results/results_books/export" + q + "&format=jsonl").get_data(as_text=True)
    assert len(lines.strip().splitlines()) == 10
    assert admin.get("/results/results_books/export?format=xml").status_code == 400


def test_results_browser_refuses_ledger_collections_and_bad_cursors(browser, spiders, results):
    """Only results collections can be browsed; a forged cursor is an error, not a query."""
    admin = browser("admin")
    for name in ("users", "tokens", "tasks", "results_nope"):
        assert admin.get(f"/results/{name}").status_code == 404, name
        assert admin.get(f"/results/{name}/export").status_code == 404, name
    import base64

    from bson import json_util
    forged = base64.urlsafe_b64encode(json_util.dumps([{"$ne": None}, "x"]).encode()).decode()
    body = admin.get(f"/results/results_books?sort=price&after={forged}").data.decode()
    assert "invalid page cursor" in body and not rows(body)
    body = admin.get("/results/results_books?q=%24where+%3D+1").data.decode()
    assert "invalid field name" in body


def test_viewer_may_browse_results(browser, spiders, results):
    """Results are read-only, so a viewer browses and exports them."""
    viewer = browser("viewer")
    assert len(rows(viewer.get("/results/results_books").data.decode())) == 50
    assert viewer.get("/results/results_books/export?format=jsonl").status_code == 200


def test_sorting_an_unindexed_field_of_a_big_collection_is_refused(browser, spiders, store,
                                                                    monkeypatch):
    """Above the size limit only `_id` and indexed fields sort (no full-collection sorts)."""
    from web import results as results_module

    monkeypatch.setattr(results_module, "SORT_ANY_BELOW", 5)
    store.results("results_books").insert_many([{"n": i, "_id": ObjectId()} for i in range(10)])
    admin = browser("admin")
    assert "needs an index" in admin.get("/results/results_books?sort=n").data.decode()
    assert "needs an index" not in admin.get("/results/results_books?sort=_tid").data.decode()


def test_tasks_created_in_the_same_instant_are_neither_repeated_nor_lost(browser, spiders,
                                                                         store):
    """Tasks sharing one created_at across a page boundary are told apart by `_id`."""
    admin = browser("admin")
    stamp = now() - 100
    same = [add_task(store, spiders, created_at=stamp)["_id"] for _ in range(53)]
    older = [add_task(store, spiders, created_at=stamp - 1)["_id"] for _ in range(3)]
    newer = [add_task(store, spiders)["_id"] for _ in range(4)]
    seen, path = [], "/tasks"
    while path:
        body = admin.get(path).data.decode()
        seen += re.findall(r'href="/tasks/([0-9a-f]+)"', body)
        found = re.search(r'id="next-page" href="([^"]+)"', body)
        path = found.group(1).replace("&amp;", "&") if found else None
    assert len(seen) == len(set(seen)) == 60
    assert set(seen[:4]) == set(newer) and seen[-3:] == sorted(older, reverse=True)
    assert seen[4:57] == sorted(same, reverse=True)
    assert admin.get("/tasks?before=nonsense").status_code == 400


@pytest.mark.parametrize("tie_scan", [1000, 5])
def test_results_sorted_by_a_field_with_many_equal_values_page_exactly(browser, spiders, store,
                                                                      monkeypatch, tie_scan):
    """Rows sharing the sort value across page boundaries are neither repeated nor lost,
    whether the ties are filtered here or by an `_id` range."""
    from web import results as results_module

    monkeypatch.setattr(results_module, "TIE_SCAN", tie_scan)
    coll = store.results("results_books")
    coll.insert_many([{"price": float(i % 2), "n": i} for i in range(130)])
    coll.create_index("price")
    admin = browser("admin")
    for direction in ("asc", "desc"):
        seen, path = [], f"/results/results_books?sort=price&dir={direction}"
        while path:
            body = admin.get(path).data.decode()
            seen += rows(body)
            found = re.search(r'id="next-page" href="([^"]+)"', body)
            path = found.group(1).replace("&amp;", "&") if found else None
        assert len(seen) == len(set(seen)) == 130, direction


# -- results browser: default order -----------------------------------------------------

def page_through(admin, path):
    """Every row id of every page from `path` on, following `More`, and the pages' count."""
    seen, pages = [], 0
    while path:
        body = admin.get(path).data.decode()
        seen += rows(body)
        pages += 1
        found = re.search(r'id="next-page" href="([^"]+)"', body)
        path = found.group(1).replace("&amp;", "&") if found else None
    return seen, pages


@pytest.mark.parametrize("tie_scan", [1000, 5])
def test_results_browser_pages_in_insertion_order_by_at(browser, spiders, store, config,
                                                       monkeypatch, tie_scan):
    """By default the browser shows the newest items first by `_at` (indexed):
    paging visits every item once, in insertion order, with no gap and no
    repeat, items sharing one `_at` across page boundaries included."""
    import random

    from channel_helpers import NodeBackedContext
    from web import results as results_module

    monkeypatch.setattr(results_module, "TIE_SCAN", tie_scan)
    coll = store.results("results_books")
    context = NodeBackedContext(store, "t-order", "results_books")
    # `_id`s out of insertion order (as from writers on several hosts): only `_at` has it
    inserted = [ObjectId() for _ in range(3000)]
    random.Random(5).shuffle(inserted)
    try:
        for batch in range(12):
            context.insert_items([{"_id": inserted[n], "title": f"Book {n}", "n": n}
                                  for n in range(batch * 250, (batch + 1) * 250)])
    finally:
        context.close()
    # writes whose clocks read the same: 120 items sharing one `_at`, in `_id` order
    stamp = coll.find_one(sort=[("_at", -1)])["_at"] + 1.0
    tagged = {"_tid": "t-order", "task_id": "t-order"}
    same = [{"_id": ObjectId(), "title": "tied", **tagged, "_at": stamp} for _ in range(120)]
    inserted += [doc["_id"] for doc in same]
    random.Random(6).shuffle(same)
    coll.insert_many(same)
    newest = [{"_id": ObjectId(), "title": "newest", **tagged, "_at": stamp + 1.0}]
    coll.insert_many(newest)
    inserted += [newest[0]["_id"]]
    admin = browser("admin")
    first = admin.get("/results/results_books").data.decode()
    assert 'name="sort" value="_at"' in first
    headers = re.findall(r"<th[^>]*>(?:<a [^>]*>)?([^<▼▲]+?)(?: [▼▲])?(?:</a>)?</th>", first)
    assert headers[-3:] == ["_tid", "task_id", "_at"], headers
    seen, pages = page_through(admin, "/results/results_books")
    assert len(seen) == len(set(seen)) == len(inserted) == 3121
    assert seen == [str(i) for i in reversed(inserted)]
    assert pages == 63
    up, _ = page_through(admin, "/results/results_books?sort=_at&dir=asc")
    assert up == [str(i) for i in inserted]
    filtered, _ = page_through(admin, "/results/results_books?q=n+>%3D+1000")
    assert filtered == [str(i) for i in reversed(inserted[1000:3000])]


def test_results_browser_shows_rows_without_at_after_the_stamped_ones(browser, spiders, store):
    """Rows stored without `_at` (before it existed, or by other code) in an
    `_at`-indexed collection come after the stamped rows, newest `_id` first
    (and before them in ascending order): none is hidden by the default order."""
    coll = store.results("results_books")
    old = [{"_id": ObjectId(), "title": "old"} for _ in range(70)]
    coll.insert_many(old)
    stamped = [{"_id": ObjectId(), "title": "new", "_at": 1e9 + n} for n in range(80)]
    coll.insert_many(stamped)
    later = [{"_id": ObjectId(), "title": "no _at, written later"} for _ in range(30)]
    coll.insert_many(later)
    admin = browser("admin")
    unstamped = sorted(old + later, key=lambda d: d["_id"])
    seen, _ = page_through(admin, "/results/results_books")
    assert seen == [str(d["_id"]) for d in reversed(stamped)] + \
        [str(d["_id"]) for d in reversed(unstamped)]
    seen, _ = page_through(admin, "/results/results_books?sort=_at&dir=asc")
    assert seen == [str(d["_id"]) for d in unstamped + stamped]


def test_results_collection_without_the_at_index_pages_by_id(browser, spiders, store):
    """A collection written by other code (no `_at` index) is shown by `_id`, newest first."""
    coll = store.db["results_own_driver"]
    docs = [{"_id": ObjectId(), "n": n, "_at": float(n % 3)} for n in range(130)]
    coll.insert_many(docs)
    admin = browser("admin")
    first = admin.get("/results/results_own_driver").data.decode()
    assert 'name="sort" value="_id"' in first
    seen, pages = page_through(admin, "/results/results_own_driver")
    assert seen == [str(d["_id"]) for d in reversed(docs)] and pages == 3
    assert all(info["key"][0][0] != "_at" for info in coll.index_information().values())
