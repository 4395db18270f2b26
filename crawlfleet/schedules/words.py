"""A cron expression in words, for people typing one (cron-descriptor).

The expression is checked by `CronSpec` first, so what is valid is decided
in one place (croniter's reading) and a bad one is a `BadRequest` with one
line. cron-descriptor reads a sixth field as *seconds first* (Quartz);
croniter, and so crawlfleet, puts seconds *last*: the field is moved to the
front before describing, and explained on its own line.
"""

from typing import Any

from cron_descriptor import ExpressionDescriptor, Options

from crawlfleet.errors import BadRequest
from crawlfleet.schedules.cron import MACROS, CronSpec


def _options(locale: str = "en") -> Options:
    options = Options()
    options.locale_code = locale  # cron-descriptor carries its own catalogs (zh_CN among them)
    options.use_24hour_time_format = True  # the fire times next to it are ISO, 24-hour
    options.verbose = False
    return options


def describe(cron: Any, tz: Any = "UTC", locale: str = "en") -> dict[str, Any]:
    """{"cron", "description", "seconds", "seconds_words"}: the whole expression
    in words (in `locale`, e.g. zh_CN) and, when it has a sixth field, what that
    seconds field means (else None): `seconds` as an English sentence,
    `seconds_words` the field alone, for a caller that words it in its own
    language."""
    spec = CronSpec(cron, tz)  # raises BadRequest with a readable line
    fields = spec.cron.split(" ")
    quartz = " ".join([fields[5], *fields[:5]]) if len(fields) == 6 else spec.cron
    try:
        descriptor = ExpressionDescriptor(quartz, _options(locale))
        description = descriptor.get_full_description()
        seconds = seconds_words = None
        if len(fields) == 6:
            seconds_words = descriptor.get_seconds_description()
            seconds = (f"The sixth field ({fields[5]}) is seconds: "
                       f"{seconds_words}, in each minute that matches the first five fields.")
    except Exception as exc:  # cron-descriptor's own errors have no common base
        raise BadRequest(f"cannot describe cron expression {cron!r}: {exc}") from None
    macro = " ".join(str(cron).split()).lower()
    if macro in MACROS:
        description = f"{macro} = {MACROS[macro]}: {description}"
    return {"cron": spec.cron, "timezone": spec.tz_name,
            "description": f"{description} ({spec.tz_name})", "seconds": seconds,
            "seconds_words": seconds_words}
