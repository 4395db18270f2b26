"""crawlfleet.packaging: deterministic packing, and unpacking that refuses hostile zips."""

import io
import os
import shutil
import stat
import tracemalloc
import uuid
import zipfile
from pathlib import Path

import pytest

from crawlfleet import packaging
from crawlfleet.errors import ProjectError


def make_project(folder):
    """A small project: a package, a data file and an executable script."""
    folder = Path(folder)
    (folder / "pkg").mkdir(parents=True)
    (folder / "pkg" / "__init__.py").write_text("")
    (folder / "pkg" / "spider.py").write_text("NAME = 'demo'\n")
    (folder / "data.txt").write_bytes(b"hello\x00world\n")
    (folder / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (folder / "run.sh").chmod(0o755)
    return folder


def zip_bytes(entries):
    """A zip made from (ZipInfo or name, bytes) pairs, deflated."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def snapshot(root):
    """Every path under `root`, so a test can prove nothing new appeared."""
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*"))


@pytest.fixture
def sandbox(tmp_path):
    """A destination folder nested in a watched tree: (dest, watched root, snapshot before)."""
    root = tmp_path / "sandbox"
    (root / "outer" / "inner").mkdir(parents=True)
    (root / "outer" / "keep.txt").write_text("keep")
    dest = root / "outer" / "inner" / "dest"
    return dest, root, snapshot(root)


def assert_nothing_outside(dest, root, before):
    """Only `dest` and what lies under it may have appeared under `root`."""
    rel_dest = str(dest.relative_to(root))
    after = [p for p in snapshot(root) if p != rel_dest and not p.startswith(rel_dest + os.sep)]
    assert after == before
    assert (root / "outer" / "keep.txt").read_text() == "keep"


# -- pack ---------------------------------------------------------------------


def test_pack_same_folder_gives_same_id_and_bytes(tmp_path):
    """Packing one folder twice gives the same version id, zip bytes and SHA-256."""
    folder = make_project(tmp_path / "p")
    first = packaging.pack("demo", folder)
    second = packaging.pack("demo", folder)
    assert first == second
    version_id, data, sha, files = first
    assert len(version_id) == 16
    assert files == ["data.txt", "pkg/__init__.py", "pkg/spider.py", "run.sh"]
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == files


def test_pack_ignores_location_and_timestamps(tmp_path):
    """A copy elsewhere with other mtimes packs to the very same id and bytes."""
    folder = make_project(tmp_path / "p")
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(folder, copy)
    for path in copy.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    assert packaging.pack("demo", folder) == packaging.pack("demo", copy)


def test_pack_one_changed_byte_changes_the_id(tmp_path):
    """Changing a single byte of one file gives a new version id and new zip."""
    folder = make_project(tmp_path / "p")
    before = packaging.pack("demo", folder)
    data = bytearray((folder / "data.txt").read_bytes())
    data[0] ^= 0x01
    (folder / "data.txt").write_bytes(bytes(data))
    after = packaging.pack("demo", folder)
    assert after[0] != before[0]
    assert after[2] != before[2]


def test_pack_id_depends_on_project_name_and_paths(tmp_path):
    """The same bytes under another project name or another path are another version."""
    folder = make_project(tmp_path / "p")
    base = packaging.pack("demo", folder)[0]
    assert packaging.pack("other", folder)[0] != base
    (folder / "data.txt").rename(folder / "data2.txt")
    assert packaging.pack("demo", folder)[0] != base


def test_pack_executable_bit_is_part_of_the_version(tmp_path):
    """Two trees whose zips differ (one exec bit) never share a version id."""
    folder = make_project(tmp_path / "p")
    before = packaging.pack("demo", folder)
    (folder / "run.sh").chmod(0o644)
    after = packaging.pack("demo", folder)
    assert after[1] != before[1]
    assert after[0] != before[0]


def test_pack_leaves_out_ignored_dirs_and_files(tmp_path):
    """__pycache__, .git, .scrapy, .pyc files and the like are not packed nor hashed."""
    folder = make_project(tmp_path / "p")
    before = packaging.pack("demo", folder)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0" * 10)
    (folder / "pkg" / "__pycache__").mkdir()
    (folder / "pkg" / "__pycache__" / "spider.cpython-311.pyc").write_bytes(b"junk")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / ".scrapy").mkdir()
    (folder / ".scrapy" / "httpcache").write_text("cache")
    (folder / "stray.pyc").write_bytes(b"junk")
    after = packaging.pack("demo", folder)
    assert after == before
    names = zipfile.ZipFile(io.BytesIO(after[1])).namelist()
    assert not any("__pycache__" in n or ".git" in n or n.endswith(".pyc") for n in names)


def test_pack_leaves_out_symlinks(tmp_path):
    """Symlinks (to files, to folders, dangling) are neither packed nor hashed."""
    folder = make_project(tmp_path / "p")
    before = packaging.pack("demo", folder)
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (folder / "link_out.txt").symlink_to(outside)
    (folder / "link_in.txt").symlink_to(folder / "data.txt")
    (folder / "dangling").symlink_to(tmp_path / "missing")
    after = packaging.pack("demo", folder)
    assert after == before
    assert b"secret" not in zipfile.ZipFile(io.BytesIO(after[1])).read("data.txt")


def test_pack_empty_folder_is_refused(tmp_path):
    """A folder with no packable file is a ProjectError, not an empty version."""
    folder = tmp_path / "empty"
    (folder / "__pycache__").mkdir(parents=True)
    (folder / "__pycache__" / "a.pyc").write_bytes(b"x")
    with pytest.raises(ProjectError, match="no files"):
        packaging.pack("empty", folder)


def test_pack_non_utf8_file_name_is_a_project_error(tmp_path):
    """A file whose name is not UTF-8 is refused with ProjectError, not UnicodeEncodeError."""
    folder = make_project(tmp_path / "p")
    with open(os.path.join(os.fsencode(folder), b"bad\xff.txt"), "wb") as f:
        f.write(b"x")
    with pytest.raises(ProjectError, match="not valid UTF-8"):
        packaging.pack("demo", folder)


# -- unpack: round trip -------------------------------------------------------


def test_unpack_round_trips_a_packed_project(tmp_path):
    """unpack(pack(folder)) gives back the same files, bytes and exec bits."""
    folder = make_project(tmp_path / "p")
    version_id, data, _sha, files = packaging.pack("demo", folder)
    dest = packaging.unpack(io.BytesIO(data), tmp_path / "out")
    assert dest == (tmp_path / "out").resolve()
    assert packaging.project_files(dest) == files
    for rel in files:
        assert (dest / rel).read_bytes() == (folder / rel).read_bytes()
    assert os.stat(dest / "run.sh").st_mode & 0o111
    assert not os.stat(dest / "data.txt").st_mode & 0o111
    assert packaging.pack("demo", dest)[0] == version_id


def test_unpack_reads_from_a_path(tmp_path):
    """unpack accepts a zip file path as well as a file object."""
    folder = make_project(tmp_path / "p")
    data = packaging.pack("demo", folder)[1]
    (tmp_path / "p.zip").write_bytes(data)
    dest = packaging.unpack(tmp_path / "p.zip", tmp_path / "out")
    assert (dest / "pkg" / "spider.py").read_text() == "NAME = 'demo'\n"


# -- unpack: hostile input ----------------------------------------------------


def test_unpack_random_bytes_is_not_a_zip(sandbox):
    """Random bytes are refused as 'not a valid zip file'."""
    dest, root, before = sandbox
    with pytest.raises(ProjectError, match="not a valid zip"):
        packaging.unpack(io.BytesIO(os.urandom(4096)), dest)
    assert snapshot(dest) == []
    assert_nothing_outside(dest, root, before)


def test_unpack_truncated_zip(tmp_path, sandbox):
    """A zip cut in half is refused with a ProjectError."""
    dest, root, before = sandbox
    data = packaging.pack("demo", make_project(tmp_path / "p"))[1]
    with pytest.raises(ProjectError, match="not a valid zip"):
        packaging.unpack(io.BytesIO(data[: len(data) // 2]), dest)
    assert_nothing_outside(dest, root, before)


def test_unpack_corrupt_entry_data(sandbox):
    """A zip whose compressed data is damaged is refused as a corrupt entry."""
    dest, root, before = sandbox
    data = bytearray(zip_bytes([("a.txt", os.urandom(1000) * 20)]))
    header = 30 + len("a.txt")  # local file header, no extra field
    for i in range(header + 10, header + 60):
        data[i] ^= 0xFF
    with pytest.raises(ProjectError, match="corrupt zip entry|not a valid zip"):
        packaging.unpack(io.BytesIO(bytes(data)), dest)
    assert_nothing_outside(dest, root, before)


@pytest.mark.parametrize("name", [
    "../evil.txt",
    "a/../../evil.txt",
    "ok/../../../evil.txt",
    "..\\evil.txt",
    "a\\..\\..\\evil.txt",
    "C:evil.txt",
    "..",
])
def test_unpack_refuses_paths_leaving_the_folder(sandbox, name):
    """Entries with '..', backslashes or drive letters are refused before anything is written."""
    dest, root, before = sandbox
    data = zip_bytes([("fine.txt", b"ok"), (name, b"evil")])
    with pytest.raises(ProjectError, match="unsafe path"):
        packaging.unpack(io.BytesIO(data), dest)
    assert_nothing_outside(dest, root, before)
    assert not list(Path(dest).rglob("*evil*"))


def test_unpack_refuses_absolute_path(sandbox):
    """An absolute entry such as /tmp/evil is refused and not written anywhere."""
    dest, root, before = sandbox
    target = Path("/tmp") / f"crawlfleet-evil-{uuid.uuid4().hex}"
    info = zipfile.ZipInfo(str(target))  # ZipInfo keeps the leading slash
    data = zip_bytes([(info, b"evil")])
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == [str(target)]
    with pytest.raises(ProjectError, match="unsafe path"):
        packaging.unpack(io.BytesIO(data), dest)
    assert not target.exists()
    assert_nothing_outside(dest, root, before)


def test_unpack_refuses_symlink_entry(sandbox):
    """An entry flagged S_IFLNK in external_attr is refused, not turned into a file or link."""
    dest, root, before = sandbox
    info = zipfile.ZipInfo("link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = zip_bytes([(info, b"../../outer/keep.txt")])
    with pytest.raises(ProjectError, match="symbolic link"):
        packaging.unpack(io.BytesIO(data), dest)
    assert not os.path.lexists(dest / "link")
    assert_nothing_outside(dest, root, before)


def test_unpack_does_not_follow_existing_symlink_in_dest(tmp_path):
    """A file entry under a symlinked folder already in dest cannot escape through it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside)
    with pytest.raises(ProjectError, match="unsafe path"):
        packaging.unpack(io.BytesIO(zip_bytes([("sub/evil.txt", b"evil")])), dest)
    assert list(outside.iterdir()) == []


