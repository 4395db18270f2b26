"""A task's live log as server-sent events, from a line offset until the task
is final."""

import json
import time

from flask import Response, request, stream_with_context

from crawlfleet.models import FINAL_VALUES
from web import export, services
from web.tasks_ui import get_task
from web.ui import bp

SSE_POLL = 0.5            # seconds between reads of the stored log while it grows
SSE_POLL_IDLE = 2.0       # ... at most, backed off while it does not (hundreds of open
                          # streams must not keep the store busy: README, Security)
SSE_BATCH = 500           # lines per event
SSE_KEEPALIVE = 15.0      # seconds between comments that keep proxies from closing
SSE_MAX_SECONDS = 300.0   # a stream ends after this; EventSource reconnects from its last id


@bp.get("/tasks/<task_id>/log/stream")
def log_stream(task_id):
    """Server-sent events: the task's log from a line offset, until the task is final.

    Each event carries up to SSE_BATCH lines as a JSON list and, as its id,
    the offset after them, so EventSource resumes where it stopped
    (``Last-Event-ID``). One stream lasts at most SSE_MAX_SECONDS, which
    bounds how long it holds a gunicorn thread.
    """
    get_task(task_id)
    store = services().store
    raw = request.headers.get("Last-Event-ID") or request.args.get("offset") or "0"
    try:
        offset = max(0, int(raw))
    except ValueError:
        offset = 0

    def events():
        position, pause = offset, SSE_POLL
        started = last_sent = time.monotonic()
        yield "retry: 2000\n\n"
        while time.monotonic() - started < SSE_MAX_SECONDS:
            lines, position_after = export.log_page(store.task_logs, task_id, position,
                                                    SSE_BATCH)
            if lines or position_after != position:
                position = position_after
                yield f"id: {position}\ndata: {json.dumps(lines, ensure_ascii=False)}\n\n"
                last_sent = time.monotonic()
                pause = SSE_POLL
                continue
            task = store.tasks.find_one({"_id": task_id}, {"status": 1})
            if task is None or task["status"] in FINAL_VALUES:
                # The node stores the whole log before the final status: read
                # what was written between the last page and the status check.
                while True:
                    lines, after = export.log_page(store.task_logs, task_id, position,
                                                   SSE_BATCH)
                    if after == position:
                        break
                    position = after
                    yield f"id: {position}\ndata: {json.dumps(lines, ensure_ascii=False)}\n\n"
                yield f"event: end\ndata: {json.dumps(task and task['status'])}\n\n"
                return
            if time.monotonic() - last_sent > SSE_KEEPALIVE:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
            time.sleep(pause)
            pause = min(SSE_POLL_IDLE, pause * 2)

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
