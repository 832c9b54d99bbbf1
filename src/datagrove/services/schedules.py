"""Stream schedules: Domo's ``advancedScheduleJson`` parsed, normalized, and turned into run times.

A schedule is a rule, not a timer. Every occurrence follows from the schedule alone (no start
moment, no memory of the last run), so every server process computes the same times and the
scheduler can claim ``(stream, due_at)`` exactly once in the catalog. Nothing here does I/O.

Shapes (Domo's key names; ``Schedule.to_json`` gives the normalized form, stored and shown)::

    {}  ""  null  {"type": "MANUAL", "timezone": "UTC"}        never runs by itself
    {"type": "MINUTE", "interval": 30, "timezone": "UTC", "between": null}
    {"type": "HOUR", "interval": 6, "at": "02:15 AM"}          `at` gives minute and phase
    {"type": "DAY", "at": "08:01 PM", "timezone": "Europe/Berlin"}
    {"type": "WEEK", "daysOfWeek": [2, "WED"], "at": "06:00"}  1 = Sunday ... 7 = Saturday (Quartz)
    {"type": "MONTH", "daysOfMonth": [1, 31], "at": "23:30"}

``at`` is read as "08:01 PM", "8:01 pm", "20:01" or "20:01:00" (whole minutes) and shown as
"08:01 PM"; ``interval`` as a number or a numeric string (default 1); ``timezone`` is an IANA name
(default UTC). Intervals go up to 1440 minutes, 168 hours, 366 days, 52 weeks or 12 months.
Unknown keys are ignored, since clients send back whatever Domo showed them, but a
key that would restrict *when* a stream runs and that this rule cannot honour is refused rather
than dropped: ``between``, ``months``, and ``daysOfWeek``/``daysOfMonth`` on other types. ``at`` on
a MINUTE schedule means nothing (Domo itself shows "MINUTE at undefined") and is dropped.

Occurrences (N = interval, "local" = the schedule's time zone):

MINUTE  N divides 60: whenever the local clock shows a minute that is a multiple of N.
        Otherwise every N minutes of real time counted from 1970-01-01 00:00 UTC; the zone plays
        no part, as there is no hourly pattern to keep.
HOUR    N divides 24: whenever the local clock shows `at`'s minute (default :00) in an hour h with
        h = at.hour (mod N): "interval 6, at 02:15" runs at 02:15, 08:15, 14:15 and 20:15.
        Otherwise every N hours of real time counted from 1970-01-01 `at` UTC.
DAY     at `at` (default 00:00) local time, every Nth local day counted from 1970-01-01.
WEEK    at `at` on each of daysOfWeek, in every Nth week counted from the week of 1970-01-01
        (weeks start on Sunday, as Domo's Quartz numbering does).
MONTH   at `at` on each of daysOfMonth, in every Nth month counted from January 1970. A day past
        the month's end means its last day; days that land on the same date run once.

Daylight saving. MINUTE and HOUR are frequencies: they run whenever the local clock *shows* a
matching time. In the hour repeated when clocks go back they run on both passes (that hour of
real time does pass twice); a time skipped when clocks go forward does not run (no real time was
skipped). DAY, WEEK and MONTH name a time of day and run at the first instant the local clock
reaches it: a time that does not exist runs at the first valid instant after it (02:30 on
Berlin's spring-forward Sunday runs at 03:00 CEST), and a repeated time runs once, on its first
pass. Formally, for those three a time of day r occurs at min{u : local(u) >= r}.
"""

from __future__ import annotations

import calendar
import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from datagrove.errors import BadRequest

TYPES = ("MANUAL", "MINUTE", "HOUR", "DAY", "WEEK", "MONTH")
MAX_INTERVAL = {"MANUAL": 1, "MINUTE": 1440, "HOUR": 168, "DAY": 366, "WEEK": 52, "MONTH": 12}
WEEKDAYS = ("SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY")

_FIELD = "advancedScheduleJson"
_EPOCH = datetime(1970, 1, 1)  # naive: the local clock's epoch
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_SUNDAY = date(1969, 12, 28)  # the Sunday that starts the week of 1970-01-01
_MINUTE = timedelta(minutes=1)
_AT = re.compile(r"\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?\s*")
_INTEGER = re.compile(r"\s*[+-]?\d{1,12}\s*")
# Offsets run from -12h (Etc/GMT+12) to +14h (Pacific/Kiritimati); this spans them, and an hour.
_OFFSET_SPAN = timedelta(hours=27)


