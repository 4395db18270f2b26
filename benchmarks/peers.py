"""The peers the benchmarks measure crawlfleet against, in the same run:
Scrapyd 1.6 from PyPI in its own virtual environment under
benchmarks/.peers/ (made on first use, reused after), started and stopped
here as a real daemon in its own process group.

    with Scrapyd(home, env={...}) as sd:            # shipped defaults
        sd.deploy("noop_scrapy", PROJECTS / "noop_scrapy")
        job = sd.schedule("noop_scrapy", "noop_scrapy")

The Scrapyd environment gets the same Scrapy and pymongo versions as
crawlfleet's, so both run the same spider code on the same libraries.
Projects reach it as eggs, the way `scrapyd-deploy` sends them.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
PEERS = HERE / ".peers"
SCRAPYD_SPEC = "scrapyd>=1.6,<1.7"


def scrapyd_python() -> Path:
    """The interpreter of Scrapyd's own environment, installed when missing."""
    venv = PEERS / "scrapyd-1.6"
    python = venv / "bin" / "python"
    wanted = [SCRAPYD_SPEC, f"scrapy=={metadata.version('scrapy')}",
              f"pymongo=={metadata.version('pymongo')}", "setuptools"]
    stamp = venv / "installed.json"
    if python.exists() and stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return python
    print(f"installing {', '.join(wanted)} into {venv} (from the package registry)", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    PEERS.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *wanted],
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"benchmark: installing Scrapyd failed:\n{done.stdout}{done.stderr}")
    stamp.write_text(json.dumps(wanted))
    return python


def scrapyd_version() -> str:
    out = subprocess.run([str(scrapyd_python()), "-c", "import scrapyd; print(scrapyd.__version__)"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def build_egg(project_dir: Path, name: str, version: str, out_dir: Path) -> Path:
    """An egg of a Scrapy project, built as scrapyd-deploy builds one."""
    python = scrapyd_python()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / name
        shutil.copytree(project_dir, src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        settings = subprocess.run(
            [sys.executable, "-c", "import configparser,sys; c=configparser.ConfigParser(); "
             "c.read(sys.argv[1]); print(c['settings']['default'])", str(src / "scrapy.cfg")],
            capture_output=True, text=True, check=True).stdout.strip()
        (src / "setup.py").write_text(
            "from setuptools import setup, find_packages\n"
            f"setup(name={name!r}, version={version!r}, packages=find_packages(),\n"
            f"      entry_points={{'scrapy': ['settings = {settings}']}})\n")
        out_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(python), "setup.py", "-q", "bdist_egg", "-d", str(out_dir)], cwd=src,
                       check=True, capture_output=True)
    return max(out_dir.glob(f"{name}-*.egg"), key=lambda p: p.stat().st_mtime)


class Scrapyd:
    """A running Scrapyd daemon; poll_interval None keeps the shipped 5 s."""

    def __init__(self, home: Path, env: dict | None = None, poll_interval: float | None = None):
        from crawlfleet.embedded import free_port, wait_for_port

        self.home = Path(home).resolve()
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True)
        self.port = free_port()
        self.poll_interval = poll_interval
        conf = ["[scrapyd]", "bind_address = 127.0.0.1", f"http_port = {self.port}",
                f"eggs_dir = {self.home / 'eggs'}", f"logs_dir = {self.home / 'logs'}",
                f"dbs_dir = {self.home / 'dbs'}"]
        if poll_interval is not None:
            conf.append(f"poll_interval = {poll_interval}")
        (self.home / "scrapyd.conf").write_text("\n".join(conf) + "\n")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLFLEET_")}
        full_env.update({k: str(v) for k, v in (env or {}).items()})
        self.log = open(self.home / "scrapyd.out", "ab")
        self.proc = subprocess.Popen([str(scrapyd_python()), "-m", "scrapyd"], cwd=self.home,
                                     env=full_env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        if not wait_for_port("127.0.0.1", self.port, 120, self.proc):
            self.close()
            raise SystemExit(f"benchmark: Scrapyd did not start; see {self.log.name}")

    @property
    def label(self) -> str:
        if self.poll_interval is None:
            return "Scrapyd (shipped defaults)"
        return f"Scrapyd (poll_interval {self.poll_interval:g} s)"

    def deploy(self, project: str, project_dir: Path, version: str | None = None) -> str:
        version = version or str(int(time.time() * 1000))
        egg = build_egg(project_dir, project, version, self.home / "built")
        with open(egg, "rb") as f:
            r = self.http.post(f"{self.url}/addversion.json",
                               data={"project": project, "version": version},
                               files={"egg": f}, timeout=120)
        body = r.json()
        if body.get("status") != "ok":
            raise SystemExit(f"benchmark: Scrapyd refused the egg: {body}")
        return version

    def schedule(self, project: str, spider: str, settings: dict | None = None, **args) -> str:
        data = [("project", project), ("spider", spider)]
        data += [("setting", f"{k}={v}") for k, v in (settings or {}).items()]
        data += list(args.items())
        body = self.http.post(f"{self.url}/schedule.json", data=data, timeout=60).json()
        if body.get("status") != "ok":
            raise SystemExit(f"benchmark: Scrapyd did not schedule {spider}: {body}")
        return body["jobid"]

    def status(self) -> dict:
        return self.http.get(f"{self.url}/daemonstatus.json", timeout=60).json()

    def idle(self) -> bool:
        s = self.status()
        return s["pending"] == 0 and s["running"] == 0

    def finished(self, project: str, job: str) -> bool:
        body = self.http.get(f"{self.url}/listjobs.json", params={"project": project},
                             timeout=60).json()
        return any(j["id"] == job for j in body.get("finished", []))

    def job_log(self, project: str, spider: str, job: str) -> str:
        path = self.home / "logs" / project / spider / f"{job}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self):
        from crawlfleet.processes import stop_group

        stop_group(self.proc, grace=15)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
