"""Tests for little_pipelines.expire: each policy at frozen moments, then properties.

Time is frozen by replacing `expire._get_now`; nothing sleeps. The whole module runs
in Europe/Berlin (a zone with DST and a non-zero offset, so UTC-only bugs show); the
DST cases switch to America/New_York.
"""

from __future__ import annotations

import calendar
import math
import os
import pickle
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import little_pipelines.expire as expire
from little_pipelines.expire import Expiry

HOUR = 3600.0


def _set_tz(name: str | None) -> None:
    if name is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = name
    time.tzset()


@pytest.fixture(autouse=True, scope="module")
def berlin() -> Iterator[None]:
    original = os.environ.get("TZ")
    _set_tz("Europe/Berlin")
    yield
    _set_tz(original)


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    original = os.environ.get("TZ")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.setenv("TZ", original) if original else monkeypatch.delenv("TZ")
    time.tzset()


def local(*args: int) -> datetime:
    """An aware local datetime from wall-clock fields."""
    return datetime(*args).astimezone()  # type: ignore[arg-type]


def wall(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment.astimezone().replace(tzinfo=None)


# --- the clock ---------------------------------------------------------------------


def test_default_clock_is_aware_local_now() -> None:
    now = expire._get_now()
    assert now.tzinfo is not None
    assert now.utcoffset() == datetime.now().astimezone().utcoffset()
    assert abs((now - datetime.now(UTC)).total_seconds()) < 60


def test_unfrozen_at_midnight_is_within_a_day() -> None:
    seconds = expire.at_midnight()()
    assert seconds is not None
    assert 0 < seconds <= 25 * HOUR


def test_clock_is_read_at_call_time_not_at_creation(freeze: Callable[[datetime], None]) -> None:
    policy = expire.at_midnight()
    freeze(datetime(2026, 3, 14, 15, 30))
    assert wall(policy.expires_at()) == datetime(2026, 3, 15)
    freeze(datetime(2026, 7, 1, 8, 0))
    assert wall(policy.expires_at()) == datetime(2026, 7, 2)


def test_naive_and_aware_frozen_clocks_agree(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2026, 3, 14, 15, 30))
    from_naive = expire.at_midnight().expires_at()
    freeze(local(2026, 3, 14, 15, 30))
    assert expire.at_midnight().expires_at() == from_naive


def test_aware_clock_in_another_zone_is_read_as_local(freeze: Callable[[datetime], None]) -> None:
    # 23:30 UTC is already 00:30 the next day in Berlin.
    freeze(datetime(2026, 3, 14, 23, 30, tzinfo=UTC))
    assert wall(expire.at_midnight().expires_at()) == datetime(2026, 3, 16)


def test_expires_at_accepts_an_explicit_now() -> None:
    policy = expire.at_midnight()
    assert wall(policy.expires_at(datetime(2026, 3, 14, 15, 30))) == datetime(2026, 3, 15)
    moment = policy.expires_at(local(2026, 3, 14, 15, 30))
    assert moment is not None and moment.tzinfo is not None


# --- policies without a time limit -------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "kind", "name", "text"),
    [
        (expire.never(), "never", None, "never()"),
        (expire.session(), "session", None, "session()"),
        (expire.after_session(), "session", None, "after_session()"),
        (expire.after_session("daily"), "session", "daily", "after_session(name='daily')"),
        (expire.on_complete(), "on_complete", None, "on_complete()"),
        (expire.on_complete(name="x"), "on_complete", "x", "on_complete(name='x')"),
    ],
)
def test_policies_without_time_limit(
    policy: Expiry, kind: str, name: str | None, text: str
) -> None:
    assert policy.kind == kind
    assert policy.name == name
    assert repr(policy) == text
    assert policy() is None
    assert policy.expires_at() is None


def test_expiry_rejects_unknown_kind_and_mismatched_moment() -> None:
    with pytest.raises(ValueError, match=r"Unknown expiry kind 'sometimes'"):
        Expiry("sometimes", "sometimes()")
    with pytest.raises(ValueError, match="needs a moment"):
        Expiry("time", "x()")
    with pytest.raises(ValueError, match="needs a moment"):
        Expiry("never", "x()", lambda now: now)


