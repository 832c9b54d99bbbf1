"""Stream schedules: Domo's advancedScheduleJson parsed, and the times a schedule runs.

The examples pin the rules of the module docstring, daylight saving in Berlin and New York
included. The property tests hold ``next_after`` to a slow, obvious definition (scan the minutes of
real time, or the calendar days, and check the rule) in zones with odd offsets and transitions,
and check that it never skips or repeats an occurrence.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datagrove.errors import BadRequest
from datagrove.services.schedules import Schedule, parse_schedule

EXAMPLES = int(os.environ.get("DATAGROVE_FUZZ_EXAMPLES", "200"))
BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
US = timedelta(microseconds=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def runs(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    out = []
    for _ in range(count):
        nxt = schedule.next_after(after)
        assert nxt is not None
        out.append(nxt)
        after = nxt
    return out


def local(moments: list[datetime], tz: ZoneInfo) -> list[str]:
    return [m.astimezone(tz).isoformat() for m in moments]


# --- the real values Domo shows ----------------------------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        '{"type":"MINUTE","timezone":"UTC","between":null,"interval":30}',
        '{"type":"DAY","at":"08:01 PM","timezone":"UTC"}',
    ],
)
def test_real_domo_schedules_come_back_exactly_as_domo_shows_them(stored: str) -> None:
    assert parse_schedule(stored).to_json() == stored


def test_the_real_minute_schedule_runs_on_the_hour_and_half_hour() -> None:
    schedule = parse_schedule('{"type":"MINUTE","timezone":"UTC","between":null,"interval":30}')
    assert runs(schedule, utc(2026, 5, 13, 22, 13), 3) == [
        utc(2026, 5, 13, 22, 30),
        utc(2026, 5, 13, 23, 0),
        utc(2026, 5, 13, 23, 30),
    ]


def test_the_real_day_schedule_runs_at_eight_oh_one_in_the_evening() -> None:
    schedule = parse_schedule('{"type":"DAY","at":"08:01 PM","timezone":"UTC"}')
    assert schedule.at == time(20, 1)
    assert runs(schedule, utc(2026, 5, 13, 20, 1), 2) == [utc(2026, 5, 14, 20, 1), utc(2026, 5, 15, 20, 1)]


@pytest.mark.parametrize(
    "value", ['{"type": "MANUAL", "timezone": "UTC"}', "{}", "", "  ", None, "null", {}, {"type": "manual"}]
)
def test_manual_and_empty_schedules_never_run_by_themselves(value: str | dict | None) -> None:
    schedule = parse_schedule(value)
    assert schedule.manual
    assert schedule.next_after(utc(2026, 1, 1)) is None
    assert schedule.to_json() == '{"type":"MANUAL","timezone":"UTC"}'


def test_a_manual_schedule_keeps_its_time_zone() -> None:
    assert parse_schedule({"type": "MANUAL", "timezone": "Europe/Berlin"}).to_json() == (
        '{"type":"MANUAL","timezone":"Europe/Berlin"}'
    )


# --- parsing and the normalized form ------------------------------------------------------------


@pytest.mark.parametrize("at", ["08:01 PM", "8:01 PM", "8:01 pm", "8:01PM", "20:01", "20:01:00", " 20:01 "])
def test_at_is_read_in_twelve_and_twenty_four_hour_forms(at: str) -> None:
    schedule = parse_schedule({"type": "DAY", "at": at})
    assert schedule.at == time(20, 1)
    assert json.loads(schedule.to_json())["at"] == "08:01 PM"


@pytest.mark.parametrize(
    ("at", "expected"), [("12:00 AM", time(0, 0)), ("12:30 PM", time(12, 30)), ("00:00", time(0))]
)
def test_midnight_and_noon_in_twelve_hour_form(at: str, expected: time) -> None:
    assert parse_schedule({"type": "DAY", "at": at}).at == expected


@pytest.mark.parametrize(
    ("interval", "expected"), [(15, 15), ("15", 15), (" 15 ", 15), (15.0, 15), (None, 1)]
)
def test_interval_arrives_as_a_number_or_a_numeric_string_and_defaults_to_one(
    interval: object, expected: int
) -> None:
    body = {"type": "MINUTE"} if interval is None else {"type": "MINUTE", "interval": interval}
    assert parse_schedule(body).interval == expected


def test_days_of_week_are_numbers_from_sunday_or_names_normalized_to_numbers() -> None:
    schedule = parse_schedule({"type": "WEEK", "daysOfWeek": ["fri", 2, "MONDAY", "7", "Sun"]})
    assert schedule.days_of_week == (1, 2, 6, 7)
    assert json.loads(schedule.to_json())["daysOfWeek"] == [1, 2, 6, 7]


def test_the_normalized_form_parses_back_to_the_same_schedule() -> None:
    schedule = parse_schedule(
        '{"type":"week","interval":"2","at":"6:05 am","timezone":"America/New_York","daysOfWeek":["WED",2]}'
    )
    assert schedule.to_json() == (
        '{"type":"WEEK","at":"06:05 AM","timezone":"America/New_York","interval":2,"daysOfWeek":[2,4]}'
    )
    assert parse_schedule(schedule.to_json()) == schedule


def test_unknown_keys_are_ignored_and_at_on_a_minute_schedule_is_dropped() -> None:
    schedule = parse_schedule(
        {"type": "MINUTE", "interval": 5, "at": "08:00 AM", "frequency": "x", "between": None}
    )
    assert schedule == Schedule("MINUTE", interval=5)


def test_a_json_object_and_its_text_are_the_same_schedule() -> None:
    body = {"type": "MONTH", "daysOfMonth": [15, 1], "at": "23:30", "timezone": "Asia/Kolkata"}
    assert parse_schedule(body) == parse_schedule(json.dumps(body))


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "field", "says"),
    [
        ('{"type":', "advancedScheduleJson", "not valid JSON"),
        ("[1, 2]", "advancedScheduleJson", "must be a JSON object"),
        ('"DAY"', "advancedScheduleJson", "must be a JSON object"),
        (42, "advancedScheduleJson", "must be a JSON object"),
        ('{"type":"YEAR","months":[1]}', "type", "YEAR is not supported: use MONTH with interval 12"),
        ('{"type":"SECOND"}', "type", "must be one of MANUAL, MINUTE, HOUR, DAY, WEEK, MONTH"),
        ('{"type":5}', "type", "must be one of"),
        ('{"interval":5}', "type", "is required with interval"),
        ('{"type":"MINUTE","interval":0}', "interval", "must be from 1 to 1440 for MINUTE schedules, not 0"),
        ('{"type":"MINUTE","interval":"-5"}', "interval", "must be from 1 to 1440"),
        ('{"type":"HOUR","interval":1000}', "interval", "must be from 1 to 168 for HOUR schedules"),
        ('{"type":"MONTH","interval":13,"daysOfMonth":[1]}', "interval", "must be from 1 to 12"),
        ('{"type":"DAY","interval":"abc"}', "interval", "must be a whole number"),
        ('{"type":"DAY","interval":1.5}', "interval", "must be a whole number"),
        ('{"type":"DAY","interval":true}', "interval", "must be a whole number"),
        ('{"type":"DAY","at":"25:00"}', "at", "is not a time of day"),
        ('{"type":"DAY","at":"13:00 PM"}', "at", "hour must be 1 to 12 with AM/PM"),
        ('{"type":"DAY","at":"8pm"}', "at", 'such as "08:01 PM" or "20:01"'),
        ('{"type":"DAY","at":"08:01:30"}', "at", "whole minutes"),
        ('{"type":"DAY","at":800}', "at", "must be a time of day"),
        ('{"type":"DAY","timezone":"Mars/Olympus"}', "timezone", "must be an IANA time zone"),
        ('{"type":"DAY","timezone":"../../etc/passwd"}', "timezone", "must be an IANA time zone"),
        ('{"type":"DAY","timezone":"localtime"}', "timezone", "must be an IANA time zone"),
        ('{"type":"MANUAL","timezone":"Nowhere"}', "timezone", "must be an IANA time zone"),
        ('{"type":"WEEK"}', "daysOfWeek", "needs at least one day for WEEK schedules"),
        ('{"type":"WEEK","daysOfWeek":[0]}', "daysOfWeek", "1 (Sunday) to 7 (Saturday)"),
        ('{"type":"WEEK","daysOfWeek":[8]}', "daysOfWeek", "1 (Sunday) to 7 (Saturday)"),
        ('{"type":"WEEK","daysOfWeek":["FUNDAY"]}', "daysOfWeek", "names such as 'MON'"),
        ('{"type":"WEEK","daysOfWeek":"MON"}', "daysOfWeek", "must be a list"),
        ('{"type":"MONTH"}', "daysOfMonth", "needs at least one day for MONTH schedules"),
        ('{"type":"MONTH","daysOfMonth":[0]}', "daysOfMonth", "days are 1 to 31"),
        ('{"type":"MONTH","daysOfMonth":[32]}', "daysOfMonth", "days are 1 to 31"),
        ('{"type":"MONTH","daysOfMonth":[1.5]}', "daysOfMonth", "whole numbers"),
        ('{"type":"DAY","daysOfWeek":[2]}', "daysOfWeek", "applies only to WEEK schedules, not DAY"),
        ('{"type":"WEEK","daysOfWeek":[2],"daysOfMonth":[2]}', "daysOfMonth", "applies only to MONTH"),
        ('{"type":"MINUTE","between":{"start":"08:00 AM"}}', "between", "is not supported"),
        (
            '{"type":"MONTH","daysOfMonth":[1],"months":[1]}',
            "months",
            "YEAR schedules, which are not supported",
        ),
    ],
)
def test_a_bad_schedule_is_a_400_naming_the_field_and_what_is_allowed(
    value: object, field: str, says: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_schedule(value)  # type: ignore[arg-type]
    assert caught.value.status == 400
    name = field if field == "advancedScheduleJson" else f"advancedScheduleJson.{field}"
    assert caught.value.message.startswith(name)
    assert says in caught.value.message
    assert caught.value.details["field"] == name


def test_next_after_needs_an_aware_moment_and_answers_in_utc() -> None:
    schedule = parse_schedule({"type": "HOUR"})
    with pytest.raises(ValueError):
        schedule.next_after(datetime(2026, 1, 1))
    nxt = schedule.next_after(datetime(2026, 1, 1, 12, 30, tzinfo=BERLIN))
    assert nxt == utc(2026, 1, 1, 12) and nxt.tzinfo is UTC


# --- each type ----------------------------------------------------------------------------------


def test_minute_intervals_that_divide_the_hour_run_on_multiples_of_it() -> None:
    assert runs(Schedule("MINUTE", 20), utc(2026, 1, 1, 10, 59, 59), 4) == [
        utc(2026, 1, 1, 11, 0),
        utc(2026, 1, 1, 11, 20),
        utc(2026, 1, 1, 11, 40),
        utc(2026, 1, 1, 12, 0),
    ]


def test_minute_intervals_follow_the_local_clock_in_a_half_hour_zone() -> None:
    # 10:00 in Kolkata (+05:30) is 04:30 UTC.
    schedule = Schedule("MINUTE", 60, timezone=ZoneInfo("Asia/Kolkata"))
    assert runs(schedule, utc(2026, 1, 1, 4, 0), 2) == [utc(2026, 1, 1, 4, 30), utc(2026, 1, 1, 5, 30)]


def test_other_minute_intervals_count_real_minutes_from_the_unix_epoch() -> None:
    first = Schedule("MINUTE", 7, timezone=BERLIN).next_after(utc(2026, 1, 1))
    assert first is not None
    assert ((first - utc(1970, 1, 1)) // timedelta(minutes=1)) % 7 == 0
    assert runs(Schedule("MINUTE", 7), first, 2) == [
        first + timedelta(minutes=7),
        first + timedelta(minutes=14),
    ]


def test_an_occurrence_is_strictly_after_the_moment() -> None:
    assert Schedule("MINUTE", 15).next_after(utc(2026, 1, 1, 10, 15)) == utc(2026, 1, 1, 10, 30)
    assert Schedule("MINUTE", 15).next_after(utc(2026, 1, 1, 10, 15) - US) == utc(2026, 1, 1, 10, 15)


def test_hour_runs_at_the_minute_of_at_in_hours_congruent_to_its_hour() -> None:
    schedule = parse_schedule(
        {"type": "HOUR", "interval": 6, "at": "02:15 AM", "timezone": "America/New_York"}
    )
    assert local(runs(schedule, utc(2026, 1, 1, 12), 4), NEW_YORK) == [
        "2026-01-01T08:15:00-05:00",
        "2026-01-01T14:15:00-05:00",
        "2026-01-01T20:15:00-05:00",
        "2026-01-02T02:15:00-05:00",
    ]


def test_hour_without_at_runs_on_the_hour() -> None:
    assert runs(Schedule("HOUR"), utc(2026, 1, 1, 10, 0, 1), 2) == [utc(2026, 1, 1, 11), utc(2026, 1, 1, 12)]


def test_other_hour_intervals_count_real_hours_from_the_epoch_at_at() -> None:
    schedule = parse_schedule({"type": "HOUR", "interval": 5, "at": "00:10"})
    (first,) = runs(schedule, utc(2026, 1, 1), 1)
    assert (first - utc(1970, 1, 1, 0, 10)) % timedelta(hours=5) == timedelta(0)
    assert first - utc(2026, 1, 1) <= timedelta(hours=5)


def test_day_interval_counts_days_from_the_epoch() -> None:
    schedule = parse_schedule({"type": "DAY", "interval": 3, "at": "06:00"})
    days = [m.date() for m in runs(schedule, utc(2026, 1, 1), 3)]
    assert all((d - date(1970, 1, 1)).days % 3 == 0 for d in days)
    assert days[1] - days[0] == days[2] - days[1] == timedelta(days=3)


def test_day_without_at_runs_at_local_midnight() -> None:
    schedule = Schedule("DAY", timezone=NEW_YORK)
    assert runs(schedule, utc(2026, 1, 1, 12), 1) == [utc(2026, 1, 2, 5)]


def test_week_runs_on_its_days_at_local_time() -> None:
    schedule = parse_schedule(
        {"type": "WEEK", "daysOfWeek": ["MON", "FRI"], "at": "09:00", "timezone": "America/New_York"}
    )
    assert local(runs(schedule, utc(2026, 4, 1), 3), NEW_YORK) == [
        "2026-04-03T09:00:00-04:00",
        "2026-04-06T09:00:00-04:00",
        "2026-04-10T09:00:00-04:00",
    ]


def test_every_other_week_counts_sunday_weeks_from_the_week_of_the_epoch() -> None:
    schedule = parse_schedule({"type": "WEEK", "interval": 2, "daysOfWeek": [1, 7]})
    moments = runs(schedule, utc(2026, 4, 1), 4)
    sundays = {m.date() - timedelta(days=m.isoweekday() % 7) for m in moments}
    assert all((sunday - date(1969, 12, 28)).days % 14 == 0 for sunday in sundays)
    assert [m.isoweekday() for m in moments] == [7, 6, 7, 6]  # a week runs Sunday to Saturday
    assert moments[2] - moments[0] == timedelta(weeks=2)


def test_a_day_past_the_month_end_runs_on_its_last_day_once() -> None:
    schedule = parse_schedule({"type": "MONTH", "daysOfMonth": [30, 31, 15], "at": "23:30"})
    assert runs(schedule, utc(2028, 1, 31, 23, 30), 4) == [
        utc(2028, 2, 15, 23, 30),
        utc(2028, 2, 29, 23, 30),  # 30 and 31 both mean the 29th of a leap February: one run
        utc(2028, 3, 15, 23, 30),
        utc(2028, 3, 30, 23, 30),
    ]


def test_month_interval_counts_months_from_january_1970() -> None:
    schedule = parse_schedule({"type": "MONTH", "interval": 5, "daysOfMonth": [1]})
    # January 2026 is month 672 = 5 * 134 + 2, so April (675) and September (680) are on the cycle.
    assert runs(schedule, utc(2026, 1, 1), 3) == [utc(2026, 4, 1), utc(2026, 9, 1), utc(2027, 2, 1)]


# --- daylight saving ----------------------------------------------------------------------------


def test_a_day_time_that_berlin_skips_runs_at_the_jump() -> None:
    schedule = parse_schedule({"type": "DAY", "at": "02:30", "timezone": "Europe/Berlin"})
    assert local(runs(schedule, utc(2026, 3, 27, 12), 3), BERLIN) == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]


def test_a_day_time_that_berlin_repeats_runs_once_on_the_first_pass() -> None:
    schedule = parse_schedule({"type": "DAY", "at": "02:30", "timezone": "Europe/Berlin"})
    assert local(runs(schedule, utc(2026, 10, 23, 12), 3), BERLIN) == [
        "2026-10-24T02:30:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]
    # From inside the second pass, the next run is tomorrow's.
    assert schedule.next_after(utc(2026, 10, 25, 1, 15)) == utc(2026, 10, 26, 1, 30)


def test_new_york_day_runs_at_the_jump_in_march_and_once_in_november() -> None:
    schedule = parse_schedule({"type": "DAY", "at": "2:30 AM", "timezone": "America/New_York"})
    assert local(runs(schedule, utc(2026, 3, 7, 12), 2), NEW_YORK) == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]
    schedule = parse_schedule({"type": "DAY", "at": "1:30 AM", "timezone": "America/New_York"})
    assert local(runs(schedule, utc(2026, 10, 31, 12), 2), NEW_YORK) == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
    ]


def test_a_weekly_sunday_run_in_new_yorks_repeated_hour_runs_once() -> None:
    schedule = parse_schedule(
        {"type": "WEEK", "daysOfWeek": ["SUN"], "at": "01:30", "timezone": "America/New_York"}
    )
    assert runs(schedule, utc(2026, 10, 31), 2) == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 8, 6, 30)]


def test_minute_schedules_keep_their_pace_through_both_berlin_changes() -> None:
    schedule = Schedule("MINUTE", 15, timezone=BERLIN)
    for start in (utc(2026, 3, 29, 0, 0), utc(2026, 10, 25, 0, 0)):
        moments = runs(schedule, start, 12)
        assert [b - a for a, b in zip([start, *moments], moments, strict=False)] == [
            timedelta(minutes=15)
        ] * 12


def test_hourly_runs_twice_at_the_repeated_hour_and_skips_the_missing_one_in_berlin() -> None:
    schedule = Schedule("HOUR", timezone=BERLIN)
    assert local(runs(schedule, utc(2026, 10, 24, 22), 4), BERLIN) == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]
    assert local(runs(schedule, utc(2026, 3, 28, 23), 3), BERLIN) == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]


def test_a_monthly_midnight_in_a_zone_that_skips_midnight_runs_at_one() -> None:
    # Santiago moved its clocks from 00:00 to 01:00 on 2026-09-06.
    schedule = parse_schedule({"type": "MONTH", "daysOfMonth": [6], "timezone": "America/Santiago"})
    assert local(runs(schedule, utc(2026, 9, 1), 1), ZoneInfo("America/Santiago")) == [
        "2026-09-06T01:00:00-03:00"
    ]


def test_a_day_that_samoa_skipped_runs_once_at_the_next_midnight() -> None:
    schedule = Schedule("DAY", timezone=ZoneInfo("Pacific/Apia"))
    assert local(runs(schedule, utc(2011, 12, 29, 12), 2), ZoneInfo("Pacific/Apia")) == [
        "2011-12-31T00:00:00+14:00",
        "2012-01-01T00:00:00+14:00",
    ]


# --- properties ---------------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "Australia/Lord_Howe",  # half-hour daylight saving
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/Santiago",  # changes at midnight
    "Antarctica/Troll",  # two-hour daylight saving
    "Pacific/Apia",  # skipped 2011-12-30
]


def _transitions(name: str) -> list[datetime]:
    """The instants (to the second) a zone's offset changed between 2005 and 2035."""
    tz, out = ZoneInfo(name), []
    step, u = timedelta(hours=6), utc(2005, 1, 1)
    while u.year < 2035:
        if (u + step).astimezone(tz).utcoffset() != u.astimezone(tz).utcoffset():
            lo, hi = u, u + step
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) // 2
                lo, hi = (
                    (mid, hi)
                    if mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset()
                    else (lo, mid)
                )
            out.append(hi)
        u += step
    return out


