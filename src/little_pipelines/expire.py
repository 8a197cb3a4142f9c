"""When a cached task result stops being reused: expiry policies, in local time.

Pass one as a task's ``expire_results=``. Every policy is an `Expiry`:

    never()                     kept until its inputs change (the default)
    session()                   valid only within the Python process that stored it
    after_session(name=None)    alias of session(), kept for compatibility
    on_complete(name=None)      serves the tasks below it during the run, then
                                expires when the run ends
    at_midnight()               the next local 00:00 strictly after now
    from_now(years=0, months=0, weeks=0, days=0, hours=0, minutes=0, seconds=0)
                                now plus that span
    from_today(...)             the same span, counted from today's 00:00
    at_datetime(when)           a fixed moment (a date means its 00:00)
    weekly(days=("monday",))    00:00 of the next listed weekday after today
    monthly(days=(1,))          00:00 of the next listed day of the month after today

`normalize` turns anything users may pass (None, an Expiry, a timedelta, a date or
datetime, or their own function returning seconds) into an Expiry, once, so the
engine never re-checks.

Calendar moments are computed on the local wall clock (see `wallclock`), so
"midnight" is local midnight even on a 23- or 25-hour day. Every policy reads the
clock through `now()`, which reads `_get_now()`: tests replace that to freeze time.
`Expiry()` (calling a policy) gives whole seconds until expiry, as the original did.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import time
import uuid
from collections.abc import Callable, Iterable
from numbers import Real
from typing import TypeVar

from . import wallclock
from .errors import InvalidOptionError, OptionTypeError
from .wallclock import (
    Span,
    local,
    next_midnight,
    next_month_day,
    next_weekday,
    span_from_now,
    span_from_today,
)

__all__ = [
    "Expiry",
    "after_session",
    "at_datetime",
    "at_midnight",
    "from_now",
    "from_today",
    "monthly",
    "never",
    "normalize",
    "now",
    "on_complete",
    "session",
    "session_id",
    "weekly",
]

#: The expiry kinds and what each means for the engine. Only "time" has a moment.
KINDS: dict[str, str] = {
    "never": "kept until its inputs change",
    "session": "valid only within the process that stored it (see session_id())",
    "on_complete": "serves the tasks below it during the run, expires when the run ends",
    "time": "expires at a moment given by expires_at()",
}

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_BY_PREFIX = {name[:2]: index for index, name in enumerate(_WEEKDAYS)}

# A policy's moment is computed from "now" each time it is asked, because the engine
# asks when it stores a result: from_now(days=1) means a day after that store.
_Moment = Callable[[dt.datetime], dt.datetime | None]


# -- the clock ---------------------------------------------------------------------


def _get_now() -> dt.datetime:
    """The current local time, timezone-aware. Tests replace this to freeze time."""
    return dt.datetime.now().astimezone()


def now() -> dt.datetime:
    """The current local time, aware: the one clock of the library (records, expiry).

    It reads `_get_now` at call time, so a test that replaces `expire._get_now`
    (naive or aware) freezes every part of the library at once.
    """
    return local(_get_now())


_SYSTEM_NOW = _get_now


def timestamp() -> float:
    """`now()` as epoch seconds, what records keep: `time.time()` itself unless a test
    replaced `_get_now` (an aware datetime, made and converted back, cost ~4 µs a
    task where the engine only needed this number)."""
    if _get_now is _SYSTEM_NOW:
        return time.time()
    return now().timestamp()


def moment(ts: float) -> dt.datetime:
    """The aware local datetime of epoch seconds `ts` (a `timestamp()`)."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).astimezone()


# -- the one internal type -----------------------------------------------------------


class Expiry:
    """An expiry policy: a kind, a readable description and, for kind "time", a moment.

    Parameters:
        kind: one of `KINDS`.
        description: what `repr()` shows, e.g. ``"at_midnight()"``.
        moment: for kind "time" only, ``now -> aware datetime | None`` (None: no limit).
        name: kept only for compatibility with ``after_session(name)`` and
            ``on_complete(name)``; default None.
    """

    def __init__(
        self,
        kind: str,
        description: str,
        moment: _Moment | None = None,
        *,
        name: str | None = None,
    ) -> None:
        if kind not in KINDS:
            raise InvalidOptionError(
                f"Unknown expiry kind {kind!r}; expected one of {sorted(KINDS)}.")
        if (kind == "time") != (moment is not None):
            raise InvalidOptionError(
                f"Expiry(kind={kind!r}) got moment={moment!r}; kind 'time' needs a moment "
                "function and the other kinds take none."
            )
        self.kind = kind
        self.name = name
        self._description = description
        self._moment = moment

    def expires_at(self, now: dt.datetime | None = None) -> dt.datetime | None:
        """The aware local moment of expiry, or None when there is no time limit.

        Parameters:
            now: the moment to count from; default None reads the clock. A naive
                datetime is taken to be local time.
        """
        if self._moment is None:
            return None
        moment = self._moment(local(_get_now() if now is None else now))
        return None if moment is None else local(moment)

    def __call__(self) -> int | None:
        """Whole seconds from now until expiry (truncated, as the original library
        did), or None when there is no time limit.

        Negative for a moment already past: a result stored with it is never reused.
        The engine stores `expires_at()`, the exact moment, not this rounded count.
        """
        current = now()
        moment = self.expires_at(current)
        return None if moment is None else int((moment - current).total_seconds())

    def __repr__(self) -> str:
        return self._description