def test_unpack_refuses_zip_bomb_while_reading(sandbox):
    """50 MB of zeros in a ~50 KB zip is stopped early by its ratio, in little memory."""
    dest, root, before = sandbox
    bomb_size = 50 << 20
    data = zip_bytes([("bomb.bin", bytes(bomb_size))])
    assert len(data) < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(ProjectError, match="zip bomb"):
            packaging.unpack(io.BytesIO(data), dest)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak memory {peak} bytes"
    partial = dest / "bomb.bin"
    if partial.exists():
        assert partial.stat().st_size <= bomb_size // 4
    assert_nothing_outside(dest, root, before)


def test_unpack_refuses_too_many_entries(sandbox):
    """More entries than max_files is refused before any file is written."""
    dest, root, before = sandbox
    data = zip_bytes([(f"f{i}.txt", b"x") for i in range(6)])
    with pytest.raises(ProjectError, match="6 entries, more than the limit of 5"):
        packaging.unpack(io.BytesIO(data), dest, max_files=5)
    assert snapshot(dest) == []
    assert_nothing_outside(dest, root, before)
    # exactly at the limit is fine
    packaging.unpack(io.BytesIO(data), dest, max_files=6)
    assert len(snapshot(dest)) == 6


def test_unpack_refuses_total_size_over_max_total(sandbox):
    """Files adding up to more than max_total bytes are refused while reading."""
    dest, root, before = sandbox
    chunk = os.urandom(40_000)  # incompressible: no ratio alarm
    data = zip_bytes([("a.bin", chunk), ("b.bin", chunk), ("c.bin", chunk)])
    with pytest.raises(ProjectError, match="more than 100000 bytes"):
        packaging.unpack(io.BytesIO(data), dest, max_total=100_000)
    assert sum(p.stat().st_size for p in Path(dest).rglob("*") if p.is_file()) <= 100_000
    assert_nothing_outside(dest, root, before)