TRANSITIONS = {name: _transitions(name) for name in ZONES}

ats = st.none() | st.builds(time, st.integers(0, 23), st.integers(0, 59))
divisors_of_60 = st.sampled_from([1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60])
schedules = st.one_of(
    st.builds(
        lambda n, z: Schedule("MINUTE", n, None, ZoneInfo(z)),
        divisors_of_60 | st.integers(1, 1440),
        st.sampled_from(ZONES),
    ),
    st.builds(
        lambda n, at, z: Schedule("HOUR", n, at, ZoneInfo(z)),
        st.sampled_from([1, 2, 3, 4, 6, 8, 12, 24]) | st.integers(1, 168),
        ats,
        st.sampled_from(ZONES),
    ),
    st.builds(
        lambda n, at, z: Schedule("DAY", n, at, ZoneInfo(z)),
        st.integers(1, 4) | st.integers(1, 366),
        ats,
        st.sampled_from(ZONES),
    ),
    st.builds(
        lambda n, at, z, days: Schedule("WEEK", n, at, ZoneInfo(z), days_of_week=tuple(days)),
        st.integers(1, 3) | st.integers(1, 52),
        ats,
        st.sampled_from(ZONES),
        st.sets(st.integers(1, 7), min_size=1),
    ),
    st.builds(
        lambda n, at, z, days: Schedule("MONTH", n, at, ZoneInfo(z), days_of_month=tuple(days)),
        st.integers(1, 12),
        ats,
        st.sampled_from(ZONES),
        st.sets(st.integers(1, 31), min_size=1, max_size=4),
    ),
)


