"""When a schedule expression fires: fire times in a time zone, across DST changes.

Time zones follow EventBridge Scheduler for every dialect but ``rate``: fire times are computed on
the local wall clock, a local time that does not exist (the hour skipped when clocks spring
forward) is skipped, and an ambiguous one (the hour repeated when they fall back) fires once, at
its first occurrence. A ``rate`` counts elapsed time, so ``rate(1 day)`` is always 24 hours. An
``at`` time that falls in a skipped hour never fires (creating such a schedule is refused).

Standard cron is evaluated by `cronsim <https://github.com/cuu508/cronsim>`_ (pure computation,
no I/O). No library evaluates AWS's dialect: cronsim and croniter have no year field and no
``?``, count weekdays from 0 = Sunday, reject wrapping ranges, and let ``31W`` fall back to the
30th in short months where AWS skips the month; so the AWS evaluator is written here, walking
matching days and then their hours and minutes. Every walk stops at
:data:`~dockyard.domain.schedules.LAST_YEAR`, so an expression that never fires again ends.
"""

from __future__ import annotations

import bisect
import calendar
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim

from dockyard.domain.schedules import (
    LAST_YEAR,
    AtExpression,
    AwsCronExpression,
    DaySpec,
    Expression,
    RateExpression,
    StandardCronExpression,
    parse_expression,
    parse_timezone,
)

__all__ = ["fire_times", "next_fire_times"]


# -- local wall-clock times ------------------------------------------------------------------


def _aws_cron_times(expression: AwsCronExpression, start: datetime) -> Iterator[datetime]:
    """Naive local fire times at or after ``start``, ascending, until the last year."""
    day = start.date()
    last_year = min(max(expression.years), LAST_YEAR)
    while day.year <= last_year:
        if day.year not in expression.years:
            day = date(day.year + 1, 1, 1)
            continue
        if day.month not in expression.months:
            day = _first_of_next_month(day)
            continue
        if _matches(expression, day):
            # On the first day, start at start's hour and minute instead of walking to it.
            first_day = day == start.date()
            hours = (
                expression.hours[bisect.bisect_left(expression.hours, start.hour) :]
                if first_day
                else expression.hours
            )
            for hour in hours:
                minutes = expression.minutes
                if first_day and hour == start.hour:
                    minutes = minutes[bisect.bisect_left(minutes, start.minute) :]
                for minute in minutes:
                    yield datetime(day.year, day.month, day.day, hour, minute)
        day += timedelta(days=1)


def _standard_cron_times(expression: StandardCronExpression, start: datetime) -> Iterator[datetime]:
    """Naive local fire times at or after ``start``, ascending, until the last year."""
    for moment in CronSim(expression.fields, start - timedelta(minutes=1)):
        if moment.year > LAST_YEAR:
            return
        if moment >= start:
            yield moment


def _matches(expression: AwsCronExpression, day: date) -> bool:
    if day.month not in expression.months or day.year not in expression.years:
        return False
    if expression.day_of_month is not None:
        return _matches_day_of_month(expression.day_of_month, day)
    assert expression.day_of_week is not None
    return _matches_day_of_week(expression.day_of_week, day)


def _first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _aws_weekday(day: date) -> int:
    """1 = Sunday … 7 = Saturday."""
    return (day.weekday() + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, target: int, length: int) -> int | None:
    """The weekday nearest ``target`` without leaving the month (None if the month is short)."""
    if target > length:
        return None
    weekday = date(year, month, target).weekday()
    if weekday == 5:  # Saturday: the Friday before, or the Monday after the 1st
        return target + 2 if target == 1 else target - 1
    if weekday == 6:  # Sunday: the Monday after, or the Friday before the last day
        return target - 2 if target == length else target + 1
    return target


def _matches_day_of_month(spec: DaySpec, day: date) -> bool:
    if day.day in spec.days:
        return True
    length = calendar.monthrange(day.year, day.month)[1]
    if spec.last and day.day == length:
        return True
    if spec.last_weekday:
        last = date(day.year, day.month, length)
        shift = max(last.weekday() - 4, 0)
        if day.day == length - shift:
            return True
    return any(
        _nearest_weekday(day.year, day.month, target, length) == day.day
        for target in spec.nearest_weekday
    )


def _matches_day_of_week(spec: DaySpec, day: date) -> bool:
    weekday = _aws_weekday(day)
    if weekday in spec.days:
        return True
    length = calendar.monthrange(day.year, day.month)[1]
    if weekday in spec.last_of and day.day + 7 > length:
        return True
    return spec.nth is not None and spec.nth == (weekday, (day.day - 1) // 7 + 1)


def _exists(moment: datetime, zone: ZoneInfo) -> datetime | None:
    """``moment`` (naive, local) in ``zone`` at its first occurrence; None if the clocks skip it."""
    aware = moment.replace(tzinfo=zone)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != moment:
        return None
    return aware


# -- aware fire times ------------------------------------------------------------------------


def fire_times(
    expression: Expression,
    *,
    zone: ZoneInfo,
    after: datetime,
    anchor: datetime | None = None,
) -> Iterator[datetime]:
    """Fire times strictly after ``after`` (aware), ascending, as aware times in ``zone``.

    ``anchor`` is where a ``rate`` counts from (default ``after``); other dialects ignore it.
    """
    if after.tzinfo is None:
        raise ValueError("after must be an aware datetime")
    if isinstance(expression, RateExpression):
        start = anchor if anchor is not None else after
        period = expression.period
        skipped = max((after - start) // period + 1, 0) if after >= start else 0
        moment = start + skipped * period
        while moment.year <= LAST_YEAR:
            yield moment.astimezone(zone)
            moment += period
        return
    if isinstance(expression, AtExpression):
        aware = _exists(expression.moment, zone)
        if aware is not None and aware > after:
            yield aware
        return
    local = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
    local_times = (
        _aws_cron_times(expression, local)
        if isinstance(expression, AwsCronExpression)
        else _standard_cron_times(expression, local)
    )
    for local_time in local_times:
        existing = _exists(local_time, zone)
        if existing is not None and existing > after:
            yield existing


def next_fire_times(
    text: str,
    *,
    timezone: str = "UTC",
    after: datetime | None = None,
    count: int = 5,
    anchor: datetime | None = None,
) -> list[datetime]:
    """The next ``count`` fire times of ``text`` strictly after ``after`` (default now).

    What ``dockyard schedules next`` prints: check an expression before trusting it.
    """
    if not 1 <= count <= 1000:
        raise ValueError("count must be 1 to 1000")
    expression = parse_expression(text)
    zone = parse_timezone(timezone)
    start = after if after is not None else datetime.now(UTC)
    times: list[datetime] = []
    for moment in fire_times(expression, zone=zone, after=start, anchor=anchor):
        times.append(moment)
        if len(times) == count:
            break
    return times