# -- factories without a moment ------------------------------------------------------


def never() -> Expiry:
    """Keep results until their inputs change (the default)."""
    return Expiry("never", "never()")


def session() -> Expiry:
    """Results are valid only within the Python process that stored them.

    The engine records `session_id()` with the result and ignores it in any other process.
    """
    return Expiry("session", "session()")


def after_session(name: str | None = None) -> Expiry:
    """Alias of `session()`; `name` is kept only for compatibility. Default None."""
    return Expiry("session", _call_repr("after_session", name=name), name=name)


def on_complete(name: str | None = None) -> Expiry:
    """The result serves the tasks below it during the run, then expires when it ends.

    The engine does the expiring; `name` is kept only for compatibility. Default None.
    """
    return Expiry("on_complete", _call_repr("on_complete", name=name), name=name)


# -- factories with a moment ---------------------------------------------------------


def at_midnight() -> Expiry:
    """Expire at the next local 00:00 strictly after now."""
    return Expiry("time", "at_midnight()", next_midnight)


def from_now(
    years: int = 0,
    months: int = 0,
    weeks: float = 0,
    days: float = 0,
    hours: float = 0,
    minutes: float = 0,
    seconds: float = 0,
) -> Expiry:
    """Expire this long after now; all zero means "expire now".

    Years and months are calendar arithmetic that clamps the day (Jan 31 + 1 month is
    the last day of February); weeks and days move the local wall clock (one day after
    12:00 is 12:00 even across a DST change); hours, minutes and seconds are elapsed
    time. Every argument defaults to 0 and must be non-negative; years and months are
    integers.
    """
    span = Span.checked("from_now", years, months, weeks, days, hours, minutes, seconds)
    return Expiry("time", span.describe("from_now"), functools.partial(span_from_now, span))


def from_today(
    years: int = 0,
    months: int = 0,
    weeks: float = 0,
    days: float = 0,
    hours: float = 0,
    minutes: float = 0,
    seconds: float = 0,
) -> Expiry:
    """Expire this long after today's local 00:00, e.g. ``from_today(days=1, hours=6)``.

    The whole span moves the wall clock, so ``from_today(hours=6)`` is 06:00 local even
    on a DST day (from_now's elapsed hours would give 07:00 there). Arguments as
    `from_now`: each defaults to 0, non-negative; years and months are integers.
    """
    span = Span.checked("from_today", years, months, weeks, days, hours, minutes, seconds)
    return Expiry("time", span.describe("from_today"), functools.partial(span_from_today, span))


def at_datetime(when: dt.date | dt.datetime) -> Expiry:
    """Expire at `when`: a datetime (naive means local) or a date (its local 00:00).

    A moment already past is allowed: the result is then never reused.
    """
    if isinstance(when, dt.datetime):  # first: a datetime is also a date
        moment = when
    elif isinstance(when, dt.date):
        moment = dt.datetime.combine(when, dt.time())
    else:
        raise OptionTypeError(
            f"at_datetime() expected a datetime.date or datetime.datetime, got {when!r}; "
            "for a span from now use lp.expire.from_now(...)."
        )
    return Expiry("time", f"at_datetime({when!r})", functools.partial(_fixed, moment))


def weekly(days: str | Iterable[str] = ("monday",)) -> Expiry:
    """Expire at 00:00 of the next listed weekday strictly after today.

    Parameters:
        days: weekday names, matched on their first two letters in any case ("Mo",
            "MON", "monday"); a single string is one day. Default ("monday",).
    """
    indexes = _weekday_indexes(days)
    names = tuple(_WEEKDAYS[i] for i in indexes)
    return Expiry("time", f"weekly(days={names!r})", functools.partial(next_weekday, indexes))


def monthly(days: int | Iterable[int] = (1,)) -> Expiry:
    """Expire at 00:00 of the next listed day of the month strictly after today.

    A day the month lacks (31 in April) means its last day, never an error.

    Parameters:
        days: days of the month, integers 1..31; a single int is one day. Default (1,).
    """
    checked = _month_days(days)
    return Expiry("time", f"monthly(days={checked!r})", functools.partial(next_month_day, checked))


# -- the boundary --------------------------------------------------------------------


