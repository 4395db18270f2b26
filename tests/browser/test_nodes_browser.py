"""The Nodes page's controls in real headless Chromium against a real `crawlfleet up`:
label a node, run by label, drain it and enable it again, set its run slots; then its
history page: the charts of its samples and the task it ran."""

import time

from test_ui_browser import PASSWORD, page, platform, shot  # noqa: F401  the fixtures


def sign_in(page, url):  # noqa: F811
    page.goto(url + "/login")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def test_nodes_page_labels_drains_and_sets_slots(platform, page):  # noqa: F811
    url, _ = platform
    sign_in(page, url)
    page.goto(url + "/nodes")
    row = page.locator("#nodes-table tbody tr").first
    row.locator(".badge.online").wait_for()
    node_id = row.get_attribute("data-node")

    # labels: add two, typed into the form the self-refresh leaves alone
    field = page.locator(f"#labels-{node_id}")
    field.fill("region=eu, proxy=yes")
    field.press("Enter")
    page.locator(".flash.ok").wait_for()
    assert "labelled proxy=yes,region=eu" in page.inner_text(".flash.ok")
    row = page.locator(f"#node-{node_id}")
    assert row.locator(".label-chip .mono").all_inner_texts() == ["proxy=yes", "region=eu"]
    page.click(f"[aria-label='Remove label proxy from node {node_id}']")
    page.locator(".flash.ok").wait_for()
    assert page.locator(f"#node-{node_id} .label-chip .mono").all_inner_texts() == ["region=eu"]

    # a run asking for a label no node carries is refused with the reason
    page.goto(url + "/spiders/plain_catalogue")
    page.click("#run-button")
    page.fill("#run-labels-plain_catalogue", "region=mars")
    page.click("#run-dialog-plain_catalogue button[type=submit]")
    page.locator(".flash.error").wait_for()
    assert "no node carries the labels region=mars" in page.inner_text(".flash.error")

    # drain: idle, so drained at once; enable again
    page.goto(url + "/nodes")
    page.click(f"[aria-label='Drain node {node_id}']")
    page.locator(f"#node-{node_id} .badge.mode-drained").wait_for()
    shot(page, "nodes-drained")
    page.click(f"[aria-label='Enable node {node_id}']")
    page.locator(f"#node-{node_id} .badge.mode-enabled").wait_for()

    # run slots, live: the node reports them within its next heartbeat
    page.fill(f"#slots-{node_id}", "3")
    page.click(f"#node-{node_id} .slots-form button")
    page.locator(".flash.ok").wait_for()
    assert "(set; its own:" in page.inner_text(f"#node-{node_id} .node-slots")
    deadline = time.monotonic() + 30
    while "3 slot(s)" not in page.inner_text(f"#node-{node_id} .node-slots"):
        assert time.monotonic() < deadline, "the node did not take its 3 run slots"
        page.goto(url + "/nodes")
    shot(page, "nodes-controls")

    # a run lands on the only node; its page charts the node's samples and lists the task
    page.goto(url + "/spiders/plain_catalogue")
    page.click("#run-button")
    page.click("#run-dialog-plain_catalogue button[type=submit]")
    page.wait_for_url("**/tasks/**")
    task_id = page.url.rstrip("/").split("/")[-1]
    page.goto(url + "/nodes")
    page.click(f"#node-{node_id} a.node-link")
    page.wait_for_url(f"{url}/nodes/{node_id}")
    assert page.inner_text("h1") == node_id
    for metric in ("load", "memory_percent", "busy", "tasks"):
        assert page.locator(f"#node-history figure[data-metric={metric}] svg").count() == 1
    # one sample at least, from the node's first heartbeat: a point on the memory chart
    assert page.locator("figure[data-metric=memory_percent] .hit").count() >= 1
    deadline = time.monotonic() + 60
    while page.locator(f"#node-tasks-table tr[data-task='{task_id}']").count() == 0:
        assert time.monotonic() < deadline, "the task did not show on its node's page"
        page.reload()
    row = page.locator(f"#node-tasks-table tr[data-task='{task_id}']")
    assert "plain_catalogue" in row.inner_text()
    page.click("#history-window a:has-text('6 h')")
    page.wait_for_url(f"{url}/nodes/{node_id}?hours=6")
    assert "Last 6 h" in page.inner_text("#node-history h2")
    shot(page, "node-history")
    assert not page.problems, page.problems
