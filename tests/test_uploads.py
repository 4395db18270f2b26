"""Zip uploads (master/uploads.py through POST /api/v1/projects): a project
arrives, is unpacked in a private temporary folder, inspected and registered;
every bad upload is refused with a clear 400/409/413 and leaves nothing
behind."""

import io
import os
import resource
import socket
import stat
import threading
import time
import tracemalloc
import zipfile

import pytest

from helpers import task_log, wait_task
from crawlfleet.broker import Broker
from deploy_helpers import (BUNDLED, PROJECTS, app, assert_nothing_deployed, auth,  # noqa: F401
                            client, copy_project, live, sandbox_tmp, upload, zip_folder)
from master import dispatch, uploads


@pytest.fixture
def shop(tmp_path):
    """A copy of the bundled plain_catalogue project, as a user's own folder."""
    return copy_project(BUNDLED / "plain_catalogue", tmp_path / "src" / "shop")


# -- what works ------------------------------------------------------------------

def test_upload_registers_a_version_and_its_spiders(client, auth, store, config, shop,
                                                    sandbox_tmp):
    """A zip with the project in one top folder becomes project <folder>, version
    current, spiders listed; the temporary files are gone afterwards."""
    response = upload(client, auth.operator, zip_folder(shop, top="shop"))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["project"] == "shop" and body["new"] is True
    assert body["spiders"] == ["plain_catalogue"] and body["kind"] == "command"
    version = store.versions.find_one({"_id": body["version"]})
    assert version["source"] == "upload" and version["label"] == body["label"]
    assert body["label"].endswith("Z")  # default label: the upload time, UTC
    assert store.projects.find_one({"_id": "shop"})["current_version"] == body["version"]
    spider = store.spiders.find_one({"_id": "plain_catalogue"})
    assert spider["project"] == "shop" and spider["version"] == body["version"]
    assert list((config.home_path / "tmp").iterdir()) == []
    assert list(sandbox_tmp.iterdir()) == []


def test_same_content_again_is_the_same_version(client, auth, store, shop):
    """Uploading identical content answers 200 with the existing version and label."""
    first = upload(client, auth.admin, zip_folder(shop, top="shop"), label="one").get_json()
    again = upload(client, auth.admin, zip_folder(shop, top="shop"), label="two")
    assert again.status_code == 200
    assert again.get_json()["version"] == first["version"]
    assert again.get_json()["label"] == "one" and again.get_json()["new"] is False
    assert store.versions.count_documents({}) == 1


def test_uploaded_version_is_what_the_folder_would_be(client, auth, store, config, shop):
    """The version id is the content hash: the same as discovering the folder."""
    from crawlfleet import packaging

    body = upload(client, auth.admin, zip_folder(shop, top="shop")).get_json()
    assert body["version"] == packaging.content_hash("shop", shop)[:16]


def test_project_name_field_wins_then_top_folder_then_scrapy_cfg(client, auth, store, tmp_path,
                                                                 shop):
    """Name: the form field, else the zip's top folder, else scrapy.cfg's [deploy] project."""
    named = upload(client, auth.admin, zip_folder(shop, top="shop"), project="renamed")
    assert named.get_json()["project"] == "renamed"
    store.spiders.delete_many({})
    books = copy_project(BUNDLED / "books", tmp_path / "src" / "anything")
    flat = upload(client, auth.admin, zip_folder(books))  # no top folder
    assert flat.status_code == 201, flat.get_json()
    assert flat.get_json()["project"] == "books" and flat.get_json()["spiders"] == ["books"]


def test_a_zip_with_no_name_anywhere_is_refused(client, auth, store, config, tmp_path):
    """A flat zip of a manifest project (no top folder, no scrapy.cfg) needs a name."""
    folder = copy_project(BUNDLED / "plain_catalogue", tmp_path / "p")
    response = upload(client, auth.admin, zip_folder(folder))
    assert response.status_code == 400
    assert "name the project" in response.get_json()["error"]
    assert_nothing_deployed(store, config)


def test_invalid_project_name_is_refused(client, auth, store, config, shop):
    response = upload(client, auth.admin, zip_folder(shop, top="shop"), project="../etc")
    assert response.status_code == 400 and "invalid project name" in response.get_json()["error"]
    assert_nothing_deployed(store, config)


