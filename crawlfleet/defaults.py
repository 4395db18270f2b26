"""Every tunable of crawlfleet, with its default and what it means.

This is the one documented list: `crawlfleet.config` reads each setting from
the environment as ``CRAWLFLEET_<NAME>`` (upper case), or from the TOML file
named by ``CRAWLFLEET_CONFIG`` (lower-case keys), and falls back to the value
here. The README's configuration table is generated from this module
(`crawlfleet config --markdown`), so the two cannot drift apart.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    kind: type
    help: str


SETTINGS = [
    # -- where things live ---------------------------------------------------
    Setting("home", "./.crawlfleet", str,
            "Folder for everything kept on this machine: the embedded database "
            "and broker, node caches, the admin token, run-state files."),
    Setting("mongo_uri", "", str,
            "MongoDB URI. Empty: the one recorded by a running `crawlfleet up` "
            "in HOME, else mongodb://127.0.0.1:27017."),
    Setting("mongo_db", "crawlfleet", str,
            "Database holding the ledger (tasks, spiders, nodes, logs) and the "
            "results collections."),
    Setting("broker_url", "", str,
            "kombu broker URL: redis://host:6379/0 or amqp://user:pass@host:5672//. "
            "Empty: the embedded broker (kombu's filesystem transport under "
            "HOME/broker), which needs no server and keeps messages across restarts "
            "but only reaches processes on this machine."),
    Setting("queue_prefix", "crawlfleet", str,
            "Prefix of every exchange and queue name, so several installations "
            "(or test runs) can share one broker."),
    Setting("spiders_path", "", str,
            "Folders the master scans for spider projects, separated by ':'. "
            "Empty: the spiders bundled with crawlfleet."),
    # -- web ----------------------------------------------------------------
    Setting("secret_key", "", str,
            "Secret for session cookies. Empty: a random key is made once and "
            "kept in HOME/secret-key."),
    Setting("secrets_key", "", str,
            "Fernet key that encrypts spider secrets and data-source passwords in the "
            "store (never stored there, never given to spiders). "
            "Empty: one made once and kept in HOME/secrets.key (0600); set the same key "
            "on every machine of a multi-host deployment."),
    Setting("api_url", "", str,
            "Where client verbs find the API. Empty: the one recorded by a running "
            "`crawlfleet up` in HOME, else http://127.0.0.1:8080."),
    Setting("token", "", str,
            "API token for client verbs. Empty: HOME/admin-token, written by `up`."),
    Setting("web_workers", 2, int, "gunicorn worker processes of `crawlfleet web`."),
    Setting("web_worker_class", "gevent", str,
            "gunicorn worker class of `crawlfleet web`: gevent (the default: each "
            "connection is a greenlet, so slow or idle clients and open live-log "
            "streams hold no thread) or gthread (a thread per request in flight)."),
    Setting("web_worker_connections", 1000, int,
            "Connections one gevent worker serves at once (gunicorn's --worker-connections)."),
    Setting("web_threads", 8, int, "Threads per gunicorn worker when web_worker_class is gthread."),
    Setting("web_timeout", 120, int,
            "Seconds gunicorn waits for a silent worker before it restarts it "
            "(gunicorn's --timeout; a gthread worker stays heard while its "
            "threads serve long requests)."),
    Setting("ratelimit_storage", "", str,
            "Where the password-guess counters live (a Flask-Limiter storage URI, e.g. "
            "redis://host:6379/1), shared by every web worker and server. Empty: the "
            "broker's Redis when the broker is Redis, else the store (MongoDB)."),
    Setting("login_account_limit", "10 per 5 minutes", str,
            "Failed password checks (login form and Scrapyd basic auth) one account may "
            "take; past it every sign-in of that account is refused with 429 until the "
            "window ends. API tokens are never limited."),
    Setting("login_address_limit", "30 per 5 minutes", str,
            "Failed password checks from one client address, for every account together."),
    Setting("metrics_public", False, bool,
            "Serve /metrics without a token (for a scraper on a private network). "
            "Otherwise it needs `Authorization: Bearer <token>` of any role."),
    # -- node ---------------------------------------------------------------
    Setting("node_id", "", str,
            "This node's id. Empty: the host name."),
    Setting("max_runners", 0, int,
            "Spiders a node runs at once. 0: the number of CPUs, at least 2."),
    Setting("node_labels", "", str,
            "Labels this node sets on itself at each start, e.g. `region=eu,proxy=yes` "
            "(runs with `--label` go only to nodes carrying them). Labels an operator "
            "set stay; a key given here takes this value again at the next start."),
    Setting("heartbeat_interval", 3.0, float, "Seconds between node heartbeats."),
    Setting("node_timeout", 15.0, float,
            "A node silent this many seconds is offline, and its running tasks "
            "become `abnormal`."),
    Setting("task_timeout", 0.0, float,
            "Default per-task time limit in seconds (0: none). A run may set its own."),
    Setting("warm_start", True, bool,
            "Run Scrapy spiders by forking a warm process that has already imported "
            "Scrapy and the project (one per project version and environment), "
            "instead of starting a fresh interpreter per task; a project that cannot "
            "be preloaded falls back to a fresh process."),
    Setting("warm_idle_seconds", 600.0, float,
            "A warm process unused this long is stopped."),
    Setting("sandbox", "auto", str,
            "How spiders (and inspections of new versions) are confined: `user` (node "
            "runs as root: bubblewrap namespaces, then the unprivileged SANDBOX_USER), "
            "`bwrap` (node runs as a normal user: a bubblewrap user namespace), `none` "
            "(no confinement, development only: said loudly in the log and on the node "
            "page), or `auto`: `user` as root, `bwrap` otherwise, `none` with a warning "
            "when bubblewrap cannot run. See the README's Security model."),
    Setting("sandbox_user", "crawlfleet-spider", str,
            "The unprivileged user spiders run as in the `user` sandbox "
            "(scripts/services.sh and the Dockerfile create it)."),
    Setting("cancel_grace", 10.0, float,
            "Seconds between SIGINT and SIGTERM (and again before SIGKILL) when a "
            "task is cancelled or times out."),
    Setting("log_batch_lines", 200, int, "Log lines shipped to the store in one batch."),
    Setting("log_flush_interval", 0.5, float, "Seconds between log shipments."),
    Setting("log_max_lines", 200000, int,
            "Lines kept of one task's log; the rest is counted and dropped with a marker."),
    Setting("log_max_line_bytes", 65536, int,
            "Longer lines are cut with a marker."),
    Setting("stats_interval", 2.0, float,
            "Seconds between live stats updates sent by a running Scrapy spider."),
    # -- distributed and resumable crawls (crawlfleet/frontier.py, master/crawls.py)
    Setting("frontier_url", "", str,
            "Redis URL holding the shared frontier (request queue, seen-set, in-flight "
            "requests, per-domain limiter) of crawls run with `--workers` or `--persist`. "
            "Empty: the broker's URL when the broker is Redis; otherwise distributed and "
            "resumable crawls are refused until this is set."),
    Setting("frontier_ttl", 7 * 86400.0, float,
            "Seconds a crawl's Redis keys live without a worker touching them (running "
            "workers renew them); a stopped persistent crawl can be resumed this long."),
    # -- master -------------------------------------------------------------
    Setting("reconcile_interval", 2.0, float, "Seconds between reconciler passes."),
    Setting("republish_after", 30.0, float,
            "A pending task whose message is this old, with its queue empty, is "
            "re-published (the broker lost it)."),
    Setting("scrapy_list_timeout", 60.0, float,
            "Seconds `scrapy list` may take when a project is discovered."),
    Setting("deploy_wait", 20.0, float,
            "Seconds an upload (UI, API, `crawlfleet deploy`) waits for its new version's "
            "spiders to be listed. Longer: it answers 202 with the version `inspecting`, "
            "and the UI and CLI follow the inspection until its spiders or its error land."),
    # -- schedules and alerts (master/scheduler.py, master/leader.py, master/alerts.py)
    Setting("schedule_lease_ttl", 4.0, float,
            "Seconds the scheduler leader's lease lasts; the leader renews it every "
            "quarter of that. A dead leader is replaced within about this long."),
    Setting("schedule_catchup", 10.0, float,
            "A fire time at most this many seconds late still fires (each one: it "
            "covers a leader failover). Older ones are misfires; must exceed the lease."),
    Setting("schedule_misfire_grace", 300.0, float,
            "Misfires (the masters were down): the latest one fires once on recovery "
            "if it is at most this many seconds old; the others are recorded as skipped."),
    Setting("alert_on", "error,timeout,abnormal", str,
            "Task outcomes that send the global alerts, comma-separated: error, timeout, "
            "abnormal, finished, zero_items (finished with no item)."),
    Setting("alert_webhook", "", str,
            "URL that gets a JSON POST for each alert (retried). Empty: none."),
    Setting("alert_allow_private", False, bool,
            "Let alert webhooks reach loopback, private, link-local (cloud metadata) and "
            "reserved addresses. Off: a webhook host must resolve to public addresses only, "
            "checked on every delivery."),
    Setting("alert_follow_redirects", False, bool,
            "Follow a webhook's redirects (at most 5, each target checked like the first). "
            "Off: a redirect is a failed delivery."),
    Setting("alert_email_to", "", str,
            "Addresses that get an email for each alert, comma-separated. Empty: none."),
    Setting("alert_email_from", "", str,
            "Sender of alert emails. Empty: crawlfleet@<host name>."),
    Setting("alert_smtp_host", "localhost", str, "SMTP server for alert emails."),
    Setting("alert_smtp_port", 25, int, "Port of the SMTP server."),
    Setting("alert_smtp_security", "none", str,
            "none, starttls or ssl: how alert emails reach the SMTP server."),
    Setting("alert_smtp_user", "", str, "SMTP login for alert emails. Empty: none."),
    Setting("alert_smtp_password", "", str, "SMTP password (withheld from spiders)."),
    # -- deploying projects (upload, git, Scrapyd eggs) -----------------------
    Setting("max_upload_bytes", 200 * 1024 * 1024, int,
            "Largest request body of a project upload (zip or egg), in bytes; a "
            "larger one is refused with 413 before it is read."),
    Setting("max_project_files", 10000, int,
            "Most files a deployed project may hold (zip entries, or files of a git checkout)."),
    Setting("max_project_bytes", 512 * 1024 * 1024, int,
            "Most bytes a deployed project may unpack to; checked while unpacking."),
    Setting("max_zip_ratio", 200, int,
            "A zip entry expanding more than this many times its compressed size "
            "(past its first MiB) is refused as a zip bomb."),
    Setting("git_timeout", 120.0, float, "Seconds a `git clone` of a project may take."),
    Setting("git_local_roots", "", str,
            "Folders on the machine serving the API that git imports may read local "
            "repositories from, separated by ':'. Empty: only https://, ssh:// "
            "and git@host:path URLs."),
    # -- results and data sources -----------------------------------------------
    Setting("feeds_dir", "", str,
            "Folder on each node where Scrapy feed exports to local files land (a "
            "spider's `feeds` names a path inside it; the sandboxed spider writes in its "
            "task folder and the node moves the file here). Empty: HOME/feeds."),
    Setting("sink_batch", 500, int,
            "Items per batch a node writes to a SQL data source."),
    Setting("sink_attempts", 5, int,
            "Attempts per batch before a data source that does not answer fails "
            "the task (backoff doubles from 1 s, at most 30 s)."),
    # -- retries and retention ------------------------------------------------
    Setting("retry_abnormal_attempts", 3, int,
            "Attempts in all for a task that ends `abnormal` (its node died or "
            "restarted) when no retry policy was given; `error` and `timeout` are "
            "retried only when a policy says so."),
    Setting("retry_backoff", 10.0, float,
            "Seconds before the second attempt of the default policy; each later "
            "attempt waits twice as long as the one before."),
    Setting("task_retention_days", 90.0, float,
            "Tasks (and their logs) that ended longer ago than this are deleted; 0 keeps them."),
    Setting("log_retention_days", 30.0, float,
            "Logs of tasks that ended longer ago than this are deleted; 0 keeps them."),
    Setting("cache_retention_days", 14.0, float,
            "A node deletes project versions and dependency environments it has not "
            "used for this long; 0 keeps them."),
    Setting("node_history_days", 7.0, float,
            "Days a node's samples (load, memory, busy runners: one a minute) are kept "
            "for its history (the node page, `crawlfleet node history`); 0 records none."),
    Setting("housekeeping_interval", 600.0, float,
            "Seconds between retention passes of masters and nodes."),
    # -- misc ---------------------------------------------------------------
    Setting("log_level", "INFO", str, "Log level of crawlfleet's own processes."),
    Setting("log_format", "text", str,
            "text, or json: one JSON object per line (time, level, role, logger, "
            "message, exception) for a log collector."),
]

BY_NAME = {s.name: s for s in SETTINGS}

TASK_STATUSES_DOC = "pending, running, finished, error, cancelled, timeout, abnormal"