# --- at_midnight --------------------------------------------------------------------


def test_at_midnight_is_next_local_midnight(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2026, 3, 14, 15, 30))
    policy = expire.at_midnight()
    assert policy.kind == "time"
    assert policy.expires_at() == local(2026, 3, 15)
    assert policy() == 8.5 * HOUR
    assert repr(policy) == "at_midnight()"


def test_at_midnight_exactly_at_midnight_is_the_next_one(
    freeze: Callable[[datetime], None],
) -> None:
    freeze(datetime(2026, 3, 14))
    assert expire.at_midnight().expires_at() == local(2026, 3, 15)
    assert expire.at_midnight()() == 24 * HOUR


def test_at_midnight_rolls_over_the_year(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2026, 12, 31, 23, 59, 59))
    assert expire.at_midnight().expires_at() == local(2027, 1, 1)
    assert expire.at_midnight()() == 1.0


# --- from_now / from_today ----------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "kwargs", "expected"),
    [
        (datetime(2026, 3, 14, 15, 30), {"days": 1}, datetime(2026, 3, 15, 15, 30)),
        (datetime(2026, 3, 14, 15, 30), {"weeks": 2}, datetime(2026, 3, 28, 15, 30)),
        (datetime(2026, 3, 14, 15, 30), {"hours": 9}, datetime(2026, 3, 15, 0, 30)),
        (datetime(2026, 3, 14, 15, 30), {"minutes": 45, "seconds": 30},
         datetime(2026, 3, 14, 16, 15, 30)),
        (datetime(2026, 3, 14, 15, 30), {"days": 1.5}, datetime(2026, 3, 16, 3, 30)),
        (datetime(2026, 1, 31, 12), {"months": 1}, datetime(2026, 2, 28, 12)),
        (datetime(2028, 1, 31, 12), {"months": 1}, datetime(2028, 2, 29, 12)),
        (datetime(2026, 3, 31, 12), {"months": 1}, datetime(2026, 4, 30, 12)),
        (datetime(2028, 2, 29, 12), {"years": 1}, datetime(2029, 2, 28, 12)),
        (datetime(2028, 2, 29, 12), {"years": 4}, datetime(2032, 2, 29, 12)),
        (datetime(2026, 11, 15), {"months": 3}, datetime(2027, 2, 15)),
        (datetime(2026, 3, 14), {"months": 13}, datetime(2027, 4, 14)),
        # Months first (clamping to Feb 28), then the day is added.
        (datetime(2026, 1, 31), {"months": 1, "days": 1}, datetime(2026, 3, 1)),
        (datetime(2026, 1, 1), {"years": 1, "months": 1, "weeks": 1, "days": 1, "hours": 1,
                                "minutes": 1, "seconds": 1}, datetime(2027, 2, 9, 1, 1, 1)),
    ],
)  # fmt: skip
def test_from_now(
    freeze: Callable[[datetime], None], now: datetime, kwargs: dict[str, float], expected: datetime
) -> None:
    freeze(now)
    policy = expire.from_now(**kwargs)  # type: ignore[arg-type]
    assert policy.expires_at() == expected.astimezone()
    assert policy() == (expected.astimezone() - now.astimezone()).total_seconds()


