"""Process verbs: `master`, `node`, `web`, and `up` (all of them on one machine).

Each process is assembled here from the configuration, and nowhere else.
"""

import json
import os
import signal
import subprocess
import sys
import time

import click

from crawlfleet.embedded import free_port, start_mongo, wait_for_port


def _config_and_logging(name, **overrides):
    from crawlfleet.cli import load_config, setup_logging

    from crawlfleet.privatehome import secure_home

    config = load_config(**overrides)
    setup_logging(config, name)
    secure_home(config.home_path)
    return config


def _on_stop_signals(callback):
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: callback())


@click.command()
def master():
    """Run a master: discover spiders, then reconcile the ledger with the broker."""
    from crawlfleet.store import Store
    from master.service import Master

    from crawlfleet.errors import ConfigError

    config = _config_and_logging("master")
    try:
        service = Master(config, Store(config))
    except ConfigError as exc:  # e.g. alert settings, checked by the alerter
        raise click.ClickException(f"configuration error: {exc}") from None
    _on_stop_signals(service.stop)
    if not _until_store_answers(service.start, service.stopped):
        return
    try:
        service.serve_forever()
    finally:
        service.close()


@click.command()
@click.option("--id", "node_id", help="Node id (default: CRAWLFLEET_NODE_ID, else the host name).")
@click.option("--max-runners", type=int, help="Spiders run at once (default: CPU count).")
def node(node_id, max_runners):
    """Run a node: take tasks from the broker and run their spiders."""
    from crawlfleet.errors import ConfigError
    from crawlfleet.store import Store
    from node.agent import NodeAgent

    config = _config_and_logging("node", node_id=node_id, max_runners=max_runners)
    try:
        agent = NodeAgent(config, Store(config))
    except ConfigError as exc:  # e.g. a sandbox that cannot work here
        raise click.ClickException(f"configuration error: {exc}") from None
    _on_stop_signals(agent.stop)
    try:
        if not _until_store_answers(agent.register, agent.stopped):
            return
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    agent.start_background()
    try:
        agent.run(safety_interval=0.05)
    finally:
        agent.shutdown()


def _until_store_answers(step, stopped, pause=2.0):
    """Run a start-up step, waiting out a store that does not answer yet.
    Returns False if the process was asked to stop meanwhile."""
    import logging

    import pymongo.errors

    while not stopped.is_set():
        try:
            step()
            return True
        except pymongo.errors.PyMongoError as exc:
            logging.getLogger("crawlfleet").warning(
                "the store does not answer (%s); trying again in %.0f s", exc, pause)
            stopped.wait(pause)
    return False