@pytest.mark.parametrize("entries", [
    [("a", b"file"), ("a/b.txt", b"under a file")],
    [("a/b.txt", b"x"), ("a", b"now a file")],
    [(".", b"the folder itself")],
    [("a/", b""), ("a", b"file over folder")],
])
def test_unpack_conflicting_entries_are_a_project_error(sandbox, entries):
    """Entries that clash with each other (file vs folder) give ProjectError, not OSError."""
    dest, root, before = sandbox
    with pytest.raises(ProjectError):
        packaging.unpack(io.BytesIO(zip_bytes(entries)), dest)
    assert_nothing_outside(dest, root, before)


def patched_zip(local_offset, central_offset, value, *, or_bits=False):
    """A one-entry stored zip with a 2-byte field of both headers set (or OR-ed) to `value`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.txt", b"data")
    data = bytearray(buf.getvalue())
    for signature, offset in ((b"PK\x03\x04", local_offset), (b"PK\x01\x02", central_offset)):
        at = data.find(signature) + offset
        old = int.from_bytes(data[at:at + 2], "little")
        data[at:at + 2] = ((old | value) if or_bits else value).to_bytes(2, "little")
    return bytes(data)


def test_unpack_encrypted_entry_is_a_project_error(sandbox):
    """An entry flagged as encrypted is refused with ProjectError, not RuntimeError."""
    dest, root, before = sandbox
    data = patched_zip(6, 8, 0x1, or_bits=True)
    with pytest.raises(ProjectError, match="encrypted"):
        packaging.unpack(io.BytesIO(data), dest)
    assert_nothing_outside(dest, root, before)


def test_unpack_unknown_compression_is_a_project_error(sandbox):
    """An entry with an unsupported compression method is refused with ProjectError."""
    dest, root, before = sandbox
    data = patched_zip(8, 10, 99)
    with pytest.raises(ProjectError, match="compression method"):
        packaging.unpack(io.BytesIO(data), dest)
    assert_nothing_outside(dest, root, before)
