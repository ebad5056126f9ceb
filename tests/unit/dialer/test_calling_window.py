"""Calling windows in the recipient's local time: DST changes, midnight, restricted periods,
multi-zone numbers, unknown zones, and campaign windows that try to widen the legal hours."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers import timezone as number_timezones

from dialer_worker.calling_window import (
    CallingWindow,
    InvalidWindow,
    campaign_window,
    judge,
    parse_hours,
    recipient_zones,
)

LEGAL = parse_hours("08:00-21:00")
NEW_YORK, LONDON, DENVER, CHICAGO = (
    ZoneInfo(z) for z in ("America/New_York", "Europe/London", "America/Denver", "America/Chicago")
)
DEFAULT = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def number_zones(number: str) -> tuple[str, ...]:
    return number_timezones.time_zones_for_number(phonenumbers.parse(number))


def test_legal_hours_in_the_recipients_zone():
    window = CallingWindow(LEGAL)
    # 12:59 UTC is 07:59 in New York (EST): closed, opens at 13:00 UTC.
    verdict = judge(window, [NEW_YORK], utc(2026, 1, 15, 12, 59))
    assert not verdict.open and verdict.opens_at == utc(2026, 1, 15, 13, 0)
    verdict = judge(window, [NEW_YORK], utc(2026, 1, 15, 13, 0))
    assert verdict.open and verdict.until == utc(2026, 1, 16, 2, 0)  # 21:00 EST


@pytest.mark.parametrize(
    "zone, before_change, after_change, opens_after",
    [
        # Spring forward: 8:00 local is 13:00 UTC the day before, 12:00 UTC after.
        (NEW_YORK, utc(2026, 3, 7, 13, 0), utc(2026, 3, 8, 12, 0), utc(2026, 3, 8, 11, 30)),
        (LONDON, utc(2026, 3, 28, 8, 0), utc(2026, 3, 29, 7, 0), utc(2026, 3, 29, 6, 30)),
        # Fall back: 8:00 local is 12:00 UTC before, 13:00 UTC after.
        (NEW_YORK, utc(2026, 10, 31, 12, 0), utc(2026, 11, 1, 13, 0), utc(2026, 11, 1, 12, 30)),
        (LONDON, utc(2026, 10, 24, 7, 0), utc(2026, 10, 25, 8, 0), utc(2026, 10, 25, 7, 30)),
    ],
)
def test_daylight_saving_changes_move_the_opening_in_utc(zone, before_change, after_change, opens_after):
    window = CallingWindow(LEGAL)
    assert judge(window, [zone], before_change).open
    # Half an hour before the local 08:00 of the changed day it is still closed, in local time.
    verdict = judge(window, [zone], opens_after)
    assert not verdict.open and verdict.opens_at == after_change


def test_a_window_ending_at_midnight_closes_at_local_midnight_and_not_before():
    window = campaign_window(parse_hours("00:00-24:00"), {"openHours": {"FRIDAY": [["18:00", "24:00"]]}})
    # Friday 2026-01-16, 23:59 in New York is 04:59 UTC Saturday.
    late = judge(window, [NEW_YORK], utc(2026, 1, 17, 4, 59))
    assert late.open and late.until == utc(2026, 1, 17, 5, 0)
    # Saturday 00:00 local: closed until next Friday 18:00 (23:00 UTC).
    assert judge(window, [NEW_YORK], utc(2026, 1, 17, 5, 0)).opens_at == utc(2026, 1, 23, 23, 0)


def test_restricted_periods_close_open_hours_in_local_time():
    window = campaign_window(LEGAL, {"restrictedPeriods": [{"start": "2026-12-24T00:00", "end": "2026-12-26T00:00"}]})
    # 10:00 in London on Christmas Day: closed until 08:00 on the 26th.
    verdict = judge(window, [LONDON], utc(2026, 12, 25, 10, 0))
    assert not verdict.open and verdict.opens_at == utc(2026, 12, 26, 8, 0)
    # The afternoon of the 23rd closes at 21:00 as usual.
    assert judge(window, [LONDON], utc(2026, 12, 23, 15, 0)).until == utc(2026, 12, 23, 21, 0)


def test_a_campaign_window_wider_than_the_legal_one_is_narrowed_to_it():
    window = campaign_window(LEGAL, {"openHours": {day: [["06:00", "23:30"]] for day in ("MONDAY", "TUESDAY")}})
    # Monday 2026-01-12: 07:30 New York is closed (legal hours start at 08:00); 21:15 too.
    assert not judge(window, [NEW_YORK], utc(2026, 1, 12, 12, 30)).open
    assert not judge(window, [NEW_YORK], utc(2026, 1, 13, 2, 15)).open
    assert judge(window, [NEW_YORK], utc(2026, 1, 12, 13, 0)).open
    # A weekday missing from openHours is closed: Wednesday opens only the next Monday.
    assert judge(window, [NEW_YORK], utc(2026, 1, 14, 15, 0)).opens_at == utc(2026, 1, 19, 13, 0)


@pytest.mark.parametrize("number, count", [("+17015550100", 2), ("+447911123456", 4), ("+18005550100", 42)])
def test_a_number_with_several_zones_is_called_only_when_all_are_open(number, count):
    zones = recipient_zones(None, number_zones(number), CallingWindow(LEGAL), DEFAULT)
    assert len(zones) == count
    verdicts = {str(z): judge(CallingWindow(LEGAL), [z], utc(2026, 1, 15, 15, 0)).open for z in zones}
    together = judge(CallingWindow(LEGAL), zones, utc(2026, 1, 15, 15, 0))
    assert together.open == all(verdicts.values())
    if together.open:
        # It closes when the earliest zone reaches 21:00.
        assert together.until is not None
    else:
        assert together.opens_at is None or together.opens_at > utc(2026, 1, 15, 15, 0)


def test_plus_1_701_waits_for_mountain_time():
    zones = recipient_zones(None, number_zones("+17015550100"), CallingWindow(LEGAL), DEFAULT)
    assert {str(z) for z in zones} == {"America/Denver", "America/North_Dakota/Center"}
    # 14:30 UTC: 08:30 in North Dakota (Central) but 07:30 in Denver: closed until 15:00 UTC.
    verdict = judge(CallingWindow(LEGAL), zones, utc(2026, 1, 15, 14, 30))
    assert not verdict.open and verdict.opens_at == utc(2026, 1, 15, 15, 0)


def test_zone_resolution_order_and_unknown_zones():
    window = campaign_window(LEGAL, {"timeZone": "Europe/London"})
    us = number_zones("+14155550100")
    assert [str(z) for z in recipient_zones("Asia/Tokyo", us, window, DEFAULT)] == ["Asia/Tokyo"]
    assert [str(z) for z in recipient_zones("Not/AZone", us, window, DEFAULT)] == ["America/Los_Angeles"]
    assert [str(z) for z in recipient_zones(None, ("Etc/Unknown",), window, DEFAULT)] == ["Europe/London"]
    assert recipient_zones(None, (), CallingWindow(LEGAL), DEFAULT) == (DEFAULT,)


def test_always_open_switches_the_gate_off():
    verdict = judge(CallingWindow(parse_hours("00:00-24:00")), [NEW_YORK], utc(2026, 1, 15, 3, 0))
    assert verdict.open and verdict.until is None


@pytest.mark.parametrize(
    "config",
    [
        "9 to 5",
        {"openHours": {"MONDAY": [["09:00", "08:00"]]}},
        {"openHours": {"FUNDAY": [["09:00", "17:00"]]}},
        {"restrictedPeriods": [{"start": "2026-12-24T00:00"}]},
        {"restrictedPeriods": [{"start": "2026-12-24T00:00+00:00", "end": "2026-12-25T00:00+00:00"}]},
        {"timeZone": "Mars/Olympus_Mons"},
    ],
)
def test_a_window_that_cannot_be_read_is_refused(config):
    with pytest.raises(InvalidWindow):
        campaign_window(LEGAL, config)


@pytest.mark.parametrize("text", ["08:00", "8-21", "21:00-08:00", "08:00-24:30", "25:00-26:00"])
def test_calling_hours_that_cannot_be_read_are_refused(text):
    with pytest.raises(InvalidWindow):
        parse_hours(text)
