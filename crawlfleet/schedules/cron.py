"""When a cron expression fires, in an IANA time zone.

Cron syntax (croniter): five fields ``minute hour day-of-month month
day-of-week`` with ranges, lists, steps and names (``*/15 9-17 * * MON-FRI``),
``L`` and ``#`` (``0 3 * * 5#2``), or a macro (@yearly, @monthly, @weekly,
@daily, @hourly). An optional sixth field is seconds, last as croniter reads
it: ``* * * * * */10`` fires every ten seconds. When both day fields are
restricted, a day matching either fires (classic cron).

Time zones and DST. Fire times are wall-clock times in the schedule's zone
(default UTC), with two rules for the days clocks change:

- A schedule whose hour field is every hour (``*``) follows elapsed time: a
  wall time skipped by a spring-forward does not fire (that real hour did
  not happen), and in the repeated hour of a fall-back it fires on both
  passes (two real hours went by).
- Any other schedule fires once per matching wall time: a time skipped by a
  spring-forward (02:30 on the night clocks go from 02:00 to 03:00) fires
  once, at the moment the clocks jump (03:00 local); a time that occurs
  twice in a fall-back fires once, on its first occurrence.

Fire times are whole seconds, UTC epoch floats, like every ledger timestamp.
"""

from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterBadDateError, CroniterError

from crawlfleet.errors import BadRequest
from crawlfleet.models import now

MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MAX_PREVIEW = 50
_SLOW_PATH = object()


