"""Schedule expressions: what a schedule's expression says, parsed and checked as AWS would.

Four dialects, told apart by their first characters:

- ``cron(min hour day-of-month month day-of-week year)``: AWS's six fields with ``, - * / ? L W #``,
  month and weekday names, day-of-week 1 = Sunday, one of the day fields ``?``, ranges that wrap
  (``22-2`` hours);
- ``rate(N unit)``: every N minutes, hours or days of elapsed time from an anchor (the schedule's
  start, else its creation), 1 with the singular unit and more with the plural, as AWS requires;
- ``at(yyyy-mm-ddThh:mm:ss)``: once, at a local wall-clock time with no zone;
- standard five-field cron (``m h dom mon dow``, 0 or 7 = Sunday, a day matching either day field
  when both are set) and ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``.

Parsing is complete: an expression that parses has a meaning, and one that does not raises
:class:`ScheduleExpressionError` with AWS's wording and the field at fault. Standard cron is
checked by `cronsim <https://github.com/cuu508/cronsim>`_; the AWS dialect is parsed here (no
library reads it). When an expression fires is :mod:`dockyard.domain.fire_times`.
"""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from dockyard.errors import ValidationError

__all__ = [
    "LAST_YEAR",
    "AtExpression",
    "AwsCronExpression",
    "DaySpec",
    "Expression",
    "RateExpression",
    "ScheduleExpressionError",
    "StandardCronExpression",
    "parse_expression",
    "parse_timezone",
]

#: The last year an AWS cron expression may name; iteration stops there.
LAST_YEAR = 2199
FIRST_YEAR = 1970
MAX_RATE_SECONDS = 100 * 366 * 86400


class ScheduleExpressionError(ValidationError, ValueError):
    """An expression or time zone AWS would reject, and why."""

    def __init__(self, text: str, detail: str, *, field: str = "expression") -> None:
        what = "Schedule Expression" if field == "expression" else "time zone"
        self.message = f"Invalid {what} {text}: {detail}"
        super().__init__(field, self.message)

    def __str__(self) -> str:
        return self.message


# -- the dialects ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DaySpec:
    """What one of the day fields asks for (None: the field is ``?``)."""

    days: frozenset[int] = frozenset()
    #: Day of month: ``L``; day of week: never (``L`` alone is Saturday, in ``days``).
    last: bool = False
    #: Day of month: ``LW``.
    last_weekday: bool = False
    #: Day of month: ``nW``, the weekday nearest each n within the month.
    nearest_weekday: frozenset[int] = frozenset()
    #: Day of week: ``dL``, the last d of the month.
    last_of: frozenset[int] = frozenset()
    #: Day of week: ``d#n``, the n-th d of the month.
    nth: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class AwsCronExpression:
    """AWS's six-field cron, each plain field expanded to its values (minutes and hours sorted,
    for the walk in :mod:`dockyard.domain.fire_times`); exactly one day field is set."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    years: frozenset[int]
    day_of_month: DaySpec | None
    day_of_week: DaySpec | None


@dataclass(frozen=True, slots=True)
class StandardCronExpression:
    """Five-field cron or a macro, already accepted by cronsim."""

    text: str
    #: What cronsim evaluates (a macro spelled out).
    fields: str


@dataclass(frozen=True, slots=True)
class RateExpression:
    """Every ``period`` of elapsed time, counted from an anchor the schedule gives."""

    text: str
    period: timedelta


@dataclass(frozen=True, slots=True)
class AtExpression:
    """Once, at a wall-clock time of the schedule's time zone."""

    text: str
    #: Local wall-clock time in the schedule's time zone.
    moment: datetime


Expression = AwsCronExpression | StandardCronExpression | RateExpression | AtExpression


# -- parsing ---------------------------------------------------------------------------------

