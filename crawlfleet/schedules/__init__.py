"""Schedules: the model, its validation, and when a cron expression fires.

A schedule runs a spider at the times of a cron expression read in an IANA
time zone. The web API writes schedules; the master's scheduler fires them
(master/scheduler.py). Both use this package, so they agree on what is valid
and on every fire time:

- `cron`: when a cron expression fires (croniter, time zones, DST rules);
- `validation`: a schedule's fields, defaults and checks;
- `storage`: the `schedules` collection and each schedule's fire history;
- `words`: a cron expression described in words (cron-descriptor).

The names below are the package's public face; import them from here.
"""

from crawlfleet.schedules.cron import (MACROS, MAX_PREVIEW, CronSpec, iso_time, load_timezone,
                                      preview)
from crawlfleet.schedules.storage import (DISPATCHING, FAILED, FIRED, QUEUED, SKIPPED, create,
                                          delete, get, history, new_schedule_id,
                                          public_schedule, set_enabled, timing, update)
from crawlfleet.schedules.validation import (ALERT_EVENTS, DEFAULT_ALERT_EVENTS, DEFAULTS,
                                             EMAIL_RE, FIELDS, MAX_DESCRIPTION,
                                             OVERLAP_POLICIES, check_fields, validate,
                                             validate_alerts, validate_nodes)
from crawlfleet.schedules.words import describe

__all__ = [
    "ALERT_EVENTS", "DEFAULTS", "DEFAULT_ALERT_EVENTS", "DISPATCHING", "EMAIL_RE", "FAILED",
    "FIELDS", "FIRED", "MACROS", "MAX_DESCRIPTION", "MAX_PREVIEW", "OVERLAP_POLICIES",
    "QUEUED", "SKIPPED", "CronSpec", "check_fields", "create", "delete", "describe", "get",
    "history",
    "iso_time", "load_timezone", "new_schedule_id", "preview", "public_schedule",
    "set_enabled", "timing", "update", "validate", "validate_alerts", "validate_nodes",
]
