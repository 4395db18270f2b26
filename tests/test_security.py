"""The hardening of the web surfaces (issue 16, items 1-3): a request is either
token- or session-authenticated, password guesses are limited per account and
per address with counters shared by every web server, and sessions end on the
server when the user signs out or their password or role changes."""

import base64

import pytest

from conftest import make_config
from crawlfleet import users
from test_ui import PASSWORD, Browser
from web import create_app


def signed_in(app, store, role):
    return Browser(app, store, role)


@pytest.fixture
def app(config, store, monkeypatch):
    app = make_app(config, monkeypatch)
    yield app
    app.extensions["crawlfleet"].close()


@pytest.fixture
def limited_config(tmp_path, mongo_server, request):
    """Small limits so that a test reaches them quickly; storage per the param."""
    storage = getattr(request, "param", "")
    return make_config(tmp_path, mongo_server, login_account_limit="4 per 5 minutes",
                       login_address_limit="9 per 5 minutes", ratelimit_storage=storage)


def make_app(config, monkeypatch):
    monkeypatch.setenv("CRAWLFLEET_ADMIN_PASSWORD", PASSWORD)
    app = create_app(config)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def apps(limited_config, store_of, monkeypatch):
    """Two apps on one store: two web servers (or gunicorn workers) behind one address."""
    made = [make_app(limited_config, monkeypatch) for _ in range(2)]
    yield made
    for app in made:
        app.extensions["crawlfleet"].close()


@pytest.fixture
def store_of(limited_config):
    from crawlfleet.store import Store

    store = Store(limited_config)
    store.ensure_indexes()
    yield store
    store.client.drop_database(limited_config.mongo_db)
    store.close()


# -- 1: an Authorization header never rides on the session cookie ---------------------

def test_a_forged_authorization_header_does_not_skip_csrf(app, store):
    """`-b $ADMIN_COOKIE -H 'Authorization: x'` made an admin token without a CSRF
    token; now the header makes the request token-authenticated and the cookie
    counts for nothing."""
    admin = signed_in(app, store, "admin")
    before = store.tokens.count_documents({})
    for header in ("x", "Bearer nonsense", "Basic " + base64.b64encode(b"a:b").decode()):
        response = admin.client.post("/admin/tokens", data={"name": "t", "role": "admin"},
                                     headers={"Authorization": header})
        assert response.status_code in (302, 401, 403), response.status_code
        assert "/login" in response.headers.get("Location", "/login")
        api = admin.client.post("/api/v1/spiders/rescan", headers={"Authorization": header})
        assert api.status_code == 401
    assert store.tokens.count_documents({}) == before
    # the same browser without the header still works, with its CSRF token
    assert admin.post("/admin/tokens", {"name": "ok", "role": "viewer"}).status_code == 200
    assert store.tokens.count_documents({}) == before + 1


# -- 2: password guesses ------------------------------------------------------------------

@pytest.mark.parametrize("limited_config", ["", "redis://127.0.0.1:6379/7"], indirect=True,
                         ids=["store", "redis"])
def test_login_locks_an_account_after_repeated_failures_on_every_server(apps, store_of):
    """Wrong passwords for one account, spread over two apps (as over gunicorn
    workers or web servers): past the limit even the right one gets 429 with
    Retry-After, on both; another account from elsewhere is not affected."""
    first, second = apps
    store_of.users.delete_many({})
    users.create_user(store_of, "admin", PASSWORD, "admin")
    users.create_user(store_of, "bob", PASSWORD, "viewer")
    first.extensions["crawlfleet_guard"].limiter.storage.reset()  # Redis db 7 is shared
    for n in range(4):
        anon = Browser(first if n % 2 else second, store_of, None)
        assert anon.login("admin", "wrong password").status_code == 401
    for app in apps:
        locked = Browser(app, store_of, None).login("admin", PASSWORD)
        assert locked.status_code == 429
        assert 0 < int(locked.headers["Retry-After"]) <= 300
        assert b"too many failed sign-ins" in locked.data.lower()
    assert Browser(first, store_of, None).login("bob", PASSWORD).status_code == 302