def test_upload_needs_an_operator_or_admin_token(client, auth, store, config, shop):
    """No token: 401; a viewer token: 403; nothing deployed either way."""
    data = zip_folder(shop, top="shop")
    assert upload(client, {}, data).status_code == 401
    assert upload(client, auth.viewer, data).status_code == 403
    assert_nothing_deployed(store, config)


def test_unknown_form_field_or_missing_file_is_400(client, auth, store, config, shop):
    data = zip_folder(shop, top="shop")
    response = upload(client, auth.admin, data, colour="blue")
    assert response.status_code == 400 and "colour" in response.get_json()["error"]
    response = client.post("/api/v1/projects", data={"project": "x"}, headers=auth.admin,
                           content_type="multipart/form-data")
    assert response.status_code == 400 and "`file`" in response.get_json()["error"]
    assert_nothing_deployed(store, config)


def test_uploaded_project_runs_on_a_real_node(client, auth, store, config, shop, processes):
    """A node fetches the uploaded version from GridFS and runs it; the task records it."""
    body = upload(client, auth.admin, zip_folder(shop, top="shop"), label="first").get_json()
    processes.node(store)
    broker = Broker(config)
    try:
        task = dispatch.run_spider(store, broker, config, "plain_catalogue",
                                   args={"max_pages": "1"})[0]
    finally:
        broker.close()
    done = wait_task(store, task["_id"], timeout=60)
    assert done["status"] == "finished", task_log(store, task["_id"])
    assert done["version"] == body["version"] and done["project"] == "shop"
    assert store.results("results_plain_catalogue").count_documents({"_tid": task["_id"]}) == 20


# -- bad input: each refused, nothing written --------------------------------------

def refused(client, auth, data, status=400, **fields):
    response = upload(client, auth.admin, data, **fields)
    assert response.status_code == status, response.get_json()
    return response.get_json()["error"]


def test_not_a_zip(client, auth, store, config, sandbox_tmp):
    error = refused(client, auth, b"this is not a zip file at all" * 100)
    assert "not a valid zip" in error
    assert_nothing_deployed(store, config, sandbox_tmp)