@dataclass(frozen=True)
class Schedule:
    """One stream's schedule; build it with ``parse_schedule``. Invalid fields raise BadRequest."""

    type: str  # MANUAL | MINUTE | HOUR | DAY | WEEK | MONTH
    interval: int = 1
    at: time | None = None  # local time of day (DAY/WEEK/MONTH); minute and phase for HOUR
    timezone: ZoneInfo = ZoneInfo("UTC")
    days_of_week: tuple[int, ...] = ()  # 1 = Sunday .. 7 = Saturday; WEEK only
    days_of_month: tuple[int, ...] = ()  # 1..31; MONTH only

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise _bad("type", f"must be one of {', '.join(TYPES)}, not {self.type!r}")
        top = MAX_INTERVAL[self.type]
        if isinstance(self.interval, bool) or not isinstance(self.interval, int):
            raise _bad("interval", f"must be a whole number, not {self.interval!r}")
        if not 1 <= self.interval <= top:
            raise _bad("interval", f"must be from 1 to {top} for {self.type} schedules, not {self.interval}")
        if self.at is not None:
            if self.type in ("MANUAL", "MINUTE"):
                raise _bad("at", f"does not apply to {self.type} schedules")
            if self.at.second or self.at.microsecond or self.at.tzinfo is not None:
                raise _bad("at", "must be a local time of day in whole minutes")
        if not isinstance(self.timezone, ZoneInfo):
            raise _bad("timezone", "must be a zoneinfo.ZoneInfo")
        days_of_week = tuple(sorted(set(self.days_of_week)))
        days_of_month = tuple(sorted(set(self.days_of_month)))
        if self.type == "WEEK":
            if not days_of_week:
                raise _bad("daysOfWeek", "needs at least one day for WEEK schedules")
            if not all(1 <= day <= 7 for day in days_of_week):
                raise _bad("daysOfWeek", f"days are 1 (Sunday) to 7 (Saturday), not {list(days_of_week)}")
        elif days_of_week:
            raise _bad("daysOfWeek", f"applies only to WEEK schedules, not {self.type}")
        if self.type == "MONTH":
            if not days_of_month:
                raise _bad("daysOfMonth", "needs at least one day for MONTH schedules")
            if not all(1 <= day <= 31 for day in days_of_month):
                raise _bad("daysOfMonth", f"days are 1 to 31, not {list(days_of_month)}")
        elif days_of_month:
            raise _bad("daysOfMonth", f"applies only to MONTH schedules, not {self.type}")
        object.__setattr__(self, "days_of_week", days_of_week)
        object.__setattr__(self, "days_of_month", days_of_month)

    @property
    def manual(self) -> bool:
        return self.type == "MANUAL"

    def to_json(self) -> str:
        """The normalized ``advancedScheduleJson``: compact, in the key order Domo itself shows."""
        out: dict[str, Any] = {"type": self.type}
        if self.at is not None:
            out["at"] = self.at.strftime("%I:%M %p")
        out["timezone"] = self.timezone.key
        if self.type in ("MINUTE", "HOUR"):
            out["between"] = None
            out["interval"] = self.interval
        elif self.interval != 1:
            out["interval"] = self.interval
        if self.days_of_week:
            out["daysOfWeek"] = list(self.days_of_week)
        if self.days_of_month:
            out["daysOfMonth"] = list(self.days_of_month)
        return json.dumps(out, separators=(",", ":"))

    def next_after(self, moment: datetime) -> datetime | None:
        """The first occurrence strictly after ``moment`` (aware), in UTC; None for MANUAL."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("next_after needs an aware datetime")
        if self.manual:
            return None
        t = moment.astimezone(UTC)
        try:
            if self.type == "MINUTE" and 60 % self.interval:
                return _next_on_grid(t, period=self.interval, phase=0)
            if self.type == "HOUR" and 24 % self.interval:
                return _next_on_grid(t, period=60 * self.interval, phase=_minute_of_day(self.at))
            return self._next_by_clock(t)
        except OverflowError:  # past year 9999
            return None

    def _next_by_clock(self, t: datetime) -> datetime | None:
        tz = self.timezone
        # Only local times r >= t + (the zone's lowest offset in the next _OFFSET_SPAN) can occur
        # after t: a later instant u shows u + offset(u), and past that span this exceeds t plus
        # any offset there is. Starting there (not at t's own local time) catches the hour repeated
        # when clocks go back. Hourly samples do: no zone keeps an offset for less than an hour.
        lowest = min(
            _offset(t + timedelta(hours=h), tz) for h in range(_OFFSET_SPAN // timedelta(hours=1) + 1)
        )
        shown_counts = self.type in ("MINUTE", "HOUR")
        best: datetime | None = None
        for reading in self._readings(t.replace(tzinfo=None) + lowest):
            first, shown = _instants(reading, tz)
            # `first` never decreases from one reading to the next, so nothing later can win.
            if best is not None and first >= best:
                break
            for u in shown if shown_counts else (first,):
                if u > t and (best is None or u < best):
                    best = u
        return best

    def _readings(self, start: datetime) -> Iterator[datetime]:
        """The local times of day this schedule names, from ``start`` (naive, local) on, rising."""
        n = self.interval
        at = self.at or time(0)
        if self.type in ("MINUTE", "HOUR"):
            period, phase = (n, 0) if self.type == "MINUTE" else (60 * n, _minute_of_day(self.at))
            x = -((_EPOCH - start) // _MINUTE)  # ceil: the first whole local minute >= start
            x += (phase - x) % period
            while True:
                yield _EPOCH + timedelta(minutes=x)
                x += period
        elif self.type == "DAY":
            day = start.date()
            if datetime.combine(day, at) < start:
                day += timedelta(days=1)
            day += timedelta(days=-(day - _EPOCH.date()).days % n)
            while True:
                yield datetime.combine(day, at)
                day += timedelta(days=n)
        elif self.type == "WEEK":
            sunday = start.date() - timedelta(days=start.date().isoweekday() % 7)
            sunday += timedelta(weeks=-((sunday - _EPOCH_SUNDAY).days // 7) % n)
            while True:
                for weekday in self.days_of_week:
                    reading = datetime.combine(sunday + timedelta(days=weekday - 1), at)
                    if reading >= start:
                        yield reading
                sunday += timedelta(weeks=n)
        else:  # MONTH
            month = (start.year - 1970) * 12 + start.month - 1
            month += -month % n
            while True:
                year, month0 = divmod(month, 12)
                year, month1 = 1970 + year, month0 + 1
                last = calendar.monthrange(year, month1)[1]
                for mday in sorted({min(wanted, last) for wanted in self.days_of_month}):
                    reading = datetime.combine(date(year, month1, mday), at)
                    if reading >= start:
                        yield reading
                month += n


def parse_schedule(value: str | dict[str, Any] | None) -> Schedule:
    """``advancedScheduleJson`` (a JSON string, as Domo sends it, or the object) as a Schedule.

    ``"{}"``, ``""``, ``None`` and ``{"type": "MANUAL"}`` are manual. Anything invalid raises
    BadRequest naming the field and what is allowed.
    """
    raw = _as_object(value)
    zone = _timezone(raw.get("timezone"))
    kind = raw.get("type")
    if kind in (None, ""):
        given = [key for key in ("interval", "at", "daysOfWeek", "daysOfMonth") if raw.get(key) not in _EMPTY]
        if given:
            raise _bad("type", f"is required with {', '.join(given)}; one of {', '.join(TYPES)}")
        return Schedule("MANUAL", timezone=zone)
    if not isinstance(kind, str):
        raise _bad("type", f"must be one of {', '.join(TYPES)}, not {kind!r}")
    kind = kind.strip().upper()
    if kind == "YEAR":
        raise _bad("type", "YEAR is not supported: use MONTH with interval 12 and daysOfMonth")
    if kind not in TYPES:
        raise _bad("type", f"must be one of {', '.join(TYPES)}, not {kind!r}")
    if kind == "MANUAL":
        return Schedule("MANUAL", timezone=zone)
    if raw.get("between") is not None:
        raise _bad("between", "(a time window) is not supported; send null or leave it out")
    if raw.get("months") not in _EMPTY:
        raise _bad("months", "belongs to YEAR schedules, which are not supported")
    at = _at(raw.get("at"))
    return Schedule(
        kind,
        interval=_interval(raw.get("interval")),
        at=None if kind == "MINUTE" else at,
        timezone=zone,
        days_of_week=_days(raw.get("daysOfWeek"), "daysOfWeek", _weekday),
        days_of_month=_days(raw.get("daysOfMonth"), "daysOfMonth", _day_of_month),
    )


# --- parsing the fields ----------------------------------------------------------------------

_EMPTY: tuple[Any, ...] = (None, "", [])


def _bad(field: str, problem: str) -> BadRequest:
    return BadRequest(f"{_FIELD}.{field} {problem}", field=f"{_FIELD}.{field}")


def _as_object(value: object) -> dict[str, Any]:
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise BadRequest(
                f"{_FIELD} is not valid JSON ({exc.msg} at position {exc.pos})", field=_FIELD
            ) from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(
            f'{_FIELD} must be a JSON object such as {{"type": "DAY", "at": "08:00 AM"}}, '
            f"not {type(value).__name__}",
            field=_FIELD,
        )
    return value


@functools.cache
def _zone_names() -> frozenset[str]:
    # "localtime" is a system file, not a zone: it would mean different things on different nodes.
    return frozenset(available_timezones()) - {"localtime"}


def _timezone(value: object) -> ZoneInfo:
    if value in (None, ""):
        return ZoneInfo("UTC")
    # Only names of the tz database: no paths, and every node must compute the same times.
    if not isinstance(value, str) or value not in _zone_names():
        raise _bad(
            "timezone", f"must be an IANA time zone such as 'UTC' or 'America/New_York', not {value!r}"
        )
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise _bad("timezone", f"must be an IANA time zone, not {value!r}") from exc


def _interval(value: object) -> int:
    if value in (None, ""):
        return 1
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    raise _bad("interval", f"must be a whole number, not {value!r}")


def _at(value: object) -> time | None:
    if value in (None, ""):
        return None
    match = _AT.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _bad("at", f'must be a time of day such as "08:01 PM" or "20:01", not {value!r}')
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if match[4]:
        if not 1 <= hour <= 12:
            raise _bad("at", f"hour must be 1 to 12 with AM/PM, not {value!r}")
        hour = hour % 12 + (12 if match[4].upper() == "PM" else 0)
    if hour > 23 or minute > 59 or second > 59:
        raise _bad("at", f"is not a time of day: {value!r}")
    if second:
        raise _bad("at", f"must be in whole minutes, not {value!r}")
    return time(hour, minute)


def _days(value: object, field: str, one: Callable[[object], int]) -> tuple[int, ...]:
    if value in _EMPTY:
        return ()
    if not isinstance(value, list):
        raise _bad(field, f"must be a list, not {value!r}")
    return tuple(one(item) for item in value)


def _weekday(item: object) -> int:
    if isinstance(item, str) and not item.strip().lstrip("+-").isdigit():
        name = item.strip().upper()
        for number, day in enumerate(WEEKDAYS, start=1):
            if name in (day, day[:3]):
                return number
        raise _bad("daysOfWeek", f"days are 1 (Sunday) to 7 (Saturday) or names such as 'MON', not {item!r}")
    number = _whole(item, "daysOfWeek")
    if not 1 <= number <= 7:
        raise _bad("daysOfWeek", f"days are 1 (Sunday) to 7 (Saturday) or names such as 'MON', not {item!r}")
    return number


def _day_of_month(item: object) -> int:
    number = _whole(item, "daysOfMonth")
    if not 1 <= number <= 31:
        raise _bad("daysOfMonth", f"days are 1 to 31 (past a month's end: its last day), not {item!r}")
    return number


def _whole(item: object, field: str) -> int:
    if isinstance(item, int) and not isinstance(item, bool):
        return item
    if isinstance(item, str) and _INTEGER.fullmatch(item):
        return int(item)
    raise _bad(field, f"must hold whole numbers, not {item!r}")


# --- time arithmetic ---------------------------------------------------------------------------


def _minute_of_day(at: time | None) -> int:
    return 0 if at is None else at.hour * 60 + at.minute


def _next_on_grid(t: datetime, *, period: int, phase: int) -> datetime:
    """The first instant after t whose minutes since the Unix epoch are phase (mod period)."""
    x = (t - _EPOCH_UTC) // _MINUTE + 1
    x += (phase - x) % period
    return _EPOCH_UTC + timedelta(minutes=x)


def _offset(u: datetime, tz: ZoneInfo) -> timedelta:
    offset = u.astimezone(tz).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset


def _local(u: datetime, tz: ZoneInfo) -> datetime:
    return u.astimezone(tz).replace(tzinfo=None)


def _instants(reading: datetime, tz: ZoneInfo) -> tuple[datetime, tuple[datetime, ...]]:
    """(the first instant the local clock reaches ``reading``, every instant it shows it)."""
    earlier = reading.replace(tzinfo=tz, fold=0).astimezone(UTC)
    later = reading.replace(tzinfo=tz, fold=1).astimezone(UTC)
    shown = tuple(sorted({u for u in (earlier, later) if _local(u, tz) == reading}))
    if shown:
        return shown[0], shown
    # In a gap, fold=1 lands before the jump and fold=0 after it; the jump is in between. Offsets
    # change on whole seconds, so a binary search to the second finds it.
    lo, hi = min(earlier, later), max(earlier, later)
    second = timedelta(seconds=1)
    while hi - lo > second:
        mid = lo + max(1, (hi - lo) // second // 2) * second
        if _local(mid, tz) >= reading:
            hi = mid
        else:
            lo = mid
    return hi, ()
