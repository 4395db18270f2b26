"""A small client of the JSON API, used by the CLI's client verbs.

One method per route; every error the server answers becomes a
`ClientError` carrying the server's own message and status code.
"""

import os
import time

import requests

from crawlfleet.errors import CrawlfleetError
from crawlfleet.models import TaskStatus
from crawlfleet.tokens import read_admin_token

API_PREFIX = "/api/v1"
FOLLOW_INTERVAL = 0.3  # seconds between polls while following a task
DEPLOY_TIMEOUT = 600.0  # a deploy waits for `scrapy list` or a git clone on the server
STREAM_CHUNK = 64 * 1024


class ClientError(CrawlfleetError):
    """The API answered with an error, or could not be reached."""

    def __init__(self, message, status_code=None):
        super().__init__(message)
        self.status_code = status_code


class ApiUnreachable(ClientError):
    """No HTTP answer at all: nothing listens at the API URL, or it timed out."""


def is_final(task):
    return TaskStatus(task["status"]).is_final


class ApiClient:
    def __init__(self, base_url, token, *, timeout=30.0, session=None):
        base_url = base_url.rstrip("/")
        if base_url.endswith(API_PREFIX):
            base_url = base_url[: -len(API_PREFIX)]
        self.base_url = base_url
        self.token = token
        self.timeout = timeout
        self.session = session or requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["User-Agent"] = "crawlfleet-client"

    @classmethod
    def from_config(cls, config):
        """The API and token of this machine's config (or of a running `crawlfleet up`)."""
        return cls(config.api_url, config.token or read_admin_token(config))

    def close(self):
        self.session.close()

    # -- transport -------------------------------------------------------------
    def request(self, method, path, *, params=None, json=None, stream=False, data=None,
                files=None, timeout=None):
        url = self.base_url + API_PREFIX + path
        if params:
            params = {k: v for k, v in params.items() if v is not None}
        try:
            response = self.session.request(method, url, params=params, json=json,
                                            data=data, files=files, stream=stream,
                                            timeout=timeout or self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ApiUnreachable(
                f"cannot reach the crawlfleet API at {self.base_url} — "
                "is `crawlfleet up` or `crawlfleet web` running?") from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _error(self, response):
        try:
            message = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {response.status_code} {response.reason} from {response.url}"
        if response.status_code == 401:
            hint = ("set CRAWLFLEET_TOKEN" if not self.token else "check CRAWLFLEET_TOKEN")
            message += f" ({hint}; an admin makes one with `crawlfleet token create`)"
        response.close()
        return ClientError(message, response.status_code)

    def get(self, path, **params):
        return self.request("GET", path, params=params).json()

    def post(self, path, body=None):
        return self.request("POST", path, json=body).json()

    def stream(self, path, **params):
        """The body of a streamed answer, in byte chunks."""
        response = self.request("GET", path, params=params, stream=True)
        with response:
            yield from response.iter_content(STREAM_CHUNK)

    # -- routes ----------------------------------------------------------------
    def nodes(self):
        return self.get("/nodes")["nodes"]

    def spiders(self):
        return self.get("/spiders")["spiders"]

    def spider(self, name):
        return self.get(f"/spiders/{_segment(name)}")

    def spider_history(self, name, limit=None):
        return self.get(f"/spiders/{_segment(name)}/history", limit=limit)

    def run_schedule(self, schedule_id):
        return self.post(f"/schedules/{_segment(schedule_id)}/run")

    def rescan(self):
        return self.post("/spiders/rescan")

    def run(self, spider, *, args=None, settings=None, nodes="any", timeout=None,
            priority=None, workers=None, persist=None, labels=None):
        """{"task_ids": [...], "tasks": [...]} of a new run (and "crawl_id" with
        `workers` or `persist`)."""
        body = {"nodes": nodes}
        for key, value in (("args", args), ("settings", settings), ("timeout", timeout),
                           ("priority", priority), ("workers", workers),
                           ("persist", persist or None), ("labels", labels or None)):
            if value is not None:
                body[key] = value
        return self.post(f"/spiders/{_segment(spider)}/run", body)

    # -- node control ------------------------------------------------------------
    def node(self, node_id):
        return self.get(f"/nodes/{_segment(node_id)}")

    def node_history(self, node_id, hours=None):
        return self.get(f"/nodes/{_segment(node_id)}/history", hours=hours)

    def label_node(self, node_id, set_=None, remove=None):
        body = {k: v for k, v in (("set", set_), ("remove", remove)) if v}
        return self.post(f"/nodes/{_segment(node_id)}/labels", body)

    def set_node_mode(self, node_id, verb):
        """`verb`: enable, drain or disable."""
        return self.post(f"/nodes/{_segment(node_id)}/{verb}")

    def set_node_slots(self, node_id, slots):
        return self.post(f"/nodes/{_segment(node_id)}/slots", {"run_slots": slots})

    def tasks(self, *, status=None, spider=None, node=None, limit=None, before=None,
              trigger=None):
        """{"tasks": [...], "next": cursor}; `status` may be a list."""
        if isinstance(status, (list, tuple)):
            status = ",".join(status) or None
        return self.get("/tasks", status=status, spider=spider, node=node, limit=limit,
                        before=before, trigger=trigger)

    def retry(self, task_id):
        """The new task that runs an ended one again."""
        return self.post(f"/tasks/{_segment(task_id)}/retry")

    def delete_task(self, task_id):
        return self.request("DELETE", f"/tasks/{_segment(task_id)}").json()

    def bulk(self, action, task_ids):
        """cancel, retry or delete many tasks: {"results": [{"id", "ok", ...}], ...}."""
        return self.post("/tasks/bulk", {"action": action, "ids": list(task_ids)})

    def task(self, task_id):
        return self.get(f"/tasks/{_segment(task_id)}")

    # distributed and resumable crawls
    def crawls(self, *, status=None, spider=None, limit=None):
        return self.get("/crawls", status=status, spider=spider, limit=limit)

    def crawl(self, crawl_id):
        return self.get(f"/crawls/{_segment(crawl_id)}")

    def cancel_crawl(self, crawl_id):
        return self.post(f"/crawls/{_segment(crawl_id)}/cancel")

    def scale_crawl(self, crawl_id, workers):
        return self.post(f"/crawls/{_segment(crawl_id)}/scale", {"workers": workers})

    def resume_crawl(self, crawl_id):
        return self.post(f"/crawls/{_segment(crawl_id)}/resume")

    def cancel(self, task_id):
        return self.post(f"/tasks/{_segment(task_id)}/cancel")

    def log(self, task_id, offset=0, limit=None):
        return self.get(f"/tasks/{_segment(task_id)}/log", offset=offset, limit=limit)

    def log_text(self, task_id):
        return self.stream(f"/tasks/{_segment(task_id)}/log", format="text")

    def results(self, task_id, *, limit=None, after=None):
        return self.get(f"/tasks/{_segment(task_id)}/results", format="json", limit=limit,
                        after=after)

    def iter_results(self, task_id, page_size=1000):
        """Every item of a task, page by page."""
        after = None
        while True:
            page = self.results(task_id, limit=page_size, after=after)
            yield from page["items"]
            after = page["next"]
            if not after:
                return

    def export(self, task_id, fmt="jsonl"):
        """Every item of a task as JSON lines or CSV, in byte chunks."""
        return self.stream(f"/tasks/{_segment(task_id)}/results", format=fmt)

    # -- projects and versions -------------------------------------------------------
    def deploy_zip(self, path, *, project=None, label=None, on_inspecting=None):
        """Upload a project zip (streamed from disk); the new or known version.

        When the server is still listing its spiders as it answers (202), the
        inspection is followed until it ends (`on_inspecting` is told once),
        so callers get the version or its error just as before."""
        fields = {k: v for k, v in (("project", project), ("label", label)) if v}
        with open(path, "rb") as f:
            result = self.request("POST", "/projects", data=fields,
                                  files={"file": (os.path.basename(path), f, "application/zip")},
                                  timeout=DEPLOY_TIMEOUT).json()
        if result.get("status") != "inspecting":
            return result
        if on_inspecting:
            on_inspecting(result)
        return self.follow_inspection(result["project"], result["inspection"])

    def follow_inspection(self, project, inspection, timeout=DEPLOY_TIMEOUT):
        """Poll a deploy's inspection until it ends: its result, or a
        ClientError with its (readable) error."""
        path = f"/projects/{_segment(project)}/inspections/{_segment(inspection)}"
        deadline = time.monotonic() + timeout
        while True:
            state = self.get(path)
            if state["status"] == "done":
                return state
            if state["status"] == "failed":
                raise ClientError(state.get("error") or "the deploy failed", 400)
            if time.monotonic() > deadline:
                raise ClientError(f"{project}: still inspecting after {timeout:g} s; see "
                                  "`crawlfleet projects` or the projects page later")
            time.sleep(FOLLOW_INTERVAL * 3)

    def deploy_git(self, url, *, ref=None, project=None, label=None, credentials=None):
        body = {k: v for k, v in (("git", url), ("ref", ref), ("project", project),
                                  ("label", label), ("credentials", credentials)) if v}
        return self.request("POST", "/projects", json=body, timeout=DEPLOY_TIMEOUT).json()

    def create_project(self, template, project, *, spider=None):
        body = {k: v for k, v in (("project", project), ("spider", spider)) if v}
        return self.request("POST", f"/project-templates/{_segment(template)}", json=body,
                            timeout=DEPLOY_TIMEOUT).json()

    def compare(self, project, base, other):
        return self.get(f"/projects/{_segment(project)}/compare", **{"from": base, "to": other})

    def pull(self, project):
        return self.request("POST", f"/projects/{_segment(project)}/pull",
                            timeout=DEPLOY_TIMEOUT).json()

    def projects(self):
        return self.get("/projects")["projects"]

    def project(self, name):
        return self.get(f"/projects/{_segment(name)}")

    def versions(self, project):
        return self.get(f"/projects/{_segment(project)}/versions")

    def activate(self, project, version):
        return self.post(f"/projects/{_segment(project)}/versions/{_segment(version)}/activate")

    def delete_version(self, project, version):
        return self.request(
            "DELETE", f"/projects/{_segment(project)}/versions/{_segment(version)}").json()

    def delete_project(self, project):
        return self.request("DELETE", f"/projects/{_segment(project)}").json()

    def version_files(self, project, version):
        return self.get(f"/projects/{_segment(project)}/versions/{_segment(version)}/files")

    def version_file(self, project, version, path):
        quoted = "/".join(_segment(p) for p in path.split("/"))
        return self.get(f"/projects/{_segment(project)}/versions/{_segment(version)}"
                        f"/files/{quoted}")

    # -- schedules -------------------------------------------------------------------
    def schedules(self, *, spider=None, enabled=None):
        """Every schedule (all pages), in creation order."""
        out, after = [], None
        while True:
            page = self.get("/schedules", spider=spider, after=after, limit=1000,
                            enabled=None if enabled is None else str(enabled).lower())
            out += page["schedules"]
            after = page["next"]
            if not after:
                return out

    def schedule(self, schedule_id):
        return self.get(f"/schedules/{_segment(schedule_id)}")

    def create_schedule(self, body):
        return self.post("/schedules", body)

    def update_schedule(self, schedule_id, changes, *, replace=False):
        return self.request("PUT" if replace else "PATCH",
                            f"/schedules/{_segment(schedule_id)}", json=changes).json()

    def delete_schedule(self, schedule_id):
        return self.request("DELETE", f"/schedules/{_segment(schedule_id)}").json()

    def enable_schedule(self, schedule_id):
        return self.post(f"/schedules/{_segment(schedule_id)}/enable")

    def disable_schedule(self, schedule_id):
        return self.post(f"/schedules/{_segment(schedule_id)}/disable")

    def schedule_history(self, schedule_id, *, limit=None, before=None):
        """{"fires": [...], "next": cursor}, newest first."""
        return self.get(f"/schedules/{_segment(schedule_id)}/history", limit=limit,
                        before=before)

    def preview_schedule(self, cron, timezone=None, count=None):
        body = {"cron": cron}
        if timezone:
            body["timezone"] = timezone
        if count:
            body["count"] = count
        return self.post("/schedules/preview", body)

    # -- following a task ----------------------------------------------------------
    def follow_log(self, task_id, offset=0, interval=FOLLOW_INTERVAL, sleep=time.sleep):
        """Yield log lines as they are stored, until the task is final and its
        log read to the end; returns the next offset."""
        while True:
            page = self.log(task_id, offset)
            yield from page["lines"]
            offset = page["next_offset"]
            if page["lines"]:
                continue
            if page["finished"]:
                return offset
            sleep(interval)

    def wait(self, task_id, interval=FOLLOW_INTERVAL, sleep=time.sleep):
        """The task document once its status is final."""
        while True:
            task = self.task(task_id)
            if is_final(task):
                return task
            sleep(interval)


def _segment(value):
    return requests.utils.quote(str(value), safe="")
