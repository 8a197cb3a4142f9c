"""Local wall-clock arithmetic: the calendar moments expiry policies are made of.

"Midnight", "next Monday", "the 1st of next month" and "one month later" are read
on the naive local wall clock and only then made aware, so midnight is local
midnight even on a 23- or 25-hour day; a wall-clock time skipped by a DST gap
moves forward (02:30 becomes 03:30). Knows nothing of policies or tasks: `expire`
builds its policies from these functions (module-level, so partials of them pickle).
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import math
import typing
from numbers import Real

from .errors import InvalidOptionError, OptionTypeError

__all__ = [
    "Span",
    "add_months",
    "at_midnight_of",
    "local",
    "next_midnight",
    "next_month_day",
    "next_weekday",
    "span_from_now",
    "span_from_today",
    "wall",
]

_Day = typing.TypeVar("_Day", dt.date, dt.datetime)


def local(moment: dt.datetime) -> dt.datetime:
    """`moment` as an aware local datetime; a naive one is a local wall-clock reading.

    A naive `.astimezone()` applies the local offset of that day, which is what makes a
    23- or 25-hour day come out right. A reading skipped by a DST gap moves forward.
    """
    aware = moment.astimezone()
    if moment.tzinfo is not None or aware.replace(tzinfo=None) == moment:
        return aware
    # In a gap CPython applies the offset after the jump, which moves the reading back:
    # a midnight skipped in America/Santiago would become 23:00 the day before, before
    # "now". The other fold applies the offset before the jump, so take the later one.
    return max(aware, moment.replace(fold=1 - moment.fold).astimezone())


def wall(now: dt.datetime) -> dt.datetime:
    """The naive local wall-clock reading of `now`."""
    return local(now).replace(tzinfo=None)


def add_months(date: _Day, months: int, *, day: int | None = None) -> _Day:
    """`date` moved by `months` calendar months (negative: back), its day clamped to
    the month's last (Jan 31 + 1 month is Feb 28, or 29); the time of day is kept.

    Parameters:
        day: the day of the month to land on instead of `date`'s (clamped too);
            default None.
    """
    years, index = divmod(date.month - 1 + months, 12)
    year, month = date.year + years, index + 1
    last = calendar.monthrange(year, month)[1]
    return date.replace(year=year, month=month, day=min(date.day if day is None else day, last))


def at_midnight_of(day: dt.date) -> dt.datetime:
    """The aware moment of `day`'s local 00:00."""
    return local(dt.datetime.combine(day, dt.time()))


def next_midnight(now: dt.datetime) -> dt.datetime:
    """The next local 00:00 strictly after `now`."""
    return at_midnight_of(wall(now).date() + dt.timedelta(days=1))


def next_weekday(indexes: tuple[int, ...], now: dt.datetime) -> dt.datetime:
    """00:00 of the next of these weekdays (0 is Monday) strictly after today."""
    today = wall(now).date()
    # 1..7 days ahead: a listed weekday equal to today's means next week's.
    ahead = min((index - today.weekday() - 1) % 7 + 1 for index in indexes)
    return at_midnight_of(today + dt.timedelta(days=ahead))


def next_month_day(days: tuple[int, ...], now: dt.datetime) -> dt.datetime:
    """00:00 of the next of these days of the month (1..31, clamped to the month's
    last day) strictly after today."""
    today = wall(now).date()
    first = today.replace(day=1)
    later = [d for d in (add_months(first, 0, day=day) for day in days) if d > today]
    # Every listed day of next month is after today, so this is never empty.
    later = later or [add_months(first, 1, day=day) for day in days]
    return at_midnight_of(min(later))


@dataclasses.dataclass(frozen=True)
class Span:
    """The arguments of from_now / from_today, checked once (`Span.checked`)."""

    years: int
    months: int
    weeks: float
    days: float
    hours: float
    minutes: float
    seconds: float

    @classmethod
    def checked(cls, caller: str, *values: object) -> Span:
        for field, value in zip(dataclasses.fields(cls), values, strict=True):
            whole = field.name in ("years", "months")
            wanted = "a non-negative integer" if whole else "a non-negative number"
            if isinstance(value, bool) or not isinstance(value, int if whole else Real):
                raise OptionTypeError(
                    f"{caller}() expected {field.name} to be {wanted}, got {value!r}.")
            if not (float(value) >= 0 and math.isfinite(value)):
                raise InvalidOptionError(
                    f"{caller}() expected {field.name} to be {wanted}, got {value!r}.")
        return cls(*values)  # type: ignore[arg-type]  # checked just above

    @property
    def moves_calendar(self) -> bool:
        return any((self.years, self.months, self.weeks, self.days))

    def shift_wall(self, reading: dt.datetime) -> dt.datetime:
        """`reading` moved by years and months (clamping the day), then weeks and days."""
        moved = add_months(reading, self.years * 12 + self.months)
        return moved + dt.timedelta(weeks=self.weeks, days=self.days)

    def elapsed(self) -> dt.timedelta:
        return dt.timedelta(hours=self.hours, minutes=self.minutes, seconds=self.seconds)

    def describe(self, caller: str) -> str:
        values = ((f.name, getattr(self, f.name)) for f in dataclasses.fields(self))
        return f"{caller}({', '.join(f'{name}={value!r}' for name, value in values if value)})"


def span_from_now(span: Span, now: dt.datetime) -> dt.datetime:
    """`now` plus the span: calendar parts on the wall clock, hours and less elapsed."""
    if not span.moves_calendar:
        # Skip the wall-clock round trip: it would lose which of a repeated DST hour
        # `now` is in and could move the moment an hour back.
        return now + span.elapsed()
    return local(span.shift_wall(wall(now))) + span.elapsed()


def span_from_today(span: Span, now: dt.datetime) -> dt.datetime:
    """Today's local 00:00 plus the span, all of it on the wall clock."""
    midnight = dt.datetime.combine(wall(now).date(), dt.time())
    return local(span.shift_wall(midnight) + span.elapsed())
