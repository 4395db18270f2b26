"""Direct store access for spiders written for Crawlab's SDK: off by default,
switched only by an admin (API and project page), and only then does a
spider get the store's address (CRAWLAB_MONGO_*)."""

from conftest import wait_task
from test_node import emb, run  # noqa: F401  (the embedded-broker platform fixture)
from test_ui import Browser, app, browser, spiders  # noqa: F401


def test_only_an_admin_switches_it_and_the_api_says_so(client, auth, store, spiders):
    """Read by any role; an operator's switch is 403; bad bodies are 400."""
    url = "/api/v1/projects/books/store-access"
    assert client.get(url, headers=auth.viewer).get_json()["enabled"] is False
    response = client.put(url, json={"enabled": True}, headers=auth.operator)
    assert response.status_code == 403 and "admin" in response.get_json()["error"]
    for body in ({"enabled": "yes"}, {}, {"enabled": True, "x": 1}, ["enabled"]):
        assert client.put(url, json=body, headers=auth.admin).status_code == 400
    assert client.put("/api/v1/projects/nope/store-access", json={"enabled": True},
                      headers=auth.admin).status_code == 404
    response = client.put(url, json={"enabled": True}, headers=auth.admin)
    assert response.status_code == 200 and response.get_json()["enabled"] is True
    assert store.projects.find_one({"_id": "books"})["store_access"]


def test_the_project_page_shows_it_and_an_admin_switches_it(browser, store, spiders):
    operator = browser("operator")
    page = operator.get("/projects/books").get_data(as_text=True)
    assert "Direct store access" in page and "Turn on" not in page
    assert operator.post("/projects/books/store-access", data={"enabled": "1"}).status_code == 403
    admin = browser("admin")
    admin.post("/projects/books/store-access", data={"enabled": "1"})
    page = admin.get("/projects/books").get_data(as_text=True)
    assert "Turn off" in page and "CRAWLAB_MONGO_" in page
    assert store.projects.find_one({"_id": "books"})["store_access"]


def test_only_a_project_with_access_gives_its_spiders_the_store(emb):
    config, store, broker, procs = emb
    procs.node(store)
    first = run(config, store, broker, "echo_args")
    wait_task(store, first)
    assert "CRAWLAB_MONGO_HOST" not in store.results("results_echo_args").find_one(
        {"_tid": first})["env"]
    project = store.spiders.find_one({"_id": "echo_args"})["project"]
    store.projects.update_one({"_id": project}, {"$set": {"store_access": True}})
    second = run(config, store, broker, "echo_args")
    wait_task(store, second)
    env = store.results("results_echo_args").find_one({"_tid": second})["env"]
    assert env["CRAWLAB_MONGO_HOST"] == "127.0.0.1"
    assert env["CRAWLAB_MONGO_PORT"] == config.mongo_uri.rsplit(":", 1)[1]
