"""Schedule expressions: parsing and next fire times (dockyard.domain.schedules).

Where the cases come from:

- Valid and invalid expressions: /work/shared/reference/aws-semantics.md §4.1 — the lists AWS itself
  validated (localstack's rule and Scheduler tests), the AWS user guide's example table, and the
  cronplan/rules extras listed there — used verbatim.
- Next fire times in UTC: §4.2 (aws-cron-parser, aws-croniter, cronplan; strictly after ``from``),
  verbatim, except the undocumented ``L-n`` row, which is deliberately not tested either way.
- Everything else (leap years, ``L``/``W``/``#``, year lists, wrapped ranges, rate anchors, ``at``,
  standard 5-field cron and its macros) was computed by hand with the ``calendar`` module.
- Time zones: §4.3 and gotcha 6 in §9 (AWS Scheduler: a local time that does not exist is skipped, an
  ambiguous one fires once, at its first occurrence; a ``days`` rate is exactly 24 h of elapsed
  time). Europe/Paris switches on 2026-03-29 (02:00 -> 03:00) and 2026-10-25 (03:00 -> 02:00);
  America/New_York on 2026-03-08 (02:00 -> 03:00) and 2026-11-01 (02:00 -> 01:00).

Fire times are compared as ISO strings with their UTC offset, so a test checks both the instant and
the local wall-clock time a user would see.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dockyard.domain.fire_times import next_fire_times
from dockyard.domain.schedules import ScheduleExpressionError, parse_expression


def stamp(moment: datetime) -> str:
    """``2026-03-28T02:30+01:00``; seconds only when they are not zero (so they show up in a diff)."""
    if moment.second == 0 and moment.microsecond == 0:
        return moment.isoformat(timespec="minutes")
    return moment.isoformat()


def fires(
    text: str,
    after: str,
    *,
    count: int = 5,
    timezone: str = "UTC",
    anchor: str | None = None,
) -> list[str]:
    """The next fire times of ``text`` strictly after the ISO instant ``after``, as stamps."""
    times = next_fire_times(
        text,
        timezone=timezone,
        after=datetime.fromisoformat(after),
        count=count,
        anchor=None if anchor is None else datetime.fromisoformat(anchor),
    )
    return [stamp(moment) for moment in times]


def utc(*moments: str) -> list[str]:
    """``utc("2020-05-29T10:15")`` -> ``["2020-05-29T10:15+00:00"]``."""
    return [f"{moment}+00:00" for moment in moments]


def error_of(text: str) -> str:
    with pytest.raises(ScheduleExpressionError) as caught:
        parse_expression(text)
    return str(caught.value)


# --- 1. Parsing -----------------------------------------------------------------------------------

AWS_VALID = [
    # §4.1 Scheduler: accepted by AWS.
    "cron(0-15/1 8-8 ? * 2,3,4,5,6,7 *)",
    "cron(30-30 13-13 ? * 2,4,6 *)",
    "cron(1-31/30 1-1 ? * 1,7 *)",
    "cron(0 18 ? * MON-FRI *)",
    "cron(*/15 * * * ? *)",
    "cron(0-59/10 0-23/2 ? * * *)",
    "at(2022-12-31T23:59:59)",
    # §4.1 rules: the AWS user guide's example table...
    "cron(0 10 * * ? *)",
    "cron(15 12 * * ? *)",
    "cron(0 8 1 * ? *)",
    "cron(0/15 * * * ? *)",
    "cron(0/10 * ? * MON-FRI *)",
    "cron(0/5 8-17 ? * MON-FRI *)",
    "cron(0/30 20-2 ? * MON-FRI *)",
    "cron(0 9 ? * 2#1 *)",
    # ... plus the extras listed in §4.1.
    "cron(15 10 ? * 6L 2002-2005)",
    "cron(0 2 ? * SAT#3 *)",
    "cron(* * ? * SAT#3 *)",
    "cron(0/5 5 ? JAN 1-5 2022)",
    "cron(0/30 20-23 ? * MON-FRI *)",
    # Rates: value 1 with the singular, more with the plural.
    "rate(1 minute)",
    "rate(5 minutes)",
    "rate(1 hour)",
    "rate(12 hours)",
    "rate(1 day)",
    "rate(7 days)",
]

AWS_INVALID = [
    # §4.1 rules, validated by AWS.
    "rate(10 seconds)",
    "rate(10 years)",
    "rate(1 minutes)",
    "rate(1 hours)",
    "rate(1 days)",
    "rate(10 minute)",
    "rate(10 hour)",
    "rate(10 day)",
    "rate()",
    "rate(10)",
    "rate(10 minutess)",
    "rate(foo minutes)",
    "rate(0 minutes)",
    "rate(-10 minutes)",
    "rate(10 MINUTES)",
    "rate( 10 minutes )",
    " rate(10 minutes)",
    "cron(0 1 * * * *)",
    "cron(7 20 * * NOT *)",
    "cron(INVALID)",
    "cron(0 dummy ? * MON-FRI *)",
    "cron(71 8 1 * ? *)",
    # §4.1 Scheduler: the same cron list plus these.
    "cron()",
    "at(2021-12-31T23:59:59Z)",
    "at(2021-12-31)",
    # §4.1: only one `#` item per field.
    "cron(0 0 ? * 3#1,6#3 *)",
]

MORE_INVALID = [
    "cron(0 0 ? * ? *)",  # both day fields are `?`
    "cron(0 0 1 * 2 *)",  # neither is `?`
    "cron(0 0 * * ?)",  # five fields inside cron(...)
    "cron(0 0 * * ? * *)",  # seven fields
    "cron(60 0 * * ? *)",
    "cron(0 24 * * ? *)",
    "cron(0 0 0 * ? *)",
    "cron(0 0 32 * ? *)",
    "cron(0 0 1 13 ? *)",
    "cron(0 0 1 FOO ? *)",
    "cron(0 0 ? * 0 *)",  # AWS day-of-week is 1-7
    "cron(0 0 ? * 8 *)",
    "cron(0 0 1 * ? 1969)",
    "cron(0 0 1 * ? 2200)",
    "at(2022-02-30T00:00:00)",
    "at(2022-12-31T24:00:00)",
    "",
    "61 * * * *",
    "0 0 32 * *",
    "0 0 * * 8",
    "* * * *",  # 4 fields
    "0 0 * * ? *",  # 6 fields without cron(...)
    "0 0 * * * *",
    "@every",
    "@every 5m",
    "@fortnightly",
    # Digits are ASCII digits: not superscripts, full-width or other scripts' digits.
    "rate(² minutes)",
    "rate(５ minutes)",
    "cron(² 0 * * ? *)",
    "cron(５ 0 * * ? *)",
    "at(２０３０-01-01T00:00:00)",
]

STANDARD_VALID = [
    "* * * * *",
    "*/5 * * * *",
    "0 0 1,15 * 1",
    "0 9 * * 1-5",
    "0 0 * * 0",
    "0 0 * * 7",
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
]


def test_the_error_is_a_value_error() -> None:
    assert issubclass(ScheduleExpressionError, ValueError)


@pytest.mark.parametrize("text", AWS_VALID + STANDARD_VALID)
def test_valid_expressions_parse(text: str) -> None:
    parse_expression(text)


@pytest.mark.parametrize("text", AWS_INVALID + MORE_INVALID)
def test_invalid_expressions_are_rejected_with_the_aws_message(text: str) -> None:
    assert error_of(text).startswith(f"Invalid Schedule Expression {text}: ")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("cron(71 8 1 * ? *)", "minutes"),
        ("cron(0 dummy ? * MON-FRI *)", "hours"),
        ("cron(0 0 32 * ? *)", "day-of-month"),
        ("cron(0 0 1 13 ? *)", "month"),
        ("cron(0 0 ? * 3#1,6#3 *)", "day-of-week"),
        ("cron(0 0 ? * 8 *)", "day-of-week"),
        ("cron(0 0 1 * ? 2200)", "year"),
        ("rate(foo minutes)", "rate value"),
        ("rate(0 minutes)", "rate value"),
        ("rate(5 hour)", "rate unit"),  # 5 needs the plural
        ("rate(1 hours)", "rate unit"),  # 1 needs the singular
        ("rate(10 seconds)", "rate unit"),
        ("at(2021-12-31)", "at"),
        ("61 * * * *", "minutes"),
    ],
)
def test_the_message_names_the_field_at_fault(text: str, field: str) -> None:
    detail = error_of(text).removeprefix(f"Invalid Schedule Expression {text}: ")
    assert field in detail


def test_next_fire_times_rejects_an_invalid_expression() -> None:
    with pytest.raises(ScheduleExpressionError):
        next_fire_times("cron(71 8 1 * ? *)", after=datetime(2026, 1, 1, tzinfo=UTC))


# --- 2. §4.2: AWS next fire times in UTC, strictly after `from` --------------------------------

AWS_NEXT_FIRE_TABLE = [
    (
        "cron(15 10 ? * 6L 2002-2025)",
        "2020-05-09T22:30:57Z",
        utc("2020-05-29T10:15", "2020-06-26T10:15", "2020-07-31T10:15", "2020-08-28T10:15"),
    ),
    (
        "cron(0 0 31W * ? 2020)",
        "2020-04-30T22:30:57Z",
        utc("2020-05-29T00:00", "2020-07-31T00:00", "2020-08-31T00:00"),
    ),
    (
        "cron(30 9 3W * ? *)",
        "2020-07-31T22:30:57Z",
        utc("2020-08-03T09:30", "2020-09-03T09:30", "2020-10-02T09:30"),
    ),
    (
        "cron(0 */3 */1 * ? *)",
        "2020-12-07T15:57:37Z",
        utc("2020-12-07T18:00", "2020-12-07T21:00", "2020-12-08T00:00", "2020-12-08T03:00"),
    ),
    (
        "cron(10 7/5 7 * ? 2020,2021)",
        "2020-12-07T15:57:37Z",
        utc("2020-12-07T17:10", "2020-12-07T22:10", "2021-01-07T07:10", "2021-01-07T12:10"),
    ),
    ("cron(33 7 ? * FRI#4 *)", "2022-10-14T07:34Z", utc("2022-10-28T07:33")),
    ("cron(31 5 ? * 2L *)", "2022-10-14T05:31Z", utc("2022-10-31T05:31")),
    ("cron(35 9 5W NOV ? *)", "2022-10-10T00:00Z", utc("2022-11-04T09:35")),
    ("cron(35 13 LW * ? *)", "2022-10-10T09:00Z", utc("2022-10-31T13:35")),
    ("cron(34 12-8 15 NOV ? *)", "2022-10-10T00:00Z", utc("2022-11-15T00:34")),
    # `L-n` row deliberately left out (undocumented by AWS).
]


@pytest.mark.parametrize(("text", "after", "expected"), AWS_NEXT_FIRE_TABLE)
def test_aws_next_fire_table(text: str, after: str, expected: list[str]) -> None:
    assert fires(text, after, count=len(expected)) == expected


def test_a_year_that_has_passed_never_fires() -> None:
    assert fires("cron(35 9 17 DEC ? 2020)", "2022-10-10T00:00Z") == []


# --- 3. More cases, computed by hand with the calendar module -----------------------------------

HAND_COMPUTED = [
    # 29 February: leap years only.
    ("cron(0 12 29 FEB ? *)", "2025-01-01T00:00Z", 2, utc("2028-02-29T12:00", "2032-02-29T12:00")),
    (
        "cron(0 0 L FEB ? *)",
        "2025-01-01T00:00Z",
        4,
        utc("2025-02-28T00:00", "2026-02-28T00:00", "2027-02-28T00:00", "2028-02-29T00:00"),
    ),
    # L in day-of-month: the last day of each month.
    (
        "cron(0 0 L * ? *)",
        "2026-01-01T00:00Z",
        4,
        utc("2026-01-31T00:00", "2026-02-28T00:00", "2026-03-31T00:00", "2026-04-30T00:00"),
    ),
    # LW: Jan 31 and Feb 28 2026 are Saturdays, May 31 a Sunday.
    (
        "cron(0 9 LW * ? *)",
        "2026-01-01T00:00Z",
        5,
        utc(
            "2026-01-30T09:00",
            "2026-02-27T09:00",
            "2026-03-31T09:00",
            "2026-04-30T09:00",
            "2026-05-29T09:00",
        ),
    ),
    # L alone in day-of-week: every Saturday.
    (
        "cron(0 8 ? * L *)",
        "2026-01-01T00:00Z",
        5,
        utc(
            "2026-01-03T08:00",
            "2026-01-10T08:00",
            "2026-01-17T08:00",
            "2026-01-24T08:00",
            "2026-01-31T08:00",
        ),
    ),
    # 6L: the last Friday of each month.
    (
        "cron(0 17 ? * 6L *)",
        "2026-01-01T00:00Z",
        4,
        utc("2026-01-30T17:00", "2026-02-27T17:00", "2026-03-27T17:00", "2026-04-24T17:00"),
    ),
    # 3#2: the second Tuesday.
    (
        "cron(0 10 ? * 3#2 *)",
        "2026-01-01T00:00Z",
        5,
        utc(
            "2026-01-13T10:00",
            "2026-02-10T10:00",
            "2026-03-10T10:00",
            "2026-04-14T10:00",
            "2026-05-12T10:00",
        ),
    ),
    # 2#1 (AWS doc table): the first Monday.
    (
        "cron(0 9 ? * 2#1 *)",
        "2026-01-01T00:00Z",
        4,
        utc("2026-01-05T09:00", "2026-02-02T09:00", "2026-03-02T09:00", "2026-04-06T09:00"),
    ),
    # 6#5: a fifth Friday exists only in some months.
    (
        "cron(0 0 ? * 6#5 *)",
        "2026-01-01T00:00Z",
        4,
        utc("2026-01-30T00:00", "2026-05-29T00:00", "2026-07-31T00:00", "2026-10-30T00:00"),
    ),
    # 31W in 2020, all of it: May 31 is a Sunday (-> Fri 29), Oct 31 a Saturday (-> Fri 30);
    # 30-day months and February are skipped; then the year range is over.
    (
        "cron(0 0 31W * ? 2020)",
        "2020-01-31T00:00Z",
        10,
        utc(
            "2020-03-31T00:00",
            "2020-05-29T00:00",
            "2020-07-31T00:00",
            "2020-08-31T00:00",
            "2020-10-30T00:00",
            "2020-12-31T00:00",
        ),
    ),
    # 1W: Aug 1 2026 is a Saturday -> Monday the 3rd (not Friday July 31);
    # Nov 1 2026 is a Sunday -> Monday the 2nd.
    (
        "cron(0 9 1W * ? *)",
        "2026-07-15T00:00Z",
        5,
        utc(
            "2026-08-03T09:00",
            "2026-09-01T09:00",
            "2026-10-01T09:00",
            "2026-11-02T09:00",
            "2026-12-01T09:00",
        ),
    ),
    # A year range that ends, a year list, a year step.
    (
        "cron(0 0 1 JAN ? 2027-2029)",
        "2026-06-01T00:00Z",
        5,
        utc("2027-01-01T00:00", "2028-01-01T00:00", "2029-01-01T00:00"),
    ),
    (
        "cron(0 0 1 JAN,JUL ? 2026,2028)",
        "2026-03-01T00:00Z",
        5,
        utc("2026-07-01T00:00", "2028-01-01T00:00", "2028-07-01T00:00"),
    ),
    (
        "cron(0 0 1 1 ? 2026/3)",
        "2026-06-01T00:00Z",
        3,
        utc("2029-01-01T00:00", "2032-01-01T00:00", "2035-01-01T00:00"),
    ),
    # A wrapped hour range: 22-2 = 22, 23, 0, 1, 2.
    (
        "cron(0 22-2 * * ? *)",
        "2026-01-01T12:00Z",
        6,
        utc(
            "2026-01-01T22:00",
            "2026-01-01T23:00",
            "2026-01-02T00:00",
            "2026-01-02T01:00",
            "2026-01-02T02:00",
            "2026-01-02T22:00",
        ),
    ),
    # 1/10 in minutes (AWS doc): 1, 11, 21, ...
    (
        "cron(1/10 * * * ? *)",
        "2026-01-01T00:00Z",
        7,
        utc(
            "2026-01-01T00:01",
            "2026-01-01T00:11",
            "2026-01-01T00:21",
            "2026-01-01T00:31",
            "2026-01-01T00:41",
            "2026-01-01T00:51",
            "2026-01-01T01:01",
        ),
    ),
    # MON-FRI: Friday 2026-01-02, then Monday the 5th.
    (
        "cron(0 18 ? * MON-FRI *)",
        "2026-01-02T12:00Z",
        2,
        utc("2026-01-02T18:00", "2026-01-05T18:00"),
    ),
    # Strictly after: a fire time equal to `after` is not returned.
    ("cron(0 10 * * ? *)", "2026-01-01T10:00Z", 1, utc("2026-01-02T10:00")),
    ("cron(0 10 * * ? *)", "2026-01-01T09:59:59Z", 1, utc("2026-01-01T10:00")),
    ("cron(0 10 * * ? *)", "2026-01-01T10:00:00.000001Z", 1, utc("2026-01-02T10:00")),
    # Rates: fire times are anchor + k * period (k >= 0), strictly after `after`.
    (  # no anchor: the anchor is `after`
        "rate(1 minute)",
        "2026-01-01T00:00Z",
        3,
        utc("2026-01-01T00:01", "2026-01-01T00:02", "2026-01-01T00:03"),
    ),
    (
        "rate(10 minutes)",
        "2026-01-01T00:00Z",
        2,
        utc("2026-01-01T00:10", "2026-01-01T00:20"),
    ),
]

ANCHORED_RATES = [
    # (expression, anchor, after, count, expected)
    (
        "rate(15 minutes)",
        "2026-01-01T00:05Z",
        "2026-01-01T01:00Z",
        3,
        utc("2026-01-01T01:05", "2026-01-01T01:20", "2026-01-01T01:35"),
    ),
    (  # an anchor after `after` fires itself first (k = 0)
        "rate(1 hour)",
        "2026-01-01T06:00Z",
        "2026-01-01T00:00Z",
        3,
        utc("2026-01-01T06:00", "2026-01-01T07:00", "2026-01-01T08:00"),
    ),
    (
        "rate(6 hours)",
        "2026-01-01T00:00Z",
        "2026-01-02T03:00Z",
        3,
        utc("2026-01-02T06:00", "2026-01-02T12:00", "2026-01-02T18:00"),
    ),
    (  # `after` on a fire time: that one is excluded
        "rate(1 day)",
        "2026-01-01T09:30Z",
        "2026-01-10T09:30Z",
        3,
        utc("2026-01-11T09:30", "2026-01-12T09:30", "2026-01-13T09:30"),
    ),
    (
        "rate(7 days)",
        "2026-01-01T00:00Z",
        "2026-01-20T00:00Z",
        3,
        utc("2026-01-22T00:00", "2026-01-29T00:00", "2026-02-05T00:00"),
    ),
]


@pytest.mark.parametrize(("text", "after", "count", "expected"), HAND_COMPUTED)
def test_hand_computed_fire_times(text: str, after: str, count: int, expected: list[str]) -> None:
    assert fires(text, after, count=count) == expected


@pytest.mark.parametrize(("text", "anchor", "after", "count", "expected"), ANCHORED_RATES)
def test_anchored_rates(
    text: str, anchor: str, after: str, count: int, expected: list[str]
) -> None:
    assert fires(text, after, count=count, anchor=anchor) == expected


def test_fields_are_evaluated_in_local_time() -> None:
    # 09:00 in Kolkata (+05:30) is 03:30 UTC, after midnight UTC: the 1st still fires.
    assert fires("cron(0 9 * * ? *)", "2026-01-01T00:00Z", count=2, timezone="Asia/Kolkata") == [
        "2026-01-01T09:00+05:30",
        "2026-01-02T09:00+05:30",
    ]


def test_fire_times_are_in_the_requested_zone() -> None:
    times = next_fire_times(
        "cron(0 12 * * ? *)", timezone="Europe/Paris", after=datetime(2026, 6, 1, tzinfo=UTC)
    )
    assert len(times) == 5
    for moment in times:
        assert isinstance(moment.tzinfo, ZoneInfo)
        assert moment.tzinfo.key == "Europe/Paris"
        assert moment.hour == 12


class TestAt:
    def test_in_the_future_fires_once_in_local_time(self) -> None:
        assert fires("at(2030-06-15T09:00:00)", "2026-01-01T00:00Z", timezone="Europe/Paris") == [
            "2030-06-15T09:00+02:00"
        ]

    def test_defaults_to_utc(self) -> None:
        assert fires("at(2030-06-15T09:00:00)", "2026-01-01T00:00Z") == utc("2030-06-15T09:00")

    def test_in_the_past_never_fires(self) -> None:
        assert fires("at(2022-12-31T23:59:59)", "2026-01-01T00:00Z") == []

    def test_at_exactly_after_does_not_fire(self) -> None:
        assert fires("at(2030-06-15T09:00:00)", "2030-06-15T09:00Z") == []

    def test_a_local_time_that_does_not_exist_is_skipped(self) -> None:
        assert fires("at(2026-03-29T02:30:00)", "2026-01-01T00:00Z", timezone="Europe/Paris") == []

    def test_an_ambiguous_local_time_fires_at_its_first_occurrence(self) -> None:
        assert fires("at(2026-10-25T02:30:00)", "2026-01-01T00:00Z", timezone="Europe/Paris") == [
            "2026-10-25T02:30+02:00"
        ]


STANDARD_CRON = [
    # Unix rule: dom and dow both restricted -> either matches (the 13ths and the Fridays).
    (
        "0 0 13 * 5",
        5,
        utc(
            "2026-01-02T00:00",
            "2026-01-09T00:00",
            "2026-01-13T00:00",
            "2026-01-16T00:00",
            "2026-01-23T00:00",
        ),
    ),
    # Only one restricted -> only that one.
    ("0 0 13 * *", 3, utc("2026-01-13T00:00", "2026-02-13T00:00", "2026-03-13T00:00")),
    ("0 0 * * 5", 3, utc("2026-01-02T00:00", "2026-01-09T00:00", "2026-01-16T00:00")),
    # 0 and 7 are both Sunday.
    ("0 9 * * 0", 3, utc("2026-01-04T09:00", "2026-01-11T09:00", "2026-01-18T09:00")),
    ("0 9 * * 7", 3, utc("2026-01-04T09:00", "2026-01-11T09:00", "2026-01-18T09:00")),
    (
        "*/20 9 * * 1-5",
        4,
        utc("2026-01-01T09:00", "2026-01-01T09:20", "2026-01-01T09:40", "2026-01-02T09:00"),
    ),
    # Macros, from Thursday 2026-01-01 00:00 (itself excluded).
    ("@hourly", 3, utc("2026-01-01T01:00", "2026-01-01T02:00", "2026-01-01T03:00")),
    ("@daily", 3, utc("2026-01-02T00:00", "2026-01-03T00:00", "2026-01-04T00:00")),
    ("@midnight", 3, utc("2026-01-02T00:00", "2026-01-03T00:00", "2026-01-04T00:00")),
    ("@weekly", 3, utc("2026-01-04T00:00", "2026-01-11T00:00", "2026-01-18T00:00")),
    ("@monthly", 3, utc("2026-02-01T00:00", "2026-03-01T00:00", "2026-04-01T00:00")),
    ("@yearly", 3, utc("2027-01-01T00:00", "2028-01-01T00:00", "2029-01-01T00:00")),
    ("@annually", 3, utc("2027-01-01T00:00", "2028-01-01T00:00", "2029-01-01T00:00")),
]


@pytest.mark.parametrize(("text", "count", "expected"), STANDARD_CRON)
def test_standard_cron(text: str, count: int, expected: list[str]) -> None:
    assert fires(text, "2026-01-01T00:00Z", count=count) == expected


# --- 4. Time zones and DST (AWS Scheduler rules, for every dialect but rate) ---------------------

PARIS = "Europe/Paris"
NEW_YORK = "America/New_York"

DST_CASES = [
    # Paris spring forward: 02:30 does not exist on the 29th, so that day is skipped.
    (
        "cron(30 2 * * ? *)",
        PARIS,
        "2026-03-27T12:00+01:00",
        ["2026-03-28T02:30+01:00", "2026-03-30T02:30+02:00", "2026-03-31T02:30+02:00"],
    ),
    (
        "30 2 * * *",
        PARIS,
        "2026-03-27T12:00+01:00",
        ["2026-03-28T02:30+01:00", "2026-03-30T02:30+02:00", "2026-03-31T02:30+02:00"],
    ),
    (
        "cron(0 * * * ? *)",
        PARIS,
        "2026-03-29T00:30+01:00",
        ["2026-03-29T01:00+01:00", "2026-03-29T03:00+02:00", "2026-03-29T04:00+02:00"],
    ),
    # Paris fall back: 02:30 happens twice on the 25th and fires once, the first time.
    (
        "cron(30 2 * * ? *)",
        PARIS,
        "2026-10-24T12:00+02:00",
        ["2026-10-25T02:30+02:00", "2026-10-26T02:30+01:00", "2026-10-27T02:30+01:00"],
    ),
    (
        "30 2 * * *",
        PARIS,
        "2026-10-24T12:00+02:00",
        ["2026-10-25T02:30+02:00", "2026-10-26T02:30+01:00", "2026-10-27T02:30+01:00"],
    ),
    (
        "cron(0 * * * ? *)",
        PARIS,
        "2026-10-25T00:30+02:00",
        [
            "2026-10-25T01:00+02:00",
            "2026-10-25T02:00+02:00",
            "2026-10-25T03:00+01:00",
            "2026-10-25T04:00+01:00",
        ],
    ),
    # `after` between the two 02:30s: the first one has fired, the second must not.
    (
        "cron(30 2 * * ? *)",
        PARIS,
        "2026-10-25T02:10+01:00",
        ["2026-10-26T02:30+01:00"],
    ),
    # New York fall back.
    (
        "cron(30 1 * * ? *)",
        NEW_YORK,
        "2026-10-31T12:00-04:00",
        ["2026-11-01T01:30-04:00", "2026-11-02T01:30-05:00"],
    ),
    (
        "30 1 * * *",
        NEW_YORK,
        "2026-10-31T12:00-04:00",
        ["2026-11-01T01:30-04:00", "2026-11-02T01:30-05:00"],
    ),
    (
        "cron(0/30 * * * ? *)",
        NEW_YORK,
        "2026-11-01T00:00-04:00",
        [
            "2026-11-01T00:30-04:00",
            "2026-11-01T01:00-04:00",
            "2026-11-01T01:30-04:00",
            "2026-11-01T02:00-05:00",
        ],
    ),
    (
        "*/30 * * * *",
        NEW_YORK,
        "2026-11-01T00:00-04:00",
        [
            "2026-11-01T00:30-04:00",
            "2026-11-01T01:00-04:00",
            "2026-11-01T01:30-04:00",
            "2026-11-01T02:00-05:00",
        ],
    ),
    # New York spring forward.
    (
        "cron(0/30 * * * ? *)",
        NEW_YORK,
        "2026-03-08T01:00-05:00",
        ["2026-03-08T01:30-05:00", "2026-03-08T03:00-04:00", "2026-03-08T03:30-04:00"],
    ),
    (
        "cron(30 2 * * ? *)",
        NEW_YORK,
        "2026-03-07T12:00-05:00",
        ["2026-03-09T02:30-04:00", "2026-03-10T02:30-04:00"],
    ),
]


@pytest.mark.parametrize(("text", "timezone", "after", "expected"), DST_CASES)
def test_dst(text: str, timezone: str, after: str, expected: list[str]) -> None:
    assert fires(text, after, count=len(expected), timezone=timezone) == expected


@pytest.mark.parametrize(
    ("anchor", "expected"),
    [
        # Spring forward: 24 h after 12:00+01:00 is 13:00+02:00.
        ("2026-03-28T12:00+01:00", ["2026-03-29T13:00+02:00", "2026-03-30T13:00+02:00"]),
        # Fall back: 24 h after 12:00+02:00 is 11:00+01:00.
        ("2026-10-24T12:00+02:00", ["2026-10-25T11:00+01:00", "2026-10-26T11:00+01:00"]),
    ],
)
def test_a_daily_rate_is_24_hours_of_elapsed_time(anchor: str, expected: list[str]) -> None:
    assert fires("rate(1 day)", anchor, count=2, timezone=PARIS, anchor=anchor) == expected


# --- 5. count, default `after`, time zone errors --------------------------------------------------


def test_count_defaults_to_five_and_allows_1000() -> None:
    after = datetime(2026, 1, 1, tzinfo=UTC)
    assert len(next_fire_times("cron(* * * * ? *)", after=after)) == 5
    assert len(next_fire_times("cron(* * * * ? *)", after=after, count=1)) == 1
    times = next_fire_times("cron(* * * * ? *)", after=after, count=1000)
    assert times == [after + timedelta(minutes=k) for k in range(1, 1001)]


def test_fewer_than_count_when_the_expression_runs_out() -> None:
    assert fires("at(2030-06-15T09:00:00)", "2026-01-01T00:00Z", count=1000) == utc(
        "2030-06-15T09:00"
    )


@pytest.mark.parametrize("count", [0, -1, 1001])
def test_count_out_of_range(count: int) -> None:
    with pytest.raises(ValueError):
        next_fire_times("rate(1 hour)", after=datetime(2026, 1, 1, tzinfo=UTC), count=count)


def test_after_defaults_to_now() -> None:
    before = datetime.now(UTC)
    (first,) = next_fire_times("rate(1 hour)", count=1)
    (minute,) = next_fire_times("cron(* * * * ? *)", count=1)
    now = datetime.now(UTC)
    assert before + timedelta(hours=1) <= first <= now + timedelta(hours=1)
    assert before < minute <= now + timedelta(minutes=1)


@pytest.mark.parametrize(
    "timezone", ["Mars/Olympus_Mons", "Europe/Pariss", "UTC+1", "../etc/passwd"]
)
@pytest.mark.parametrize("text", ["cron(0 12 * * ? *)", "rate(1 hour)", "0 12 * * *"])
def test_an_unknown_time_zone_is_rejected(text: str, timezone: str) -> None:
    with pytest.raises(ScheduleExpressionError) as caught:
        next_fire_times(text, timezone=timezone, after=datetime(2026, 1, 1, tzinfo=UTC))
    message = str(caught.value)
    assert message.startswith(f"Invalid time zone {timezone}: ")
    assert caught.value.field == "timezone"


@pytest.mark.parametrize(
    "text", ["rate(999999999 days)", "rate(1000000000 days)", "rate(99999999999999 minutes)"]
)
def test_an_enormous_rate_is_rejected_or_never_fires(text: str) -> None:
    # A positive integer, but the first fire time is past year 9999 (or the period past what
    # timedelta holds): either the expression is rejected or it has no fire times; never a crash.
    try:
        times = next_fire_times(text, after=datetime(2026, 1, 1, tzinfo=UTC), count=2)
    except ScheduleExpressionError:
        return
    assert times == []