def test_from_now_all_zero_expires_now(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2026, 3, 14, 15, 30))
    assert expire.from_now().expires_at() == local(2026, 3, 14, 15, 30)
    assert expire.from_now()() == 0.0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"days": -1},
            ValueError,
            r"from_now\(\) expected days to be a non-negative number, got -1",
        ),
        ({"years": -1}, ValueError, r"expected years to be a non-negative integer, got -1"),
        ({"seconds": math.nan}, ValueError, r"expected seconds .* got nan"),
        ({"hours": math.inf}, ValueError, r"expected hours .* got inf"),
        ({"months": 1.5}, TypeError, r"expected months to be a non-negative integer, got 1\.5"),
        ({"days": "1"}, TypeError, r"expected days to be a non-negative number, got '1'"),
        ({"days": True}, TypeError, r"got True"),
        ({"weeks": None}, TypeError, r"expected weeks .* got None"),
    ],
)
def test_from_now_rejects_bad_arguments(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        expire.from_now(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(error, match=message.replace("from_now", "from_today")):
        expire.from_today(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, datetime(2026, 3, 14)),
        ({"days": 1}, datetime(2026, 3, 15)),
        ({"days": 1, "hours": 6}, datetime(2026, 3, 15, 6)),
        ({"hours": 18}, datetime(2026, 3, 14, 18)),
        ({"weeks": 1}, datetime(2026, 3, 21)),
        ({"months": 1}, datetime(2026, 4, 14)),
        ({"years": 2}, datetime(2028, 3, 14)),
    ],
)
def test_from_today_counts_from_local_midnight(
    freeze: Callable[[datetime], None], kwargs: dict[str, float], expected: datetime
) -> None:
    freeze(datetime(2026, 3, 14, 15, 30))
    policy = expire.from_today(**kwargs)  # type: ignore[arg-type]
    assert policy.expires_at() == expected.astimezone()


def test_from_today_in_the_past_gives_negative_seconds(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2026, 3, 14, 15, 30))
    assert expire.from_today(hours=6)() == -9.5 * HOUR
    assert expire.from_today()() == -15.5 * HOUR


def test_from_today_clamps_months(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2026, 1, 31, 9))
    assert expire.from_today(months=1).expires_at() == local(2026, 2, 28)


def test_span_reprs() -> None:
    assert repr(expire.from_now(days=1)) == "from_now(days=1)"
    assert repr(expire.from_now()) == "from_now()"
    assert repr(expire.from_now(months=1, hours=2.5)) == "from_now(months=1, hours=2.5)"
    assert repr(expire.from_today(days=1, hours=6)) == "from_today(days=1, hours=6)"


# --- at_datetime --------------------------------------------------------------------


def test_at_datetime_with_naive_datetime_is_local(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2026, 3, 14, 15, 30))
    policy = expire.at_datetime(datetime(2026, 3, 20, 8, 15))
    assert policy.expires_at() == local(2026, 3, 20, 8, 15)
    assert policy() == (local(2026, 3, 20, 8, 15) - local(2026, 3, 14, 15, 30)).total_seconds()


def test_at_datetime_with_date_is_its_local_midnight(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2026, 3, 14, 15, 30))
    policy = expire.at_datetime(date(2026, 3, 20))
    assert policy.expires_at() == local(2026, 3, 20)
    assert repr(policy) == "at_datetime(datetime.date(2026, 3, 20))"


def test_at_datetime_with_aware_datetime_keeps_the_instant(
    freeze: Callable[[datetime], None],
) -> None:
    freeze(datetime(2026, 3, 14, 12))  # 11:00 UTC in Berlin
    policy = expire.at_datetime(datetime(2026, 3, 14, 12, tzinfo=UTC))
    assert policy.expires_at() == local(2026, 3, 14, 13)
    assert policy() == HOUR


def test_at_datetime_in_the_past_gives_negative_seconds(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2026, 3, 14, 15, 30))
    assert expire.at_datetime(datetime(2026, 3, 14, 15)).__call__() == -0.5 * HOUR
    seconds = expire.at_datetime(date(2020, 1, 1))()
    assert seconds is not None and seconds < 0


@pytest.mark.parametrize("when", ["2026-03-14", 1773500000, None, timedelta(days=1)])
def test_at_datetime_rejects_other_types(when: object) -> None:
    with pytest.raises(TypeError) as info:
        expire.at_datetime(when)  # type: ignore[arg-type]
    assert "expected a datetime.date or datetime.datetime, got " + repr(when) in str(info.value)


# --- weekly -------------------------------------------------------------------------

SATURDAY = datetime(2026, 3, 14, 15, 30)
MONDAY = datetime(2026, 3, 16, 9, 0)


def test_frozen_days_are_the_weekdays_the_tests_assume() -> None:
    assert SATURDAY.strftime("%A") == "Saturday"
    assert MONDAY.strftime("%A") == "Monday"