def test_truncated_zip(client, auth, store, config, shop, sandbox_tmp):
    data = zip_folder(shop, top="shop")
    error = refused(client, auth, data[: len(data) // 2])
    assert "zip" in error
    assert_nothing_deployed(store, config, sandbox_tmp)


def zip_entries(*entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry in entries:
            if isinstance(entry, zipfile.ZipInfo):
                zf.writestr(entry, "target")
            else:
                zf.writestr(*entry)
    return buf.getvalue()


def manifest():
    return ("p/crawlfleet.json",
            '{"spiders": [{"name": "s1", "command": ["python", "main.py"]}]}')


@pytest.mark.parametrize("name", ["../evil.py", "p/../../evil.py", "/tmp/evil.py",
                                  "p\\..\\evil.py"])
def test_zip_slip_entries(client, auth, store, config, tmp_path, sandbox_tmp, name):
    """Entries with `..` or absolute paths are refused before anything is written."""
    error = refused(client, auth, zip_entries(manifest(), (name, "print('pwned')")))
    assert "unsafe path" in error
    assert not (tmp_path / "evil.py").exists() and not (config.home_path / "evil.py").exists()
    assert_nothing_deployed(store, config, sandbox_tmp)


def test_symlink_entry(client, auth, store, config, sandbox_tmp):
    link = zipfile.ZipInfo("p/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    error = refused(client, auth, zip_entries(manifest(), link))
    assert "symbolic links" in error
    assert_nothing_deployed(store, config, sandbox_tmp)


def test_zip_bomb_is_stopped_while_unpacking(client, auth, store, config, sandbox_tmp):
    """A 300 MB entry of zeros (about 300 KB compressed) is refused past its
    first MiB: the ratio is checked while reading, and memory stays flat."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(*manifest())
        with zf.open("p/bomb.bin", "w") as out:
            block = bytes(1 << 20)
            for _ in range(300):
                out.write(block)
    tracemalloc.start()
    try:
        error = refused(client, auth, buf.getvalue())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "zip bomb" in error
    assert peak < 32 * 1024 * 1024
    assert_nothing_deployed(store, config, sandbox_tmp)


def test_total_unpacked_size_is_limited(client, auth, store, config, app, sandbox_tmp):
    """Plain (incompressible) content past max_project_bytes is refused while unpacking."""
    app.extensions["crawlfleet"].config = config.replace(max_project_bytes=2 * 1024 * 1024)
    files = [manifest()] + [(f"p/data{i}.bin", os.urandom(512 * 1024)) for i in range(6)]
    error = refused(client, auth, zip_entries(*files))
    assert "more than 2097152 bytes" in error
    assert_nothing_deployed(store, config, sandbox_tmp)


def test_too_many_files(client, auth, store, config, app, sandbox_tmp):
    app.extensions["crawlfleet"].config = config.replace(max_project_files=50)
    files = [manifest()] + [(f"p/f{i}.txt", "x") for i in range(60)]
    error = refused(client, auth, zip_entries(*files))
    assert "more than the limit of 50" in error
    assert_nothing_deployed(store, config, sandbox_tmp)


def test_project_with_no_spiders(client, auth, store, config, sandbox_tmp):
    error = refused(client, auth, zip_folder(PROJECTS / "no_spiders", top="no_spiders"))
    assert "defines no spiders" in error
    assert_nothing_deployed(store, config, sandbox_tmp)


def test_zip_without_a_project(client, auth, store, config, sandbox_tmp):
    error = refused(client, auth, zip_entries(("notes/readme.txt", "hello")))
    assert "no scrapy.cfg or crawlfleet.json" in error
    assert_nothing_deployed(store, config, sandbox_tmp)


def test_scrapy_list_that_hangs_times_out(client, auth, store, config, app, sandbox_tmp):
    app.extensions["crawlfleet"].config = config.replace(scrapy_list_timeout=3.0)
    started = time.monotonic()
    error = refused(client, auth, zip_folder(PROJECTS / "list_hangs", top="list_hangs"))
    assert "did not finish within 3 s" in error
    assert time.monotonic() - started < 30
    assert_nothing_deployed(store, config, sandbox_tmp)


def test_scrapy_list_that_crashes_shows_its_error(client, auth, store, config, sandbox_tmp):
    error = refused(client, auth, zip_folder(PROJECTS / "list_crashes", top="list_crashes"))
    assert "`scrapy list` failed with exit code" in error
    assert "Error" in error  # the traceback's last lines are quoted
    assert_nothing_deployed(store, config, sandbox_tmp)


def test_spider_name_of_another_project_is_a_conflict(client, auth, store, config, shop):
    """A spider already owned by another project: 409, and the upload changes nothing."""
    upload(client, auth.admin, zip_folder(shop, top="shop"))
    before = (list(store.versions.find()), list(store.spiders.find()),
              len(list(store.db["files.files"].find({}, {"_id": 1}))))
    response = upload(client, auth.admin, zip_folder(shop, top="other"))
    assert response.status_code == 409
    assert "'plain_catalogue' (project 'shop')" in response.get_json()["error"]
    after = (list(store.versions.find()), list(store.spiders.find()),
             len(list(store.db["files.files"].find({}, {"_id": 1}))))
    assert after == before and store.projects.find_one({"_id": "other"}) is None


# -- the size cap, against a real HTTP server ----------------------------------------

def small_cap(app, config, limit=1024 * 1024):
    app.extensions["crawlfleet"].config = config.replace(max_upload_bytes=limit)


def read_response(sock, timeout=10.0):
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_declared_body_over_the_limit_is_413_before_it_is_read(live, app, config, store, auth,
                                                               sandbox_tmp):
    """Content-Length says 1 GiB: the answer is 413 although only a few bytes were sent."""
    small_cap(app, config)
    with socket.create_connection(("127.0.0.1", live.port)) as sock:
        sock.sendall(
            b"POST /api/v1/projects HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {auth.admin_token}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=XyZ\r\n"
            + f"Content-Length: {1 << 30}\r\n\r\n".encode()
            + b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.zip\"\r\n\r\n")
        head = read_response(sock)
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    assert_nothing_deployed(store, config, sandbox_tmp)


def test_streamed_body_over_the_limit_is_cut_off_with_bounded_memory(live, app, config, store,
                                                                     auth, sandbox_tmp):
    """A chunked body with no length, 256 MiB long: the server stops reading past
    the 1 MiB cap and answers 413; neither the bytes it took nor the memory of
    the process grow with the body."""
    small_cap(app, config)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    sent = 0
    answer = {}
    sock = socket.create_connection(("127.0.0.1", live.port))

    def reader():
        try:
            answer["head"] = read_response(sock, timeout=60)
        except OSError as exc:
            answer["error"] = exc

    sock.sendall(
        b"POST /api/v1/projects HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {auth.admin_token}\r\n".encode()
        + b"Content-Type: multipart/form-data; boundary=XyZ\r\n"
        + b"Transfer-Encoding: chunked\r\n\r\n")
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    first = (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
             b"filename=\"a.zip\"\r\n\r\n")
    block = os.urandom(64 * 1024)
    try:
        sock.sendall(b"%x\r\n%s\r\n" % (len(first), first))
        sock.settimeout(5)
        while sent < 256 * 1024 * 1024 and "head" not in answer:
            sock.sendall(b"%x\r\n%s\r\n" % (len(block), block))
            sent += len(block)
    except OSError:
        pass  # the server closed the connection: it stopped reading
    thread.join(30)
    sock.close()
    assert answer.get("head", b"").startswith(b"HTTP/1.1 413"), answer
    assert sent < 64 * 1024 * 1024, sent  # socket buffers, not the whole body
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert rss_after - rss_before < 64 * 1024 * 1024
    assert_nothing_deployed(store, config, sandbox_tmp)


def test_deploy_zip_takes_a_path_too(store, config, shop, tmp_path):
    """master.uploads works without the web layer (the CLI of an admin, tests)."""
    path = tmp_path / "shop.zip"
    path.write_bytes(zip_folder(shop, top="shop"))
    result = uploads.deploy_zip(store, config, path, label="from-path")
    assert result["project"] == "shop" and result["label"] == "from-path"


def test_under_gunicorn_an_upload_works_and_a_huge_one_is_413_at_once(processes, store, config,
                                                                      auth, shop):
    """`crawlfleet web` (gunicorn, gthread) takes a zip upload and answers a declared
    1 GiB body with 413 at once, without reading it."""
    import requests

    from helpers import free_port, process_env, wait_for_port

    port = free_port()
    env = process_env(config, CRAWLFLEET_MAX_UPLOAD_BYTES=1024 * 1024,
                      CRAWLFLEET_WEB_WORKERS=1, CRAWLFLEET_WEB_THREADS=4)
    web = processes.start("web", "--bind", f"127.0.0.1:{port}", env=env, name="web")
    wait_for_port(port, timeout=60, proc=web)
    response = requests.post(f"http://127.0.0.1:{port}/api/v1/projects", headers=auth.admin,
                             files={"file": ("shop.zip", zip_folder(shop, top="shop"))},
                             data={"label": "via-gunicorn"}, timeout=120)
    assert response.status_code == 201, response.text
    assert response.json()["label"] == "via-gunicorn"
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /api/v1/projects HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {auth.admin_token}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=XyZ\r\n"
            + f"Content-Length: {1 << 30}\r\n\r\n".encode())
        head = read_response(sock)
    assert head.startswith(b"HTTP/1.1 413"), head[:300]
    assert time.monotonic() - started < 10


def test_scratch_folders_left_by_a_killed_process_are_swept(config):
    """A deploy removes scratch folders older than a day (a crash left them)."""
    root = uploads.scratch_root(config)
    old = root / "upload-leftover"
    (old / "files").mkdir(parents=True)
    os.utime(old, (time.time() - 2 * uploads.STALE_AFTER,) * 2)
    recent = root / "upload-busy"
    recent.mkdir()
    with uploads.scratch(config, "upload-") as path:
        assert path.parent == root
    assert not old.exists() and recent.exists()
