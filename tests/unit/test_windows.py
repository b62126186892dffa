"""Window arithmetic with an injected clock: month ends, nth weekdays, DST, freezes."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from opsfix.windows import Freeze, Policy, Window, WindowValueError
from opsfix.windows.model import instant_of

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def local(tz, *args):
    return datetime(*args, tzinfo=tz)


def starts(window, since, n):
    return [s for s, _ in zip(window.starts(since), range(n), strict=False)]


MONTHLY = Window("0 2 * * 2#1", 2 * H, "UTC", "monthly")


# --- the seeds' window: first Tuesday of the month, 02:00 UTC, two hours -------------


def test_first_tuesday_starts():
    assert starts(MONTHLY, utc(2024, 1, 1), 4) == [
        utc(2024, 1, 2, 2),
        utc(2024, 2, 6, 2),
        utc(2024, 3, 5, 2),
        utc(2024, 4, 2, 2),
    ]


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        (utc(2024, 2, 6, 1, 59, 59), False),
        (utc(2024, 2, 6, 2, 0), True),
        (utc(2024, 2, 6, 3, 59, 59), True),
        (utc(2024, 2, 6, 4, 0), False),  # the end is exclusive
        (utc(2024, 2, 13, 2, 30), False),  # the second Tuesday
    ],
)
def test_first_tuesday_gate(now, allowed):
    verdict = Policy((MONTHLY,)).allows_disruption(now)
    assert verdict.allowed is allowed and bool(verdict) is allowed


def test_verdict_inside_names_the_window_and_its_end():
    verdict = Policy((MONTHLY,)).allows_disruption(utc(2024, 2, 6, 3))
    assert verdict.opening is not None and verdict.opening.window is MONTHLY
    assert verdict.opening.end == utc(2024, 2, 6, 4)
    assert "'monthly'" in verdict.reason and "04:00" in verdict.reason
    assert verdict.next_opening is None


def test_verdict_outside_says_when_the_next_window_opens():
    verdict = Policy((MONTHLY,)).allows_disruption(utc(2024, 2, 6, 4))
    assert not verdict.allowed and verdict.opening is None
    assert verdict.next_opening == utc(2024, 3, 5, 2)
    assert "outside every maintenance window" in verdict.reason
    assert "Tue 2024-03-05 02:00 UTC" in verdict.reason


def test_next_opening_is_now_inside_a_window():
    policy = Policy((MONTHLY,))
    assert policy.next_opening(utc(2024, 2, 6, 3)) == utc(2024, 2, 6, 3)
    assert policy.next_opening(utc(2024, 2, 7)) == utc(2024, 3, 5, 2)


def test_fifth_tuesday_only_in_months_that_have_one():
    window = Window("0 2 * * 2#5", H)
    assert starts(window, utc(2024, 1, 1), 4) == [
        utc(2024, 1, 30, 2),
        utc(2024, 4, 30, 2),
        utc(2024, 7, 30, 2),
        utc(2024, 10, 29, 2),
    ]


# --- month ends, February, leap years ------------------------------------------------


def test_the_31st_skips_short_months_and_runs_across_the_month_end():
    window = Window("0 22 31 * *", 4 * H)
    assert starts(window, utc(2024, 1, 1), 3) == [
        utc(2024, 1, 31, 22),
        utc(2024, 3, 31, 22),
        utc(2024, 5, 31, 22),
    ]
    policy = Policy((window,))
    assert policy.allows_disruption(utc(2024, 2, 1, 1, 59)).allowed  # open across Jan/Feb
    assert not policy.allows_disruption(utc(2024, 2, 1, 2)).allowed
    assert policy.next_opening(utc(2024, 2, 1, 2)) == utc(2024, 3, 31, 22)


def test_year_end_window_runs_into_the_new_year():
    window = Window("0 23 31 12 *", 3 * H)
    assert Policy((window,)).allows_disruption(utc(2025, 1, 1, 1, 30)).allowed


def test_last_day_of_month_in_leap_and_common_years():
    window = Window("0 2 L * *", H)
    assert starts(window, utc(2023, 2, 1), 1) == [utc(2023, 2, 28, 2)]
    assert starts(window, utc(2024, 2, 1), 2) == [utc(2024, 2, 29, 2), utc(2024, 3, 31, 2)]


def test_29_february_waits_for_the_next_leap_year():
    window = Window("0 2 29 2 *", 2 * H)
    policy = Policy((window,))
    assert policy.next_opening(utc(2024, 3, 1)) == utc(2028, 2, 29, 2)
    assert starts(window, utc(2099, 1, 1), 1) == [utc(2104, 2, 29, 2)]  # 2100 is no leap year


def test_month_end_window_in_a_local_zone():
    window = Window("30 23 L * *", H, "Europe/Berlin")
    # 29 Feb 2024, 23:30 CET is 22:30 UTC; open until 00:30 CET on 1 March
    assert starts(window, utc(2024, 2, 1), 1) == [utc(2024, 2, 29, 22, 30)]
    opening = Policy((window,)).opening_at(local(BERLIN, 2024, 3, 1, 0, 15))
    assert opening is not None and opening.local_end == local(BERLIN, 2024, 3, 1, 0, 30)


# --- across midnight ---------------------------------------------------------------


def test_window_open_across_midnight_in_a_local_zone():
    window = Window("0 23 * * *", 3 * H, "Europe/Berlin")
    policy = Policy((window,))
    assert policy.allows_disruption(local(BERLIN, 2024, 6, 2, 1, 30)).allowed
    assert not policy.allows_disruption(local(BERLIN, 2024, 6, 2, 2, 0)).allowed
    assert policy.next_opening(local(BERLIN, 2024, 6, 2, 2)) == utc(2024, 6, 2, 21)


# --- DST: Europe/Berlin (clocks 02:00 -> 03:00 on 31 Mar 2024, 03:00 -> 02:00 on 27 Oct) --


def test_berlin_spring_forward_start_opens_when_the_clocks_jump():
    window = Window("30 2 * * *", 2 * H, "Europe/Berlin")
    assert starts(window, utc(2024, 3, 30), 3) == [
        utc(2024, 3, 30, 1, 30),  # 02:30 CET
        utc(2024, 3, 31, 1, 0),  # 02:30 never happens: opens at 03:00 CEST
        utc(2024, 4, 1, 0, 30),  # 02:30 CEST
    ]
    policy = Policy((window,))
    assert not policy.allows_disruption(utc(2024, 3, 31, 0, 59)).allowed
    opening = policy.opening_at(utc(2024, 3, 31, 1, 0))
    assert opening is not None
    assert opening.local_start == local(BERLIN, 2024, 3, 31, 3, 0)
    assert opening.end - opening.start == 2 * H  # elapsed time: until 05:00 CEST


def test_berlin_fall_back_start_in_the_repeated_hour_happens_once():
    window = Window("30 2 * * *", 2 * H, "Europe/Berlin")
    day = Policy((window,)).windows_between(utc(2024, 10, 26, 22), utc(2024, 10, 27, 22))
    assert [(o.start, o.end) for o in day] == [(utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 2, 30))]
    # the first 02:30 (CEST); it closes at 03:30 CET, two hours later
    assert day[0].local_start.utcoffset() == 2 * H
    assert day[0].local_end == local(BERLIN, 2024, 10, 27, 3, 30)


def test_duration_across_fall_back_is_elapsed_time():
    window = Window("0 0 * * *", 4 * H, "Europe/Berlin")
    opening = Policy((window,)).opening_at(local(BERLIN, 2024, 10, 27, 1))
    assert opening is not None
    assert opening.start == utc(2024, 10, 26, 22)
    assert opening.local_end == local(BERLIN, 2024, 10, 27, 3, 0)  # 03:00 CET, not 04:00


def test_hourly_starts_across_fall_back():
    window = Window("0 * * * *", 30 * timedelta(minutes=1), "Europe/Berlin")
    got = starts(window, utc(2024, 10, 26, 23), 4)
    # 01:00 CEST, 02:00 CEST, (02:00 CET again: not a second start), 03:00 CET, 04:00 CET
    assert got == [utc(2024, 10, 26, 23), utc(2024, 10, 27, 0), utc(2024, 10, 27, 2),
                   utc(2024, 10, 27, 3)]  # fmt: skip
    assert not Policy((window,)).allows_disruption(utc(2024, 10, 27, 1, 10)).allowed


def test_last_start_near_the_repeated_hour():
    window = Window("50 2 * * *", H, "Europe/Berlin")
    # 02:40 CET (second pass): the latest start is 02:50 CEST, 50 minutes earlier
    assert window.last_start(utc(2024, 10, 27, 1, 40)) == utc(2024, 10, 27, 0, 50)
    assert Policy((window,)).allows_disruption(utc(2024, 10, 27, 1, 40)).allowed


# --- DST: America/New_York (02:00 -> 03:00 on 10 Mar 2024, 02:00 -> 01:00 on 3 Nov) ---


def test_new_york_spring_forward():
    window = Window("30 2 * * *", H, "America/New_York")
    assert starts(window, utc(2024, 3, 9, 12), 2) == [
        utc(2024, 3, 10, 7, 0),  # 03:00 EDT, when the clocks jump
        utc(2024, 3, 11, 6, 30),  # 02:30 EDT
    ]


def test_new_york_fall_back_first_of_the_two_1_30s():
    window = Window("30 1 * * *", H, "America/New_York")
    [opening] = Policy((window,)).windows_between(utc(2024, 11, 3, 4), utc(2024, 11, 4, 4))
    assert opening.start == utc(2024, 11, 3, 5, 30)  # 01:30 EDT
    assert opening.local_end == local(NEW_YORK, 2024, 11, 3, 1, 30).replace(fold=1)
    assert opening.local_end.utcoffset() == -5 * H  # 01:30 EST, an hour later


def test_instant_of_gap_and_fold():
    assert instant_of(datetime(2024, 3, 31, 2, 30), BERLIN) == utc(2024, 3, 31, 1)
    assert instant_of(datetime(2024, 10, 27, 2, 30), BERLIN) == utc(2024, 10, 27, 0, 30)
    assert instant_of(datetime(2024, 7, 1, 12), BERLIN) == utc(2024, 7, 1, 10)


# --- freezes -----------------------------------------------------------------------


HOLIDAYS = Freeze.days(date(2024, 12, 20), date(2025, 1, 7), "year-end holidays", "Europe/Berlin")


def test_freeze_days_are_inclusive_in_their_zone():
    assert HOLIDAYS.start == utc(2024, 12, 19, 23)
    assert HOLIDAYS.end == utc(2025, 1, 7, 23)
    assert HOLIDAYS.describe() == "2024-12-20 .. 2025-01-07 (Europe/Berlin)"


def test_freeze_blocks_a_window_and_the_next_opening_skips_it():
    policy = Policy((MONTHLY,), (HOLIDAYS,))
    verdict = policy.allows_disruption(utc(2025, 1, 7, 2, 30))
    assert not verdict.allowed
    assert verdict.freeze == HOLIDAYS and verdict.opening is not None  # in a window, but frozen
    assert "year-end holidays" in verdict.reason
    assert verdict.next_opening == utc(2025, 2, 4, 2)
    assert policy.next_opening(utc(2024, 12, 10)) == utc(2025, 2, 4, 2)


def test_windows_between_marks_frozen_openings():
    openings = Policy((MONTHLY,), (HOLIDAYS,)).windows_between(utc(2024, 12, 1), utc(2025, 3, 1))
    assert [(o.start.date(), o.is_frozen) for o in openings] == [
        (date(2024, 12, 3), False),
        (date(2025, 1, 7), True),
        (date(2025, 2, 4), False),
    ]
    assert openings[1].freezes == (HOLIDAYS,)


def test_freeze_ending_inside_a_window_opens_the_rest_of_it():
    frz = Freeze(utc(2024, 2, 1), utc(2024, 2, 6, 3), "release")
    policy = Policy((MONTHLY,), (frz,))
    assert not policy.allows_disruption(utc(2024, 2, 6, 2, 30)).allowed
    assert policy.allows_disruption(utc(2024, 2, 6, 3)).allowed
    assert policy.next_opening(utc(2024, 2, 6, 1)) == utc(2024, 2, 6, 3)
    [opening] = policy.windows_between(utc(2024, 2, 6), utc(2024, 2, 7))
    assert opening.free_spans() == [(utc(2024, 2, 6, 3), utc(2024, 2, 6, 4))]


def test_freeze_starting_inside_a_window_closes_it_early():
    frz = Freeze(utc(2024, 2, 6, 3), utc(2024, 2, 10), "incident")
    policy = Policy((MONTHLY,), (frz,))
    assert policy.allows_disruption(utc(2024, 2, 6, 2, 59)).allowed
    assert policy.allows_disruption(utc(2024, 2, 6, 3)).freeze == frz


def test_back_to_back_freezes_are_skipped_together():
    first = Freeze(utc(2024, 3, 1), utc(2024, 3, 10), "a")
    second = Freeze(utc(2024, 3, 9), utc(2024, 4, 5), "b")
    policy = Policy((MONTHLY,), (first, second))
    assert policy.next_opening(utc(2024, 3, 2)) == utc(2024, 5, 7, 2)


def test_freezes_without_windows_gate_only_the_freeze():
    policy = Policy((), (HOLIDAYS,))
    assert policy.allows_disruption(utc(2024, 12, 1)).allowed
    verdict = policy.allows_disruption(utc(2024, 12, 24))
    assert not verdict.allowed and verdict.next_opening == HOLIDAYS.end


def test_no_opening_within_the_horizon():
    window = Window("0 2 1 1 *", H)
    frz = Freeze.days(date(2024, 1, 1), date(2031, 12, 31), "moratorium")
    policy = Policy((window,), (frz,))
    verdict = policy.allows_disruption(utc(2024, 6, 1))
    assert verdict.next_opening is None and "no window opens within 5 years" in verdict.reason


# --- several windows, listings ------------------------------------------------------


def test_overlapping_windows_report_the_one_that_closes_last():
    short = Window("0 2 * * *", H, name="short")
    long = Window("30 1 * * *", 3 * H, name="long")
    opening = Policy((short, long)).opening_at(utc(2024, 5, 5, 2, 15))
    assert opening is not None and opening.window.name == "long"


def test_windows_between_includes_one_already_open_and_sorts_across_windows():
    nightly = Window("0 23 * * *", 3 * H, name="nightly")
    policy = Policy((MONTHLY, nightly))
    got = policy.windows_between(utc(2024, 2, 6, 1), utc(2024, 2, 7))
    assert [(o.window.label, o.start) for o in got] == [
        ("nightly", utc(2024, 2, 5, 23)),
        ("monthly", utc(2024, 2, 6, 2)),
        ("nightly", utc(2024, 2, 6, 23)),
    ]


def test_upcoming_counts_across_windows():
    nightly = Window("0 23 * * *", H, name="nightly")
    got = Policy((MONTHLY, nightly)).upcoming(utc(2024, 2, 5, 12), 3)
    assert [o.window.label for o in got] == ["nightly", "monthly", "nightly"]


# --- validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "field", "words"),
    [
        ("61 * * * *", "cron", "out of range"),
        ("0 2 * *", "cron", "has 4 fields; expected 5"),
        ("0 0 2 * * *", "cron", "has 6 fields"),
        ("0 0 31 2 *", "cron", "never matches"),
        ("0 2 15 * 2#1", "cron", "both a day of month and an nth weekday"),
        ("@reboot", "cron", "has 1 field;"),
    ],
)
def test_bad_cron_expressions(cron, field, words):
    with pytest.raises(WindowValueError) as caught:
        Window(cron, H)
    assert caught.value.field == field and words in caught.value.message


def test_aliases_are_spelled_out():
    assert Window("@weekly", H).cron == "0 0 * * 0"


def test_unknown_zone_suggests_a_spelling():
    with pytest.raises(WindowValueError) as caught:
        Window("0 2 * * *", H, "Europe/Berln")
    assert caught.value.field == "timezone" and "'Europe/Berlin'" in caught.value.message


@pytest.mark.parametrize("duration", [timedelta(0), timedelta(seconds=30), timedelta(days=32)])
def test_duration_out_of_range(duration):
    with pytest.raises(WindowValueError, match="out of range"):
        Window("0 2 * * *", duration)


def test_naive_clock_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        Policy((MONTHLY,)).allows_disruption(datetime(2024, 1, 1))


def test_freeze_must_not_end_before_it_starts():
    with pytest.raises(WindowValueError, match="ends before it starts"):
        Freeze.days(date(2024, 1, 2), date(2024, 1, 1), "x")


def test_policies_compare_by_content_for_grouping():
    a = Policy((Window("0 2 * * 2#1", 2 * H, "UTC", "monthly"),), (HOLIDAYS,))
    b = Policy((Window("0  2 * * 2#1", 2 * H, "UTC", "monthly"),), (HOLIDAYS,))
    assert a == b and hash(a) == hash(b) and a != Policy((MONTHLY,))