@pytest.mark.parametrize(
    ("now", "days", "expected"),
    [
        (SATURDAY, ("monday",), date(2026, 3, 16)),
        (SATURDAY, ("sunday",), date(2026, 3, 15)),
        (SATURDAY, ("saturday",), date(2026, 3, 21)),  # today listed: next week's
        (MONDAY, ("monday",), date(2026, 3, 23)),
        (MONDAY, ("Mo", "fr"), date(2026, 3, 20)),
        (MONDAY, ("FRI", "tUEsday"), date(2026, 3, 17)),
        (MONDAY, ("Su",), date(2026, 3, 22)),
        (MONDAY, "wednesday", date(2026, 3, 18)),  # a single string is one day
        (MONDAY, "We", date(2026, 3, 18)),
        (MONDAY, ["thursday", "th", "THU"], date(2026, 3, 19)),
        (datetime(2026, 12, 30), ("fr",), date(2027, 1, 1)),
    ],
)
def test_weekly(
    freeze: Callable[[datetime], None], now: datetime, days: object, expected: date
) -> None:
    freeze(now)
    policy = expire.weekly(days)  # type: ignore[arg-type]
    assert policy.expires_at() == local(expected.year, expected.month, expected.day)


def test_weekly_default_is_monday(freeze: Callable[[datetime], None]) -> None:
    freeze(SATURDAY)
    assert expire.weekly().expires_at() == local(2026, 3, 16)
    assert expire.weekly()() == (local(2026, 3, 16) - SATURDAY.astimezone()).total_seconds()


def test_weekly_repr_uses_full_names_in_week_order() -> None:
    assert repr(expire.weekly()) == "weekly(days=('monday',))"
    assert repr(expire.weekly(["FR", "mon", "mo"])) == "weekly(days=('monday', 'friday'))"


@pytest.mark.parametrize("days", [("funday",), ("monday", "x"), "m", ("",)])
def test_weekly_rejects_unknown_names(days: object) -> None:
    with pytest.raises(ValueError) as info:
        expire.weekly(days)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith("Invalid weekday")
    assert "monday, tuesday, wednesday, thursday, friday, saturday, sunday" in message


def test_weekly_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match="weekday names, got 1"):
        expire.weekly([1])  # type: ignore[list-item]


@pytest.mark.parametrize("days", [(), []])
def test_weekly_needs_a_day(days: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="Must specify at least one weekday"):
        expire.weekly(days)


# --- monthly ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "days", "expected"),
    [
        (datetime(2026, 3, 14, 15, 30), (1,), date(2026, 4, 1)),
        (datetime(2026, 3, 1, 0, 0), (1,), date(2026, 4, 1)),  # today listed: strictly after
        (datetime(2026, 3, 14), (15,), date(2026, 3, 15)),
        (datetime(2026, 3, 14), (1, 15), date(2026, 3, 15)),
        (datetime(2026, 3, 16), (1, 15), date(2026, 4, 1)),
        (datetime(2026, 3, 14), 20, date(2026, 3, 20)),  # a single int is one day
        (datetime(2026, 4, 15), (31,), date(2026, 4, 30)),  # April has no 31st
        (datetime(2026, 4, 30), (31,), date(2026, 5, 31)),  # the clamped day is today
        (datetime(2026, 1, 31), (31,), date(2026, 2, 28)),
        (datetime(2026, 2, 10), (30,), date(2026, 2, 28)),
        (datetime(2028, 2, 10), (30,), date(2028, 2, 29)),
        (datetime(2028, 2, 10), (29, 31), date(2028, 2, 29)),
        (datetime(2026, 12, 20), (1,), date(2027, 1, 1)),
        (datetime(2026, 12, 31), (31,), date(2027, 1, 31)),
    ],
)
def test_monthly(
    freeze: Callable[[datetime], None], now: datetime, days: object, expected: date
) -> None:
    freeze(now)
    policy = expire.monthly(days)  # type: ignore[arg-type]
    assert policy.expires_at() == local(expected.year, expected.month, expected.day)