@st.composite
def schedules_and_moments(draw: st.DrawFn) -> tuple[Schedule, datetime]:
    """A schedule and a moment, often within a day of one of its zone's offset changes."""
    schedule = draw(schedules)
    near = TRANSITIONS[schedule.timezone.key]
    if near and draw(st.booleans()):
        moment = draw(st.sampled_from(near)) + draw(st.timedeltas(-timedelta(days=1), timedelta(days=1)))
    else:
        moment = draw(st.datetimes(datetime(2005, 1, 1), datetime(2034, 12, 31))).replace(tzinfo=UTC)
    if draw(st.booleans()):  # on a whole minute, where occurrences are
        moment = moment.replace(second=0, microsecond=0)
    return schedule, moment


def _unix_minutes(u: datetime) -> int:
    return (u - utc(1970, 1, 1)) // timedelta(minutes=1)


def _spec_next(schedule: Schedule, t: datetime) -> datetime:
    """The slow, obvious reading of the module docstring's rules."""
    tz, n = schedule.timezone, schedule.interval
    at = schedule.at or time(0)
    minute = timedelta(minutes=1)
    first_minute = t.replace(second=0, microsecond=0) + minute
    if schedule.type in ("MINUTE", "HOUR"):
        if schedule.type == "MINUTE" and 60 % n == 0:
            rule = lambda u: u.astimezone(tz).minute % n == 0  # noqa: E731
        elif schedule.type == "MINUTE":
            rule = lambda u: _unix_minutes(u) % n == 0  # noqa: E731
        elif 24 % n == 0:
            rule = lambda u: (  # noqa: E731
                (v := u.astimezone(tz)).minute == at.minute and (v.hour - at.hour) % n == 0
            )
        else:
            rule = lambda u: (_unix_minutes(u) - at.hour * 60 - at.minute) % (60 * n) == 0  # noqa: E731
        u = first_minute
        while not rule(u):
            u += minute
        return u

    def wanted(d: date) -> bool:
        if schedule.type == "DAY":
            return (d - date(1970, 1, 1)).days % n == 0
        if schedule.type == "WEEK":
            sunday = d - timedelta(days=d.isoweekday() % 7)
            return (
                d.isoweekday() % 7 + 1 in schedule.days_of_week
                and (sunday - date(1969, 12, 28)).days // 7 % n == 0
            )
        following = date(d.year + d.month // 12, d.month % 12 + 1, 1)
        last = (following - timedelta(days=1)).day
        return ((d.year - 1970) * 12 + d.month - 1) % n == 0 and d.day in {
            min(x, last) for x in schedule.days_of_month
        }

    def reached(reading: datetime) -> datetime:
        # The first whole minute at which the local clock shows `reading` or later; no zone is
        # ahead of UTC by more than 14 hours.
        u = reading.replace(tzinfo=UTC) - timedelta(hours=15)
        while u.astimezone(tz).replace(tzinfo=None) < reading:
            u += minute
        return u

    d = t.astimezone(tz).date() - timedelta(days=2)
    while True:
        if wanted(d) and (u := reached(datetime.combine(d, at))) > t:
            return u
        d += timedelta(days=1)


PROPERTY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(schedules_and_moments())
def test_next_after_is_the_rule_read_slowly(case: tuple[Schedule, datetime]) -> None:
    schedule, t = case
    assert schedule.next_after(t) == _spec_next(schedule, t)


@PROPERTY
@given(schedules_and_moments(), st.floats(0, 1))
def test_occurrences_rise_strictly_and_none_is_skipped(
    case: tuple[Schedule, datetime], fraction: float
) -> None:
    schedule, t = case
    first = schedule.next_after(t)
    assert first is not None and first > t and first.tzinfo is UTC
    second = schedule.next_after(first)
    assert second is not None and second > first
    assert schedule.next_after(first - US) == first
    assert schedule.next_after(second - US) == second
    # From any moment before the first occurrence, the first occurrence is next.
    between = t + (first - t) * fraction
    if between < first:
        assert schedule.next_after(between) == first


@PROPERTY
@given(schedules_and_moments())
def test_minute_and_hour_occurrences_are_aligned_to_their_rule(case: tuple[Schedule, datetime]) -> None:
    schedule, t = case
    if schedule.type not in ("MINUTE", "HOUR"):
        return
    u = schedule.next_after(t)
    assert u is not None and u.second == 0 and u.microsecond == 0
    shown, n = u.astimezone(schedule.timezone), schedule.interval
    at = schedule.at or time(0)
    if schedule.type == "MINUTE":
        assert shown.minute % n == 0 if 60 % n == 0 else _unix_minutes(u) % n == 0
    elif 24 % n == 0:
        assert shown.minute == at.minute and (shown.hour - at.hour) % n == 0
    else:
        assert (_unix_minutes(u) - at.hour * 60 - at.minute) % (60 * n) == 0


@PROPERTY
@given(schedules)
def test_the_normalized_json_parses_back_to_the_same_schedule(schedule: Schedule) -> None:
    assert parse_schedule(schedule.to_json()) == schedule