_MONTHS = {name.upper(): number for number, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_RATE = re.compile(r"rate\(([^ ()]*) ([^ ()]*)\)")
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_AT = re.compile(r"at\(([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\)")
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_CRONSIM_FIELDS = {
    "minute": "minutes",
    "hour": "hours",
    "day-of-month": "day-of-month",
    "month": "month",
    "day-of-week": "day-of-week",
}


@functools.lru_cache(maxsize=4096)
def parse_expression(text: str) -> Expression:
    """Parse any dialect; raise :class:`ScheduleExpressionError` saying what is wrong.

    Cached: the scheduler reads the same few expressions again and again."""
    if not isinstance(text, str) or not text:
        raise ScheduleExpressionError(str(text), "the expression is empty")
    if text.startswith("cron(") and text.endswith(")"):
        return _parse_aws_cron(text)
    if text.startswith("rate("):
        return _parse_rate(text)
    if text.startswith("at("):
        return _parse_at(text)
    return _parse_standard_cron(text)


def parse_timezone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; raise :class:`ScheduleExpressionError` when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleExpressionError(
            name, "unknown time zone (an IANA name such as Europe/Paris)", field="timezone"
        ) from None


def _parse_rate(text: str) -> RateExpression:
    match = _RATE.fullmatch(text)
    if match is None:
        raise ScheduleExpressionError(text, "a rate is rate(value unit), e.g. rate(5 minutes)")
    value, unit = match.groups()
    if not _digits(value) or int(value) <= 0:
        raise ScheduleExpressionError(text, "the rate value must be a positive whole number")
    count = int(value)
    singular = unit.removesuffix("s") if unit.endswith("s") else unit
    if singular not in _RATE_UNITS:
        raise ScheduleExpressionError(
            text, "the rate unit must be minute(s), hour(s) or day(s), in lower case"
        )
    if count == 1 and unit != singular:
        raise ScheduleExpressionError(text, f"the rate unit for 1 is singular: rate(1 {singular})")
    if count > 1 and unit == singular:
        raise ScheduleExpressionError(
            text, f"the rate unit for {count} is plural: rate({count} {singular}s)"
        )
    seconds = count * _RATE_UNITS[singular]
    if seconds > MAX_RATE_SECONDS:
        raise ScheduleExpressionError(text, "the rate value: a rate is at most 100 years")
    return RateExpression(text=text, period=timedelta(seconds=seconds))


def _parse_at(text: str) -> AtExpression:
    match = _AT.fullmatch(text)
    if match is None:
        raise ScheduleExpressionError(
            text, "at takes a local date and time: at(yyyy-mm-ddThh:mm:ss), with no zone"
        )
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError as error:
        raise ScheduleExpressionError(text, f"at: {error}") from None
    return AtExpression(text=text, moment=moment)


def _parse_standard_cron(text: str) -> StandardCronExpression:
    fields = _MACROS.get(text)
    if fields is None:
        if text.startswith("@"):
            known = ", ".join(_MACROS)
            raise ScheduleExpressionError(text, f"unknown macro (known: {known})")
        parts = text.split()
        if len(parts) != 5:
            raise ScheduleExpressionError(
                text,
                f"standard cron has 5 fields (minute hour day-of-month month day-of-week),"
                f" found {len(parts)}; AWS's 6 fields go in cron(...)",
            )
        fields = " ".join(parts)
    try:
        CronSim(fields, datetime(2000, 1, 1))
    except CronSimError as error:
        detail = str(error)
        for word, name in _CRONSIM_FIELDS.items():
            if f"bad {word}" in detail.lower():
                detail = f"{name}: {detail[0].lower()}{detail[1:]}"
                break
        raise ScheduleExpressionError(text, detail) from None
    return StandardCronExpression(text=text, fields=fields)


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_MINUTES = _Field("minutes", 0, 59)
_HOURS = _Field("hours", 0, 23)
_DAY_OF_MONTH = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS)
_DAY_OF_WEEK = _Field("day-of-week", 1, 7, _WEEKDAYS)
_YEAR = _Field("year", FIRST_YEAR, LAST_YEAR)