def test_monthly_default_is_the_first(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2026, 3, 14, 15, 30))
    assert expire.monthly().expires_at() == local(2026, 4, 1)
    assert repr(expire.monthly()) == "monthly(days=(1,))"
    assert repr(expire.monthly([15, 1, 15])) == "monthly(days=(1, 15))"


@pytest.mark.parametrize(
    ("days", "error"),
    [(0, ValueError), (32, ValueError), ((1, -3), ValueError), (True, TypeError),
     ((1.0,), TypeError), ("1", TypeError), ((None,), TypeError)],
)  # fmt: skip
def test_monthly_rejects_bad_days(days: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"days must be integers 1\.\.31, got "):
        expire.monthly(days)  # type: ignore[arg-type]


@pytest.mark.parametrize("days", [(), []])
def test_monthly_needs_a_day(days: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="No valid dates found"):
        expire.monthly(days)


# --- normalize ----------------------------------------------------------------------


def test_normalize_none_is_never() -> None:
    policy = expire.normalize(None)
    assert policy.kind == "never"
    assert policy() is None


def test_normalize_keeps_an_expiry() -> None:
    policy = expire.weekly("fr")
    assert expire.normalize(policy) is policy


def test_normalize_timedelta_is_that_long_from_now(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2026, 3, 14, 15, 30))
    policy = expire.normalize(timedelta(hours=2, minutes=30))
    assert policy.kind == "time"
    assert policy() == 2.5 * HOUR
    assert policy.expires_at() == local(2026, 3, 14, 18)


def test_normalize_rejects_a_negative_timedelta() -> None:
    with pytest.raises(ValueError, match=r"negative timedelta, datetime\.timedelta\(days=-1\)"):
        expire.normalize(timedelta(days=-1))


def test_normalize_dates_and_datetimes(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2026, 3, 14, 15, 30))
    assert expire.normalize(date(2026, 3, 20)).expires_at() == local(2026, 3, 20)
    assert expire.normalize(datetime(2026, 3, 20, 7)).expires_at() == local(2026, 3, 20, 7)


def test_normalize_user_function_returns_its_seconds(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2026, 3, 14, 15, 30))

    def ten_minutes() -> float:
        return 600

    policy = expire.normalize(ten_minutes)
    assert policy.kind == "time"
    assert policy() == 600.0
    assert policy.expires_at() == local(2026, 3, 14, 15, 40)
    assert "ten_minutes" in repr(policy)


def test_normalize_user_function_returning_none_has_no_limit() -> None:
    policy = expire.normalize(lambda: None)
    assert policy.kind == "time"
    assert policy() is None
    assert policy.expires_at() is None


@pytest.mark.parametrize("returned", ["soon", True, math.nan, math.inf])
def test_normalize_user_function_must_return_a_number(returned: object) -> None:
    policy = expire.normalize(lambda: returned)
    with pytest.raises(TypeError, match=f"must return seconds .* it returned {returned!r}"):
        policy()


@pytest.mark.parametrize("spec", ["midnight", 3600, 1.5, ["daily"], object()])
def test_normalize_rejects_other_values(spec: object) -> None:
    with pytest.raises(TypeError) as info:
        expire.normalize(spec)
    message = str(info.value)
    assert f"got {spec!r}" in message
    assert "expected None, an lp.expire policy" in message
    assert "lp.expire.at_midnight()" in message


def test_normalize_rejects_an_uncalled_factory() -> None:
    with pytest.raises(TypeError, match=r"call it: expire_results=lp\.expire\.at_midnight\(\)"):
        expire.normalize(expire.at_midnight)


# --- DST ----------------------------------------------------------------------------


@pytest.mark.usefixtures("new_york")
def test_at_midnight_on_a_23_hour_day(freeze: Callable[[datetime], None]) -> None:
    # 2026-03-08: New York clocks jump from 02:00 EST to 03:00 EDT.
    freeze(datetime(2026, 3, 8))
    moment = expire.at_midnight().expires_at()
    assert moment is not None
    assert wall(moment) == datetime(2026, 3, 9)
    assert moment.utcoffset() == timedelta(hours=-4)
    assert expire.at_midnight()() == 23 * HOUR

    freeze(datetime(2026, 3, 8, 12))  # 12:00 EDT: 12 hours to midnight
    assert expire.at_midnight()() == 12 * HOUR


