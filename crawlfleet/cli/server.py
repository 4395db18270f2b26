"""Process verbs: `master`, `node`, `web`, and `up` (all of them on one machine).

Each process is assembled here from the configuration, and nowhere else.
"""

import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request

import click

from crawlfleet.cli.children import Child, EmbeddedStore, pid_alive
from crawlfleet.embedded import free_port, port_is_free
from crawlfleet.retrying import poll_until


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


@click.group(invoke_without_command=True)
@click.option("--id", "node_id", help="Node id (default: CRAWLFLEET_NODE_ID, else the host name).")
@click.option("--max-runners", type=int, help="Spiders run at once (default: CPU count).")
@click.pass_context
def node(ctx, node_id, max_runners):
    """Run a node: take tasks from the broker and run their spiders.

    The subcommands (label, unlabel, enable, drain, disable, slots, show)
    control a running node through the API instead (crawlfleet/cli/nodes.py).
    """
    if ctx.invoked_subcommand is not None:
        if node_id or max_runners:
            raise click.UsageError("--id and --max-runners start a node; the subcommands "
                                   "name the node they control")
        return
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


def _gunicorn_app(config, bind, scrapyd_bind=None):
    from gunicorn.app.base import BaseApplication

    class WebApplication(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", [bind, scrapyd_bind] if scrapyd_bind else [bind])
            self.cfg.set("workers", config.web_workers)
            # gevent: a greenlet per connection, so 500 half-sent requests and
            # hundreds of open live-log streams hold no thread (README, Security)
            self.cfg.set("worker_class", config.web_worker_class)
            self.cfg.set("worker_connections", config.web_worker_connections)
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

            app = create_app(config)
            if scrapyd_bind:
                from web.scrapyd.root import bind_port, with_root_listener

                return with_root_listener(app, bind_port(scrapyd_bind))
            return app

    return WebApplication()


@click.command()
@click.option("--bind", default="127.0.0.1:8080", show_default=True,
              help="HOST:PORT to listen on (gunicorn's convention).")
@click.option("--scrapyd-bind", metavar="HOST:PORT",
              help="Also answer Scrapyd's API and pages at the root of HOST:PORT "
                   "(e.g. 0.0.0.0:6800), for clients that take only host:port.")
def web(bind, scrapyd_bind):
    """Serve the web UI and JSON API with gunicorn."""
    if scrapyd_bind:
        from web.scrapyd.root import bind_port

        try:
            port = bind_port(scrapyd_bind)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--scrapyd-bind") from None
        if bind.rpartition(":")[2] == str(port):
            raise click.BadParameter("the Scrapyd listener needs a port of its own, not "
                                     f"--bind's {port}", param_hint="--scrapyd-bind")
    config = _config_and_logging("web")
    # Warnings (gevent's monkey-patching ones among them) as log records, in the
    # configured format: a JSON log stays JSON lines only.
    logging.captureWarnings(True)
    _gunicorn_app(config, bind, scrapyd_bind).run()


# -- up ------------------------------------------------------------------------

@click.command()
@click.option("--port", type=int, default=8080, show_default=True, help="Port of the web server.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the web server.")
@click.option("--demo-port", type=int, default=8900, show_default=True,
              help="Port of the bundled demo site (0: none).")
@click.option("--scrapyd-port", type=int, default=6800, show_default=True,
              help="Port of the Scrapyd-compatible listener, on --host (0: none; "
                   "/scrapyd/ on the web port answers either way).")
def up(port, host, demo_port, scrapyd_port):
    """Start everything on this machine: store, broker, master, node, web, demo site."""
    from crawlfleet.config import UP_STATE_FILE, Config
    from crawlfleet.privatehome import write_private
    from crawlfleet.store import Store
    from crawlfleet.tokens import ensure_admin_token

    env_home = os.environ.get("CRAWLFLEET_HOME") or "./.crawlfleet"
    state_path = Config.from_dict({"home": env_home}).home_path / UP_STATE_FILE
    if state_path.exists():
        old = json.loads(state_path.read_text() or "{}")
        if pid_alive(old.get("pid")):
            raise click.ClickException(
                f"crawlfleet is already running here (pid {old['pid']}, {old.get('api_url')})")
        state_path.unlink()  # left by a run that did not stop cleanly

    _check_ports(host, port)
    config = _config_and_logging("up")
    home = config.home_path
    _private_folder(home)
    (home / "run").mkdir(parents=True, exist_ok=True)
    children = []
    stopping = []
    started = time.time()
    _on_stop_signals(lambda: stopping.append(True))
    try:
        mongo_log = open(home / "run" / "nx-27017.out", "ab")
        os.chmod(mongo_log.name, 0o600)
        if os.environ.get("CRAWLFLEET_MONGO_URI"):
            mongo_uri = config.mongo_uri
        else:
            children.append(EmbeddedStore(home, mongo_log))
            mongo_uri = children[-1].uri
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
            wanted, demo_port = demo_port, free_port(preferred=demo_port)
            if demo_port != wanted:
                click.echo(f"crawlfleet: port {wanted} of the demo site is taken; it uses "
                           f"{demo_port} instead (--demo-port to choose)")
            demo_url = f"http://127.0.0.1:{demo_port}"
            env["CRAWLFLEET_DEMO_URL"] = demo_url
            children.append(Child("demo", [sys.executable, "-m", "spiders.demosite",
                                           "--host", "127.0.0.1", "--port", str(demo_port)], env))
        me = [sys.executable, "-m", "crawlfleet"]
        children.append(Child("master", me + ["master"], env))
        children.append(Child("node", me + ["node"], env))
        if scrapyd_port:
            scrapyd_port = free_port(host, preferred=scrapyd_port)  # a Scrapyd may hold 6800
        scrapyd_port = _start_web(me, host, port, scrapyd_port, env, children)
        scrapyd_url = f"http://{host}:{scrapyd_port}" if scrapyd_port else None
        _wait_for_discovery(Store(config), started, children)
        write_private(state_path, json.dumps({
            "pid": os.getpid(), "mongo_uri": mongo_uri, "broker_url": config.broker_url,
            "api_url": api_url, "demo_url": demo_url, "scrapyd_url": scrapyd_url,
            "started_at": time.time(),
        }))
        click.echo(
            f"\ncrawlfleet is up.\n"
            f"  web and API   {api_url}   (API under {api_url}/api/v1)\n"
            + (f"  Scrapyd API   {scrapyd_url}   (and {api_url}/scrapyd/; basic auth: a web "
               f"user, or any name and a token)\n" if scrapyd_url else "")
            + "  web login     user admin, password "
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
            # a crashed role is restarted with backoff; the platform stays up
            for child in children:
                child.supervise(lambda line: click.echo(line, err=True))
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


def _start_web(me, host, port, scrapyd_port, env, children):
    """Start the web server (added to `children`) and wait until it answers;
    returns the Scrapyd listener's port, which may have changed.

    gunicorn binds every listener before it starts a worker, so an answer on the
    web port means the Scrapyd port is the web's too. That port was only seen
    free a moment before: when another program takes it first, gunicorn gives
    up, and the web is started again on another free port."""
    for _ in range(3):
        argv = me + ["web", "--bind", f"{host}:{port}"]
        if scrapyd_port:
            argv += ["--scrapyd-bind", f"{host}:{scrapyd_port}"]
        web = Child("web", argv, env)
        children.append(web)
        if _answers(f"http://{host}:{port}/healthz", 90, web.proc):
            return scrapyd_port
        web.stop(timeout=5.0)
        children.remove(web)
        if not scrapyd_port or port_is_free(host, scrapyd_port):
            break
        taken, scrapyd_port = scrapyd_port, free_port(host)
        click.echo(f"crawlfleet: port {taken} of the Scrapyd listener was taken meanwhile; "
                   f"it uses {scrapyd_port} instead (--scrapyd-port to choose)")
    raise click.ClickException(f"the web server did not start on {host}:{port}; "
                               "its error is in the lines above")


def _answers(url, timeout, proc):
    """Whether `url` gives any HTTP answer within `timeout` seconds while `proc` runs."""
    def state():
        if proc.poll() is not None:
            return "exited"
        try:
            with urllib.request.urlopen(url, timeout=5):
                return "answered"
        except urllib.error.HTTPError:
            return "answered"  # e.g. 503 while the store starts: the server itself is up
        except OSError:
            return None
    return poll_until(state, timeout, interval=0.1) == "answered"


def _check_ports(host, port):
    """Stop before anything is made when the web port is taken: otherwise the
    banner would print a password and token for another server's URL."""
    if not port_is_free(host, port):
        raise click.ClickException(
            f"port {port} on {host} is taken by another program; choose another with --port")


def _private_folder(path):
    """HOME holds the store, tokens and keys: only its owner may enter it."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path, 0o700)
    except PermissionError:  # someone else's folder: leave it, but say so
        click.echo(f"crawlfleet: cannot make {path} private (0700)", err=True)


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


def register(main):
    for command in (up, master, node, web):
        main.add_command(command)