def _gunicorn_app(config, bind):
    from gunicorn.app.base import BaseApplication

    class WebApplication(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", bind)
            self.cfg.set("workers", config.web_workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", config.web_threads)
            self.cfg.set("timeout", config.web_timeout)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("accesslog", None)
            from crawlfleet.logformat import gunicorn_logconfig

            json_logs = gunicorn_logconfig(config.log_format, config.log_level)
            if json_logs:
                self.cfg.set("logconfig_dict", json_logs)
            if "control_socket_disable" in self.cfg.settings:
                # One shared socket path per user: a second gunicorn would take it over.
                self.cfg.set("control_socket_disable", True)

        def load(self):
            from web import create_app

            return create_app(config)

    return WebApplication()


@click.command()
@click.option("--bind", default="127.0.0.1:8080", show_default=True,
              help="HOST:PORT to listen on (gunicorn's convention).")
def web(bind):
    """Serve the web UI and JSON API with gunicorn."""
    config = _config_and_logging("web")
    _gunicorn_app(config, bind).run()


# -- up ------------------------------------------------------------------------

class Child:
    def __init__(self, name, argv, env):
        self.name = name
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def stop(self, timeout=20.0):
        if self.proc.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    return
                try:
                    self.proc.wait(timeout)
                    break
                except subprocess.TimeoutExpired:
                    continue
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except (ProcessLookupError, TypeError):
        return False
    except PermissionError:
        return True


@click.command()
@click.option("--port", type=int, default=8080, show_default=True, help="Port of the web server.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the web server.")
@click.option("--demo-port", type=int, default=8900, show_default=True,
              help="Port of the bundled demo site (0: none).")
def up(port, host, demo_port):
    """Start everything on this machine: store, broker, master, node, web, demo site."""
    from crawlfleet.config import UP_STATE_FILE, Config
    from crawlfleet.privatehome import write_private
    from crawlfleet.store import Store
    from crawlfleet.tokens import ensure_admin_token

    env_home = os.environ.get("CRAWLFLEET_HOME") or "./.crawlfleet"
    state_path = Config.from_dict({"home": env_home}).home_path / UP_STATE_FILE
    if state_path.exists():
        old = json.loads(state_path.read_text() or "{}")
        if _pid_alive(old.get("pid")):
            raise click.ClickException(
                f"crawlfleet is already running here (pid {old['pid']}, {old.get('api_url')})")
        state_path.unlink()  # left by a run that did not stop cleanly

    config = _config_and_logging("up")
    home = config.home_path
    (home / "run").mkdir(parents=True, exist_ok=True)
    children = []
    stopping = []
    started = time.time()
    _on_stop_signals(lambda: stopping.append(True))
    try:
        with open(home / "run" / "nx-27017.out", "ab") as mongo_log:
            if os.environ.get("CRAWLFLEET_MONGO_URI"):
                mongo_uri = config.mongo_uri
            else:
                mongo_proc, mongo_uri = start_mongo(home, mongo_log)
                children.append(_Wrapped("mongo", mongo_proc))
        config = config.replace(mongo_uri=mongo_uri)
        api_url = f"http://{host}:{port}"
        config = config.replace(api_url=api_url)
        store = Store(config)
        store.ensure_indexes()
        token = ensure_admin_token(store, config)
        from crawlfleet.users import ensure_first_admin

        first_user = ensure_first_admin(store)
        store.close()

        env = dict(os.environ)
        env.update(config.as_environ())
        env.pop("CRAWLFLEET_TOKEN", None)
        demo_url = None
        if demo_port:
            demo_port = free_port(preferred=demo_port)
            demo_url = f"http://127.0.0.1:{demo_port}"
            env["CRAWLFLEET_DEMO_URL"] = demo_url
            children.append(Child("demo", [sys.executable, "-m", "spiders.demosite",
                                           "--host", "127.0.0.1", "--port", str(demo_port)], env))
        me = [sys.executable, "-m", "crawlfleet"]
        children.append(Child("master", me + ["master"], env))
        children.append(Child("node", me + ["node"], env))
        children.append(Child("web", me + ["web", "--bind", f"{host}:{port}"], env))
        if not wait_for_port(host, port, 60, children[-1].proc):
            raise click.ClickException(f"the web server did not start on {host}:{port}")
        _wait_for_discovery(Store(config), started, children)
        write_private(state_path, json.dumps({
            "pid": os.getpid(), "mongo_uri": mongo_uri, "broker_url": config.broker_url,
            "api_url": api_url, "demo_url": demo_url, "started_at": time.time(),
        }))
        click.echo(
            f"\ncrawlfleet is up.\n"
            f"  web and API   {api_url}   (API under {api_url}/api/v1)\n"
            f"  web login     user admin, password "
            + (f"{first_user[1]}   (shown only this once)\n" if first_user and first_user[1]
               else "from CRAWLFLEET_ADMIN_PASSWORD\n" if first_user
               else "as set before (`crawlfleet user passwd admin` resets it)\n")
            + f"  admin token   {token}\n"
            f"                (kept in {home / 'admin-token'}; client verbs in another\n"
            f"                 terminal with the same CRAWLFLEET_HOME find it themselves)\n"
            f"  data          {home}   (MongoDB {mongo_uri}, database {config.mongo_db})\n"
            f"  broker        {config.broker_url}\n"
            + (f"  demo site     {demo_url}\n" if demo_url else "")
            + "Try: crawlfleet spiders; crawlfleet run books --wait\nCtrl-C stops everything.\n"
        )
        while not stopping:
            for child in children:
                if child.proc.poll() is not None:
                    raise click.ClickException(
                        f"{child.name} exited with code {child.proc.returncode}; stopping everything")
            time.sleep(0.5)
        click.echo("stopping crawlfleet ...")
    finally:
        # Web first (no new work), then node (records its tasks), master, demo, store last.
        for child in sorted(children, key=lambda c: STOP_ORDER.get(c.name, 5)):
            child.stop()
        if state_path.exists():
            try:
                if json.loads(state_path.read_text()).get("pid") == os.getpid():
                    state_path.unlink()
            except (OSError, ValueError):
                pass


def _wait_for_discovery(store, since, children, timeout=120):
    """Block until the master has listed the spiders, so `crawlfleet spiders` right
    after the banner shows them."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if store.masters.find_one({"discovered_at": {"$gte": since}}):
                return
            for child in children:
                if child.proc.poll() is not None:
                    raise click.ClickException(
                        f"{child.name} exited with code {child.proc.returncode} during start-up")
            time.sleep(0.1)
        raise click.ClickException("the master did not finish discovering spiders in time")
    finally:
        store.close()


STOP_ORDER = {"web": 0, "node": 1, "master": 2, "demo": 3, "mongo": 9}


class _Wrapped(Child):
    def __init__(self, name, proc):
        self.name = name
        self.proc = proc


def register(main):
    for command in (up, master, node, web):
        main.add_command(command)