@pytest.mark.usefixtures("new_york")
def test_at_midnight_on_a_25_hour_day(freeze: Callable[[datetime], None]) -> None:
    # 2026-11-01: New York clocks fall back from 02:00 EDT to 01:00 EST.
    freeze(datetime(2026, 11, 1))
    assert wall(expire.at_midnight().expires_at()) == datetime(2026, 11, 2)
    assert expire.at_midnight()() == 25 * HOUR


@pytest.mark.usefixtures("new_york")
def test_calendar_days_follow_the_wall_clock_across_dst(
    freeze: Callable[[datetime], None],
) -> None:
    freeze(datetime(2026, 3, 7, 12))
    assert wall(expire.from_now(days=1).expires_at()) == datetime(2026, 3, 8, 12)
    assert expire.from_now(days=1)() == 23 * HOUR
    assert wall(expire.weekly("su").expires_at()) == datetime(2026, 3, 8)
    assert wall(expire.from_today(days=2).expires_at()) == datetime(2026, 3, 9)


@pytest.mark.usefixtures("new_york")
def test_hours_are_elapsed_time_from_now_but_wall_clock_from_today(
    freeze: Callable[[datetime], None],
) -> None:
    freeze(datetime(2026, 3, 8))
    assert expire.from_now(hours=6)() == 6 * HOUR
    assert wall(expire.from_now(hours=6).expires_at()) == datetime(2026, 3, 8, 7)
    assert wall(expire.from_today(hours=6).expires_at()) == datetime(2026, 3, 8, 6)
    assert expire.normalize(timedelta(hours=24))() == 24 * HOUR


@pytest.mark.usefixtures("new_york")
def test_zero_span_in_the_repeated_hour_is_now(freeze: Callable[[datetime], None]) -> None:
    # 01:30 EST, the second 01:30 of 2026-11-01; a wall-clock round trip would give EDT.
    second = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    freeze(second)
    assert expire.from_now()() == 0.0
    assert expire.from_now(minutes=30)() == 1800.0


def test_a_wall_time_in_the_dst_gap_moves_forward(freeze: Callable[[datetime], None]) -> None:
    # 2026-03-29 02:30 does not exist in Berlin; it is read as 03:30 CEST, not an error.
    freeze(datetime(2026, 1, 29, 2, 30))
    assert wall(expire.from_now(months=2).expires_at()) == datetime(2026, 3, 29, 3, 30)


