"""Tests for the bundled demo site (spiders/demosite) and the two bundled
spider projects that crawl it (spiders/books, spiders/plain_catalogue)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from html import escape
from pathlib import Path

import pytest

from spiders.demosite import catalogue
from spiders.demosite.server import start_in_thread

REPO_ROOT = Path(__file__).resolve().parents[1]
SPIDERS_DIR = REPO_ROOT / "spiders"
BOOKS_DIR = SPIDERS_DIR / "books"
PLAIN_DIR = SPIDERS_DIR / "plain_catalogue"

BOOK_FIELDS = {"title", "price", "currency", "availability", "rating", "upc", "category", "url"}


# --------------------------------------------------------------------------
# helpers / fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site():
    running = start_in_thread(host="127.0.0.1", port=0)
    try:
        yield running
    finally:
        running.stop()


def get(url: str, timeout: float = 10.0) -> tuple[int, str, dict]:
    """GET url -> (status, body text, headers); HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8"), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8"), dict(exc.headers)


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
    env.pop("CRAWLFLEET_TASK_ID", None)
    env.pop("CRAWLFLEET_ARGS", None)
    env.update(extra)
    return env


def kill_group(proc: subprocess.Popen) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with suppress(Exception):
        proc.wait(timeout=5)


def run(cmd: list[str], cwd: Path, env: dict, timeout: float = 60.0) -> tuple[int, str, str]:
    """Run cmd in its own process group; always kill the group afterwards."""
    proc = subprocess.Popen(
        cmd,
        cwd=str(cwd),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    finally:
        kill_group(proc)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def json_objects(text: str) -> list[dict]:
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        with suppress(ValueError):
            obj = json.loads(line)
            if isinstance(obj, dict):
                found.append(obj)
    return found


# --------------------------------------------------------------------------
# catalogue data
# --------------------------------------------------------------------------

def test_catalogue_constants_and_products():
    assert catalogue.PRODUCT_COUNT == 300
    assert catalogue.PAGE_SIZE == 20
    assert catalogue.PAGE_COUNT == 15
    assert len(catalogue.BROKEN_LINKS) == 3
    assert catalogue.SLOW_PATH == "/slow.html"
    products = catalogue.products()
    assert len(products) == 300
    assert len({p["title"] for p in products}) == 300
    assert len({p["path"] for p in products}) == 300
    assert not set(catalogue.BROKEN_LINKS) & {p["path"] for p in products}
    for p in products:
        assert re.fullmatch(r"/catalogue/[a-z0-9-]+_\d+/index\.html", p["path"])
        assert 1 <= p["rating"] <= 5
        assert p["availability"] >= 1
        assert p["price_text"] == f"\u00a3{p['price']:.2f}"
    titles = [p["title"] for p in products]
    assert any("Caf\u00e9" in t for t in titles)
    assert any("<script>" in t for t in titles)
    products[0]["title"] = "mutated"
    assert catalogue.products()[0]["title"] != "mutated"


def test_catalogue_is_deterministic_across_processes():
    code = (
        "import hashlib, json; from spiders.demosite import catalogue; "
        "print(hashlib.sha256(json.dumps(catalogue.products(), sort_keys=True).encode()).hexdigest())"
    )
    rc, out, err = run([sys.executable, "-c", code], cwd=REPO_ROOT, env=clean_env(), timeout=20)
    assert rc == 0, err
    here = hashlib.sha256(json.dumps(catalogue.products(), sort_keys=True).encode()).hexdigest()
    assert out.strip() == here


# --------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------

def test_home_and_robots(site):
    status, body, headers = get(site.url + "/")
    assert status == 200
    assert "text/html" in headers["Content-Type"] and "utf-8" in headers["Content-Type"]
    assert 'href="/catalogue/page-1.html"' in body

    status, body, _ = get(site.url + "/robots.txt")
    assert status == 200
    assert "User-agent: *" in body and "Disallow: /" not in body


def test_listing_pages(site):
    status, body, _ = get(site.url + "/catalogue/page-1.html")
    assert status == 200
    assert body.count('class="product_pod"') == 20
    assert '<li class="next"><a href="page-2.html">next</a></li>' in body
    assert f'href="{catalogue.SLOW_PATH}"' in body
    first = catalogue.products()[0]
    assert f'href="{first["path"][len("/catalogue/"):]}"' in body
    assert first["price_text"] in body

    status, body, _ = get(site.url + f"/catalogue/page-{catalogue.PAGE_COUNT}.html")
    assert status == 200
    assert body.count('class="product_pod"') == 20
    assert 'class="next"' not in body

    assert get(site.url + f"/catalogue/page-{catalogue.PAGE_COUNT + 1}.html")[0] == 404
    assert get(site.url + "/catalogue/page-0.html")[0] == 404
    # /catalogue/ redirects (urllib follows it) to page 1
    status, body, _ = get(site.url + "/catalogue/")
    assert status == 200 and "Page 1 of 15" in body


def test_detail_page_and_escaping(site):
    products = catalogue.products()
    special = next(p for p in products if "<script>" in p["title"])
    status, body, _ = get(site.url + special["path"])
    assert status == 200
    assert "<script>" not in body  # escaped everywhere
    assert f"<h1>{escape(special['title'])}</h1>" in body
    assert f'<p class="price_color">{special["price_text"]}</p>' in body
    assert f"In stock ({special['availability']} available)" in body
    word = catalogue.RATING_WORDS[special["rating"] - 1]
    assert f'<p class="star-rating {word}">' in body
    assert f"<tr><th>UPC</th><td>{special['upc']}</td></tr>" in body
    assert f"<tr><th>Category</th><td>{special['category']}</td></tr>" in body

    cafe = next(p for p in products if "Caf\u00e9" in p["title"])
    status, body, _ = get(site.url + cafe["path"])
    assert status == 200 and f"<h1>{cafe['title']}</h1>" in body


def test_broken_links_are_linked_and_404(site):
    listing = "".join(get(f"{site.url}/catalogue/page-{n}.html")[1] for n in range(1, catalogue.PAGE_COUNT + 1))
    for path in catalogue.BROKEN_LINKS:
        rel = path[len("/catalogue/"):]
        assert listing.count(f'href="{rel}"') == 1, path
        assert get(site.url + path)[0] == 404
    assert get(site.url + "/no/such/page.html")[0] == 404


def test_slow_page(site):
    start = time.monotonic()
    status, body, _ = get(site.url + catalogue.SLOW_PATH, timeout=10)
    elapsed = time.monotonic() - start
    assert status == 200 and "Slow page" in body
    assert catalogue.SLOW_DELAY - 0.1 <= elapsed < catalogue.SLOW_DELAY + 2


def test_many_concurrent_requests(site):
    paths = [p["path"] for p in catalogue.products()[:200]]
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=64) as pool:
        statuses = list(pool.map(lambda path: get(site.url + path)[0], paths))
    elapsed = time.monotonic() - start
    assert statuses == [200] * 200
    assert elapsed < 10, f"200 concurrent requests took {elapsed:.1f}s"