def _parse_aws_cron(text: str) -> AwsCronExpression:
    parts = text[len("cron(") : -1].split(" ")
    if len(parts) != 6 or not all(parts):
        raise ScheduleExpressionError(
            text,
            "cron takes 6 fields separated by single spaces: minutes hours day-of-month month"
            " day-of-week year",
        )
    minute, hour, dom, month, dow, year = parts
    if (dom == "?") == (dow == "?"):
        raise ScheduleExpressionError(text, "exactly one of day-of-month and day-of-week must be ?")
    return AwsCronExpression(
        text=text,
        minutes=tuple(sorted(_values(text, _MINUTES, minute))),
        hours=tuple(sorted(_values(text, _HOURS, hour))),
        months=frozenset(_values(text, _MONTH, month)),
        years=frozenset(_values(text, _YEAR, year)),
        day_of_month=None if dom == "?" else _day_of_month(text, dom),
        day_of_week=None if dow == "?" else _day_of_week(text, dow),
    )


def _digits(token: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes ``²`` and full-width digits)."""
    return token.isascii() and token.isdigit()


def _number(text: str, field: _Field, token: str) -> int:
    upper = token.upper()
    if field.names is not None and upper in field.names:
        return field.names[upper]
    if not _digits(token):
        raise ScheduleExpressionError(text, f"{field.name}: {token!r} is not a valid value")
    value = int(token)
    if not field.low <= value <= field.high:
        raise ScheduleExpressionError(
            text, f"{field.name}: {value} is out of range {field.low}-{field.high}"
        )
    return value


def _values(text: str, field: _Field, spec: str) -> set[int]:
    """The values of a plain field: ``*``, ``a``, ``a-b`` (wrapping), each with an optional
    ``/step``, separated by commas."""
    values: set[int] = set()
    for item in spec.split(","):
        values.update(_item_values(text, field, item))
    return values


def _item_values(text: str, field: _Field, item: str) -> list[int]:
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not _digits(step_text) or int(step_text) == 0:
            raise ScheduleExpressionError(
                text, f"{field.name}: the step in {item!r} must be a positive whole number"
            )
        step = int(step_text)
    span = field.high - field.low + 1
    if base == "*":
        sequence = list(range(field.low, field.high + 1))
    elif "-" in base:
        first_text, _, last_text = base.partition("-")
        first = _number(text, field, first_text)
        last = _number(text, field, last_text)
        length = (last - first) % span + 1
        sequence = [field.low + (first - field.low + i) % span for i in range(length)]
    else:
        first = _number(text, field, base)
        # ``a/b`` runs from a to the end of the field; a bare ``a`` is just a.
        sequence = list(range(first, field.high + 1)) if slash else [first]
    return sequence[::step]


def _day_of_month(text: str, spec: str) -> DaySpec:
    days: set[int] = set()
    last = last_weekday = False
    nearest: set[int] = set()
    for item in spec.split(","):
        if item == "L":
            last = True
        elif item == "LW":
            last_weekday = True
        elif item.endswith("W"):
            nearest.add(_number(text, _DAY_OF_MONTH, item[:-1]))
        elif "L" in item or "W" in item:
            raise ScheduleExpressionError(
                text, f"day-of-month: {item!r} is not valid (L, LW and nW are)"
            )
        else:
            days.update(_item_values(text, _DAY_OF_MONTH, item))
    return DaySpec(
        days=frozenset(days),
        last=last,
        last_weekday=last_weekday,
        nearest_weekday=frozenset(nearest),
    )


def _day_of_week(text: str, spec: str) -> DaySpec:
    days: set[int] = set()
    last_of: set[int] = set()
    nth: tuple[int, int] | None = None
    items = spec.split(",")
    if sum("#" in item for item in items) > 1:
        raise ScheduleExpressionError(text, "day-of-week: only one # expression is allowed")
    for item in items:
        if item == "L":
            days.add(_WEEKDAYS["SAT"])
        elif "#" in item:
            weekday, _, number = item.partition("#")
            if not _digits(number) or not 1 <= int(number) <= 5:
                raise ScheduleExpressionError(
                    text, f"day-of-week: in {item!r} the week must be 1 to 5"
                )
            nth = (_number(text, _DAY_OF_WEEK, weekday), int(number))
        elif item.endswith("L") and len(item) > 1:
            last_of.add(_number(text, _DAY_OF_WEEK, item[:-1]))
        else:
            days.update(_item_values(text, _DAY_OF_WEEK, item))
    return DaySpec(days=frozenset(days), last_of=frozenset(last_of), nth=nth)