@pytest.fixture
def santiago(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    original = os.environ.get("TZ")
    monkeypatch.setenv("TZ", "America/Santiago")
    time.tzset()
    yield
    monkeypatch.setenv("TZ", original) if original else monkeypatch.delenv("TZ")
    time.tzset()


@pytest.mark.usefixtures("santiago")
def test_a_skipped_midnight_is_the_first_moment_of_the_day(
    freeze: Callable[[datetime], None],
) -> None:
    # 2026-09-06: Santiago clocks jump from 00:00 -04 straight to 01:00 -03.
    freeze(datetime(2026, 9, 5, 23, 30))
    moment = expire.at_midnight().expires_at()
    assert moment == datetime(2026, 9, 6, 4, tzinfo=UTC)
    assert wall(moment) == datetime(2026, 9, 6, 1)
    assert expire.at_midnight()() == 1800.0
    assert expire.weekly("sunday")() == 1800.0
    assert expire.monthly(6)() == 1800.0
    assert expire.at_datetime(date(2026, 9, 6))() == 1800.0


# --- session_id ---------------------------------------------------------------------


def test_session_id_is_stable_within_a_process() -> None:
    first = expire.session_id()
    assert first == expire.session_id()
    assert len(first) == 32
    int(first, 16)


def test_session_id_changes_when_the_pid_does(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = expire.session_id()
    monkeypatch.setattr(expire.os, "getpid", lambda: -1)
    child = expire.session_id()
    assert child != parent
    assert expire.session_id() == child


# --- module surface -----------------------------------------------------------------


def test_all_lists_the_public_api() -> None:
    assert set(expire.__all__) == {
        "Expiry", "after_session", "at_datetime", "at_midnight", "from_now", "from_today",
        "monthly", "never", "normalize", "now", "on_complete", "session", "session_id",
        "weekly",
    }  # fmt: skip
    assert all(hasattr(expire, name) for name in expire.__all__)


@pytest.mark.parametrize(
    "policy",
    [expire.never(), expire.session(), expire.on_complete("x"), expire.at_midnight(),
     expire.from_now(months=1, hours=2), expire.from_today(days=1),
     expire.at_datetime(date(2026, 5, 1)), expire.weekly(["mo", "th"]), expire.monthly(31)],
    ids=repr,
)  # fmt: skip
def test_policies_pickle(policy: Expiry) -> None:
    # The engine may ship task definitions to worker processes.
    now = local(2026, 3, 14, 15, 30)
    copy = pickle.loads(pickle.dumps(policy))
    assert repr(copy) == repr(policy)
    assert (copy.kind, copy.name) == (policy.kind, policy.name)
    assert copy.expires_at(now) == policy.expires_at(now)


# --- properties ---------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(instants)
def test_at_midnight_is_the_first_midnight_after_now(now: datetime) -> None:
    moment = expire.at_midnight().expires_at(now)
    assert moment is not None
    assert now < moment <= now + timedelta(hours=25)
    assert wall(moment) == datetime.combine(
        wall(now).date() + timedelta(days=1), datetime.min.time()
    )


@given(instants, st.sets(st.integers(0, 6), min_size=1))
def test_weekly_is_the_first_listed_weekday_after_today(now: datetime, indexes: set[int]) -> None:
    names = [calendar.day_name[i] for i in indexes]
    day = wall(expire.weekly(names).expires_at(now))
    today = wall(now).date()
    assert day.time() == datetime.min.time()
    assert day.weekday() in indexes
    assert today < day.date() <= today + timedelta(days=7)
    between = (today + timedelta(days=n) for n in range(1, (day.date() - today).days))
    assert all(d.weekday() not in indexes for d in between)


@given(instants, st.sets(st.integers(1, 31), min_size=1))
def test_monthly_is_the_first_listed_day_after_today(now: datetime, days: set[int]) -> None:
    day = wall(expire.monthly(days).expires_at(now)).date()
    today = wall(now).date()
    last = calendar.monthrange(day.year, day.month)[1]
    assert today < day <= today + timedelta(days=62)
    assert day.day in {min(d, last) for d in days}


@given(instants, st.integers(0, 60))
def test_from_now_months_clamp_the_day(now: datetime, months: int) -> None:
    before = wall(now)
    after = wall(expire.from_now(months=months).expires_at(now))
    assert (after.year * 12 + after.month) - (before.year * 12 + before.month) == months
    assert after.day == min(before.day, calendar.monthrange(after.year, after.month)[1])
    target = after.replace(hour=before.hour, minute=before.minute, second=before.second)
    if wall(target.astimezone()) == target:  # else it fell in a DST gap: see the test below
        assert after.time() == before.time()


def test_calling_a_policy_truncates_but_its_moment_stays_exact(
    freeze: Callable[[datetime], None],
) -> None:
    # The original's callables returned int seconds; the engine stores the exact moment.
    freeze(datetime(2026, 3, 14, 15, 30))
    policy = expire.from_now(seconds=1.5)
    assert policy() == 1 and type(policy()) is int
    assert policy.expires_at() == local(2026, 3, 14, 15, 30) + timedelta(seconds=1.5)
    assert expire.at_datetime(datetime(2026, 3, 14, 15, 29, 59, 500000))() == 0  # -0.5 s


def test_now_is_the_frozen_clock_made_local_and_aware(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2026, 3, 14, 15, 30))
    assert expire.now() == local(2026, 3, 14, 15, 30) and expire.now().tzinfo is not None


def test_weekday_names_are_trimmed() -> None:
    assert repr(expire.weekly(days=("  Monday  ", "\tfri\n"))) == (
        "weekly(days=('monday', 'friday'))")
