"""`make up` (issue 16, item 12): it passes ARGS to `crawlfleet up` and does not
reinstall when nothing changed since the last install (a dry run of make in a
copy of the Makefile, against a stand-in virtual environment)."""

import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def dry_run(folder, *args):
    # a make of its own, not a sub-make of the `make test` running this suite
    # (which would add "Entering/Leaving directory" lines)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    done = subprocess.run(["make", "--no-print-directory", "-n", "up", *args], cwd=folder,
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_up_passes_args_and_installs_only_when_pyproject_changed(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").touch()
    past = time.time() - 3600
    os.utime(tmp_path / "pyproject.toml", (past, past))

    first = dry_run(tmp_path, "ARGS=--port 9000 --demo-port 0")
    assert "pip install" in first  # never installed here yet
    installed = tmp_path / ".venv" / ".installed"
    installed.touch()
    # explicit times: file clocks can be coarser than the test is fast
    os.utime(installed, (past + 60, past + 60))

    again = dry_run(tmp_path, "ARGS=--port 9000 --demo-port 0")
    assert "pip install" not in again
    assert again.strip().splitlines()[-1] == ".venv/bin/crawlfleet up --port 9000 --demo-port 0"

    os.utime(tmp_path / "pyproject.toml", (past + 120, past + 120))  # a dependency changed
    assert "pip install" in dry_run(tmp_path)