@pytest.mark.parametrize("limited_config", [""], indirect=True)
def test_one_address_is_limited_across_accounts(apps, store_of):
    """Guessing many accounts from one address stops at the address limit."""
    app = apps[0]
    users.create_user(store_of, "carol", PASSWORD, "viewer")
    statuses = [Browser(app, store_of, None).login(f"user{n}", "wrong").status_code
                for n in range(12)]
    assert statuses[:9] == [401] * 9 and set(statuses[9:]) == {429}
    assert Browser(app, store_of, None).login("carol", PASSWORD).status_code == 429


@pytest.mark.parametrize("limited_config", [""], indirect=True)
def test_scrapyd_basic_auth_shares_the_limit_and_tokens_are_not_slowed(apps, store_of):
    """Scrapyd's basic auth takes UI passwords: guesses there count against the
    same account; an API token (bearer, or as the basic password) is never slowed."""
    from crawlfleet.tokens import create_token

    app = apps[0]
    client = app.test_client()
    users.create_user(store_of, "dave", PASSWORD, "operator")
    token = create_token(store_of, "ci", "viewer")

    def basic(name, password):
        raw = base64.b64encode(f"{name}:{password}".encode()).decode()
        return client.get("/scrapyd/listprojects.json", headers={"Authorization": "Basic " + raw})

    assert basic("dave", PASSWORD).status_code == 200
    assert [basic("dave", "wrong").status_code for _ in range(4)] == [401] * 4
    locked = basic("dave", PASSWORD)
    assert locked.status_code == 429 and locked.json["status"] == "error"
    assert int(locked.headers["Retry-After"]) > 0
    assert Browser(app, store_of, None).login("dave", PASSWORD).status_code == 429
    for _ in range(30):
        assert basic("anyone", token).status_code == 200
        assert client.get("/api/v1/spiders",
                          headers={"Authorization": "Bearer " + token}).status_code == 200
    assert client.get("/api/v1/spiders",
                      headers={"Authorization": "Bearer cft_wrong"}).status_code == 401


def test_failed_sign_ins_are_logged(app, store, caplog):
    anon = Browser(app, store, None)
    with caplog.at_level("WARNING", logger="web.guard"):
        anon.login("admin", "not the password")
    assert any("failed password check for user 'admin'" in r.getMessage()
               for r in caplog.records)


# -- 3: sessions end on the server ---------------------------------------------------------

def test_logout_makes_the_old_cookie_worthless(app, store):
    """A copy of the cookie taken before signing out no longer opens a page."""
    admin = signed_in(app, store, "admin")
    stolen = admin.client.get_cookie("crawlfleet_session").value
    assert admin.post("/logout").status_code == 302
    thief = app.test_client()
    thief.set_cookie("crawlfleet_session", stolen)
    response = thief.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert thief.get("/api/v1/spiders").status_code == 401


def test_password_change_ends_the_users_other_sessions(app, store):
    """Changing one's password keeps this session and ends the others."""
    here = signed_in(app, store, "operator")
    there = Browser(app, store, None)
    assert there.login("u-operator", PASSWORD).status_code == 302
    assert here.post("/account", {"current": PASSWORD, "password": "another-pass-1",
                                  "again": "another-pass-1"}).status_code == 302
    assert here.get("/").status_code == 200
    assert there.get("/").status_code == 302


def test_role_change_ends_the_users_sessions(app, store):
    admin = signed_in(app, store, "admin")
    op = signed_in(app, store, "operator")
    assert op.get("/").status_code == 200
    admin.post("/admin/users/u-operator/role", {"role": "viewer"})
    assert users.get_user(store, "u-operator")["role"] == "viewer"
    assert op.get("/").status_code == 302