def normalize(spec: object) -> Expiry:
    """Turn what users pass as ``expire_results=`` into an `Expiry`.

    None is never(); an Expiry is itself; a timedelta is that long from now; a date or
    datetime is at_datetime(spec); any other callable is the user's own function
    returning seconds until expiry (a number, or None for no limit).
    """
    if spec is None:
        return never()
    if isinstance(spec, Expiry):
        return spec
    if isinstance(spec, dt.timedelta):
        if spec < dt.timedelta(0):
            raise InvalidOptionError(
                f"expire_results got a negative timedelta, {spec!r}; expected a span from "
                "now, e.g. timedelta(hours=1), or lp.expire.at_datetime(...) for a fixed moment."
            )
        return from_now(seconds=spec.total_seconds())
    if isinstance(spec, dt.date):
        return at_datetime(spec)
    if any(spec is factory for factory in _FACTORIES):
        # Passing the factory itself is an easy slip; calling it for the user would hide
        # it for at_midnight but not for at_datetime, so say how to fix it instead.
        raise OptionTypeError(
            f"expire_results got the factory {_qualname(spec)} itself; "
            f"call it: expire_results=lp.expire.{_qualname(spec)}()."
        )
    if callable(spec):
        return Expiry("time", f"normalize({_qualname(spec)})", functools.partial(_user, spec))
    raise OptionTypeError(
        "expire_results expected None, an lp.expire policy, a datetime.timedelta, a "
        "datetime.date/datetime, or a function returning seconds until expiry; "
        f"got {spec!r}. Use e.g. lp.expire.at_midnight() or lp.expire.from_now(hours=1)."
    )


# -- the process id ------------------------------------------------------------------

_session: tuple[int, str] | None = None


def session_id() -> str:
    """An id unique to this process, so session() results are not reused by another.

    Regenerated when the pid changes: a forked child must not pass for its parent.
    """
    global _session
    if _session is None or _session[0] != os.getpid():
        _session = (os.getpid(), uuid.uuid4().hex)
    return _session[1]


# -- the original's helper -----------------------------------------------------------


_Day = TypeVar("_Day", dt.date, dt.datetime)


def _add_months(date: _Day, months: int) -> _Day:
    """The original library's helper, same signature and meaning (users' own expiry
    functions call it): `date` (a date or datetime) moved by `months` calendar months,
    negative going back, the day clamped to the month's last (Oct 31 + 4 months is
    Feb 28); the time of day is kept."""
    return wallclock.add_months(date, months)


# -- moments (module-level functions, so partials of them pickle) ----------------------


def _fixed(moment: dt.datetime, now: dt.datetime) -> dt.datetime:
    return moment


def _user(function: Callable[[], object], now: dt.datetime) -> dt.datetime | None:
    seconds = function()
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, Real) or not math.isfinite(seconds):
        raise OptionTypeError(
            f"The expire_results function {_qualname(function)} must return seconds until "
            f"expiry as a finite number, or None for no limit; it returned {seconds!r}."
        )
    return now + dt.timedelta(seconds=float(seconds))


# -- helpers -------------------------------------------------------------------------


def _weekday_indexes(days: str | Iterable[str]) -> tuple[int, ...]:
    names = _listed(days, str)
    if not names:
        raise InvalidOptionError(
            "Must specify at least one weekday, e.g. weekly(days=('monday',)).")
    indexes = set()
    for name in names:
        if not isinstance(name, str):
            raise OptionTypeError(f"weekly() days must be weekday names, got {name!r}.")
        # Trimmed as the original did: "  Monday  " read from a config file is Monday.
        index = _WEEKDAY_BY_PREFIX.get(name.strip()[:2].lower())
        if index is None:
            raise InvalidOptionError(
                f"Invalid weekday {name!r}; expected one of {', '.join(_WEEKDAYS)} "
                "(the first two letters are enough, in any case)."
            )
        indexes.add(index)
    return tuple(sorted(indexes))


def _month_days(days: int | Iterable[int]) -> tuple[int, ...]:
    values = _listed(days, int)
    if not values:
        raise InvalidOptionError("No valid dates found: monthly() needs at least one day, 1..31.")
    checked: list[int] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise OptionTypeError(f"monthly() days must be integers 1..31, got {value!r}.")
        checked.append(value)
    impossible = [day for day in checked if not 1 <= day <= 31]
    if impossible:
        # The original's words first when no day can ever occur: scripts match on them.
        start = (f"No valid dates found for days {tuple(checked)!r}: "
                 if len(impossible) == len(checked) else "")
        raise InvalidOptionError(
            f"{start}monthly() days must be integers 1..31, got {impossible[0]!r}, which no "
            "month has. For the last day of every month use 31 (a month without it uses "
            "its last day)."
        )
    return tuple(sorted(set(checked)))


def _listed(value: object, single: type) -> list[object]:
    # A lone value is one day; a str is never unpacked into letters or digits.
    if isinstance(value, single | str) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _call_repr(function: str, **arguments: object) -> str:
    given = ", ".join(f"{key}={value!r}" for key, value in arguments.items() if value is not None)
    return f"{function}({given})"


def _qualname(function: object) -> str:
    return getattr(function, "__qualname__", None) or repr(function)


# Derived from __all__ so a new factory is covered without a second list to keep in step.
_FACTORIES = {globals()[name] for name in __all__} - {Expiry, normalize, now, session_id}