class CronSpec:
    """A validated cron expression in a time zone; computes fire times.

    Not thread-safe (it reuses one croniter iterator): make one per thread.
    """

    def __init__(self, cron: Any, tz: Any = "UTC") -> None:
        if not isinstance(cron, str) or not cron.strip():
            raise BadRequest("cron must be a cron expression such as '*/5 * * * *'")
        expr = " ".join(cron.split())
        expr = MACROS.get(expr.lower(), expr)
        fields = expr.split(" ")
        if len(fields) not in (5, 6):
            raise BadRequest(
                f"invalid cron expression {cron!r}: expected 5 fields (minute hour "
                "day-of-month month day-of-week) or 6 (the sixth is seconds), "
                f"got {len(fields)}")
        try:
            self._iter = croniter(expr, datetime(2000, 1, 1), ret_type=datetime)
        except (CroniterError, ValueError, KeyError, TypeError) as exc:
            raise BadRequest(f"invalid cron expression {cron!r}: {exc}") from None
        self.cron = expr
        self.tz_name, self.tz = load_timezone(tz)
        hours = self._iter.expanded[1]
        self.every_hour = hours == ["*"] or len(hours) == 24
        if self.next_after(now()) is None:
            raise BadRequest(f"cron expression {cron!r} never fires")

    # -- public ------------------------------------------------------------------
    def next_after(self, t: float) -> float | None:
        """The first fire time strictly after epoch `t`, or None if there is none."""
        if self.every_hour:
            found = self._next_elapsed(t)
            if found is not _SLOW_PATH:
                return found
        return self._next_wall(t)

    def _next_elapsed(self, t: float) -> Any:
        """Hour field `*`: the first instant after `t` whose local reading matches.

        Walks the offset segments: within one, local time is the instant plus
        the offset; at a transition, it goes on from the new local reading."""
        u, inclusive = t, False
        for _ in range(4):
            offset = datetime.fromtimestamp(u, self.tz).utcoffset() or timedelta(0)
            wall = datetime.fromtimestamp(u, self.tz).replace(tzinfo=None, fold=0)
            self._iter.set_current(wall - timedelta(microseconds=1) if inclusive else wall,
                                   force=True)
            try:
                match = self._iter.get_next(datetime)
            except CroniterBadDateError:
                return None
            instant = match.replace(tzinfo=timezone.utc).timestamp() - offset.total_seconds()
            if instant - u > 30 * 86400:
                return _SLOW_PATH  # several transitions may lie between: walk wall times
            if datetime.fromtimestamp(instant, self.tz).utcoffset() == offset:
                return instant
            u, inclusive = self._jump(u, instant), True  # the offset changes on the way
        return _SLOW_PATH

    def _next_wall(self, t: float) -> float | None:
        """Walk matching wall times, mapping each to its instants (see module doc)."""
        local = datetime.fromtimestamp(t, self.tz)
        wall = local.replace(tzinfo=None, fold=0)
        if self.every_hour:
            # In the first pass of a fall-back, earlier wall times still have a
            # second occurrence ahead: start as far back as the offset drops.
            # (a zone's offset is never None: `or` is for the type checker)
            later = datetime.fromtimestamp(t + 3 * 3600, self.tz).utcoffset() or timedelta(0)
            drop = (local.utcoffset() or timedelta(0)) - later
            if drop > timedelta(0):
                wall -= drop
        self._iter.set_current(wall, force=True)
        best = None
        for _ in range(100_000):  # bounds the walk; never reached in practice
            try:
                candidate = self._iter.get_next(datetime)
            except CroniterBadDateError:
                return best
            instants = self._instants(candidate)
            if not instants:
                continue
            if best is not None and instants[0] >= best:
                break
            for instant in instants:
                if instant > t and (best is None or instant < best):
                    best = instant
        return best

    def first_at_or_after(self, t: float) -> float | None:
        return self.next_after(t - 0.001)

    def next_times(self, t: float, count: int) -> list[float]:
        out: list[float] = []
        while len(out) < count:
            found = self.next_after(t)
            if found is None:
                break
            out.append(found)
            t = found
        return out

    def between(self, lo: float, hi: float, limit: int) -> tuple[list[float], bool]:
        """Fire times in [lo, hi], at most `limit`; and whether more were left out."""
        out: list[float] = []
        t = self.first_at_or_after(lo)
        while t is not None and t <= hi:
            if len(out) >= limit:
                return out, True
            out.append(t)
            t = self.next_after(t)
        return out, False

    def latest_between(self, floor: float, t: float) -> float | None:
        """The last fire time in [floor, t] (None if there is none), without
        walking every fire time since `floor`."""
        span = 1.0
        while True:
            lo = max(floor, t - span)
            first = self.first_at_or_after(lo)
            if first is not None and first <= t:
                while True:
                    following = self.next_after(first)
                    if following is None or following > t:
                        return first
                    first = following
            if lo <= floor:
                return None
            span *= 4

    def iso(self, t: float | None) -> str | None:
        return iso_time(t, self.tz)

    # -- DST -----------------------------------------------------------------------
    def _instants(self, wall: datetime) -> list[float]:
        """The epoch instants a matching wall time fires at (see module doc)."""
        first = wall.replace(tzinfo=self.tz, fold=0).timestamp()
        second = wall.replace(tzinfo=self.tz, fold=1).timestamp()
        if first == second:
            return [first]
        exists = datetime.fromtimestamp(first, self.tz).replace(tzinfo=None) == wall
        if exists:  # ambiguous: fold 0 is the first occurrence
            return [first, second] if self.every_hour else [first]
        if self.every_hour:  # skipped by a spring-forward
            return []
        return [self._jump(min(first, second), max(first, second))]

    def _jump(self, lo: float, hi: float) -> float:
        """The instant in (lo, hi] at which the zone's offset changes."""
        after = datetime.fromtimestamp(hi, self.tz).utcoffset()
        lo, hi = int(lo), int(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if datetime.fromtimestamp(mid, self.tz).utcoffset() == after:
                hi = mid
            else:
                lo = mid
        return float(hi)


def load_timezone(name: Any) -> tuple[str, ZoneInfo]:
    """(name, ZoneInfo) of an IANA zone name; BadRequest when it is unknown."""
    if name in (None, ""):
        name = "UTC"
    if not isinstance(name, str) or len(name) > 100:
        raise BadRequest("timezone must be an IANA time zone name such as 'Europe/Paris'")
    try:
        return name, ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadRequest(f"unknown timezone {name!r}: use an IANA name such as "
                         "'Europe/Paris', 'America/New_York' or 'UTC'") from None


def iso_time(t: float | None, tz: tzinfo = timezone.utc) -> str | None:
    """ISO 8601 with the zone's offset, e.g. 2024-03-31T03:00:00+02:00."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, tz).isoformat()


def preview(cron: Any, tz: Any = "UTC", count: Any = 5,
            start: float | None = None) -> dict[str, Any]:
    """The next `count` fire times of an expression, for a user choosing one."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PREVIEW:
        raise BadRequest(f"count must be an integer from 1 to {MAX_PREVIEW}")
    spec = CronSpec(cron, tz)
    times = spec.next_times(now() if start is None else start, count)
    return {"cron": spec.cron, "timezone": spec.tz_name,
            "fire_times": [spec.iso(t) for t in times], "fire_at": times}