def test_cli_serves_from_any_directory_and_stops_on_sigterm(tmp_path):
    # run the package by path (no PYTHONPATH) from an unrelated directory
    env = clean_env()
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen(
        [sys.executable, str(SPIDERS_DIR / "demosite"), "--host", "127.0.0.1", "--port", "0"],
        cwd=str(tmp_path),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready, "demo site did not print its listening line"
        line = proc.stdout.readline().decode().strip()
        match = re.fullmatch(r"demo site listening on (http://127\.0\.0\.1:(\d+))", line)
        assert match, line
        assert int(match.group(2)) > 0
        status, body, _ = get(match.group(1) + "/catalogue/page-2.html")
        assert status == 200 and "Page 2 of 15" in body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read().decode().strip() == ""  # exactly one line
    finally:
        kill_group(proc)


# --------------------------------------------------------------------------
# bundled spiders
# --------------------------------------------------------------------------

def _scrapy_crawl(site, tmp_path: Path, *extra: str) -> list[dict]:
    out = tmp_path / "out.jsonl"
    rc, _, err = run(
        [sys.executable, "-m", "scrapy", "crawl", "books", "-O", str(out), *extra],
        cwd=BOOKS_DIR,
        env=clean_env(CRAWLFLEET_DEMO_URL=site.url),
        timeout=60,
    )
    assert rc == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    return read_jsonl(out)


def test_books_full_crawl(site, tmp_path):
    items = _scrapy_crawl(site, tmp_path)
    assert len(items) == catalogue.PRODUCT_COUNT
    expected = {site.url + p["path"]: p for p in catalogue.products()}
    assert {item["url"] for item in items} == set(expected)
    for item in items:
        assert set(item) == BOOK_FIELDS
        p = expected[item["url"]]
        assert item["title"] == p["title"]
        assert isinstance(item["price"], float) and item["price"] == p["price"]
        assert item["currency"] == "GBP"
        assert item["availability"] == p["availability"]
        assert item["rating"] == p["rating"]
        assert item["upc"] == p["upc"]
        assert item["category"] == p["category"]


def test_books_max_pages(site, tmp_path):
    items = _scrapy_crawl(site, tmp_path, "-a", "max_pages=2")
    assert len(items) == 2 * catalogue.PAGE_SIZE
    assert {item["url"] for item in items} == {site.url + p["path"] for p in catalogue.products()[:40]}


def test_books_project_does_not_import_crawlfleet():
    for path in (BOOKS_DIR / "books").rglob("*.py"):
        assert "crawlfleet" not in path.read_text(encoding="utf-8"), path


def test_plain_catalogue_manifest():
    manifest = json.loads((PLAIN_DIR / "crawlfleet.json").read_text(encoding="utf-8"))
    (spider,) = manifest["spiders"]
    assert spider["name"] == "plain_catalogue"
    assert spider["command"] == ["python", "main.py"]
    assert spider["description"]


def test_plain_catalogue_max_pages(site):
    env = clean_env()
    env.pop("CRAWLFLEET_DEMO_URL", None)
    # make crawlfleet.sdk importable if it exists; without CRAWLFLEET_TASK_ID it
    # prints items as JSON lines, exactly like main.py's own fallback
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    rc, out, err = run(
        [sys.executable, "main.py", f"--base_url={site.url}", "--max_pages=2"],
        cwd=PLAIN_DIR,
        env=env,
        timeout=30,
    )
    assert rc == 0, err[-3000:]
    items = [obj for obj in json_objects(out) if "title" in obj]
    assert len(items) == 40, out[-3000:]
    expected = {site.url + p["path"]: p for p in catalogue.products()[:40]}
    assert {item["url"] for item in items} == set(expected)
    for item in items:
        assert item["title"] == expected[item["url"]]["title"]
        assert isinstance(item["price"], float) and item["price"] == expected[item["url"]]["price"]
