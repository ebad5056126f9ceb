"""When a recipient may be called: the platform's legal hours intersected with the campaign's
window, in the recipient's own time zone(s). Pure functions of an instant; no I/O, no Lambda.

Every rule is stated in the recipient's local time, so a window is judged by converting the
instant to each candidate zone and reading the local clock there. That makes daylight-saving
changes and midnight boundaries come out right without arithmetic on offsets. The next opening
is found among the instants where some rule changes (interval starts and ends, restricted
periods), checked the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MINUTES_PER_DAY = 24 * 60
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
# How far ahead to look for the next opening; a window closed longer than this (a long
# restricted period) is looked at again after one deferral hop.
SEARCH_DAYS = 14

Interval = tuple[int, int]  # minutes since local midnight, [start, end); end may be 1440


class InvalidWindow(ValueError):
    """A calling window (CALLING_HOURS or a campaign's callingWindow) that cannot be read."""


def _minutes(text: str) -> int:
    try:
        hours, minutes = (int(part) for part in text.split(":"))
    except (ValueError, AttributeError):
        raise InvalidWindow(f"not a HH:MM time: {text!r}") from None
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
        raise InvalidWindow(f"not a time of day: {text!r}")
    return hours * 60 + minutes


def parse_hours(text: str) -> Interval:
    """`"08:00-21:00"` -> (480, 1260). `"00:00-24:00"` is always open."""
    try:
        start, end = text.split("-")
    except (ValueError, AttributeError):
        raise InvalidWindow(f"expected HH:MM-HH:MM, got {text!r}") from None
    interval = (_minutes(start.strip()), _minutes(end.strip()))
    if interval[0] >= interval[1]:
        raise InvalidWindow(f"a window must end after it starts (use 00:00-24:00 for all day): {text!r}")
    return interval


def zone(name: Any) -> ZoneInfo | None:
    """The IANA zone called `name`, or None when there is no such zone."""
    if not isinstance(name, str) or not name or name == "Etc/Unknown":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@dataclass(frozen=True)
class CallingWindow:
    """The legal daily hours, narrowed by the campaign's open hours per weekday (None: every day
    the legal hours alone) and closed during restricted periods (local, naive datetimes)."""

    legal: Interval
    open_hours: dict[int, tuple[Interval, ...]] | None = None
    restricted: tuple[tuple[datetime, datetime], ...] = ()
    time_zone: ZoneInfo | None = None  # the campaign's, for recipients whose zone is unknown

    @property
    def always_open(self) -> bool:
        return self.legal == (0, MINUTES_PER_DAY) and self.open_hours is None and not self.restricted

    def intervals_on(self, day: date) -> list[Interval]:
        """The open intervals of a local calendar day, before restricted periods."""
        campaign = [(0, MINUTES_PER_DAY)] if self.open_hours is None else self.open_hours.get(day.weekday(), ())
        start, end = self.legal
        return [(max(s, start), min(e, end)) for s, e in campaign if max(s, start) < min(e, end)]

    def open_at_local(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        if not any(s <= minute < e for s, e in self.intervals_on(local.date())):
            return False
        naive = local.replace(tzinfo=None)
        return not any(start <= naive < end for start, end in self.restricted)


def campaign_window(legal: Interval, config: Any) -> CallingWindow:
    """The window for a campaign's `callingWindow` config (absent or null: the legal hours)."""
    if config is None:
        return CallingWindow(legal)
    if not isinstance(config, dict):
        raise InvalidWindow("callingWindow must be an object")
    open_hours = None
    if config.get("openHours") is not None:
        raw = config["openHours"]
        if not isinstance(raw, dict) or any(day not in WEEKDAYS for day in raw):
            raise InvalidWindow(f"openHours keys must be weekday names {WEEKDAYS}")
        open_hours = {}
        for day, spans in raw.items():
            if not isinstance(spans, list):
                raise InvalidWindow(f"openHours.{day} must be a list of [start, end] pairs")
            open_hours[WEEKDAYS.index(day)] = tuple(parse_hours(f"{s}-{e}") for s, e in spans)
    restricted = []
    for period in config.get("restrictedPeriods") or ():
        try:
            start, end = datetime.fromisoformat(period["start"]), datetime.fromisoformat(period["end"])
        except (TypeError, KeyError, ValueError):
            raise InvalidWindow(f"a restricted period needs ISO start and end: {period!r}") from None
        if start.tzinfo or end.tzinfo or start >= end:
            raise InvalidWindow(f"a restricted period is a local start before a local end: {period!r}")
        restricted.append((start, end))
    time_zone = None
    if config.get("timeZone") is not None:
        time_zone = zone(config["timeZone"])
        if time_zone is None:
            raise InvalidWindow(f"unknown time zone {config['timeZone']!r}")
    return CallingWindow(legal, open_hours, tuple(restricted), time_zone)


def recipient_zones(
    task_zone: Any, number_zones: Iterable[str], window: CallingWindow, default_zone: ZoneInfo
) -> tuple[ZoneInfo, ...]:
    """The task's `timeZone`; else the number's zones (every one must be open); else the
    campaign's zone; else the platform default. Unknown names are skipped, never guessed at."""
    explicit = zone(task_zone)
    if explicit is not None:
        return (explicit,)
    derived = tuple(z for z in (zone(name) for name in number_zones) if z is not None)
    if derived:
        return derived
    return (window.time_zone or default_zone,)


@dataclass(frozen=True)
class Verdict:
    """Open now (and until when), or closed (and when it next opens; None: not within the search)."""

    open: bool
    until: datetime | None = None  # open: the instant it closes (None: not within the search)
    opens_at: datetime | None = None  # closed: the next instant it is open in every zone
    zones: tuple[str, ...] = field(default=())


def open_everywhere(window: CallingWindow, zones: Sequence[ZoneInfo], instant: datetime) -> bool:
    return all(window.open_at_local(instant.astimezone(z)) for z in zones)


def _changes(window: CallingWindow, zones: Sequence[ZoneInfo], start: datetime, days: int) -> list[datetime]:
    """Every instant in [start, start + days] where some zone's rule may change, ascending."""
    found: set[datetime] = set()
    for z in zones:
        first = start.astimezone(z).date() - timedelta(days=1)
        for offset in range(days + 2):
            day = first + timedelta(days=offset)
            for s, e in window.intervals_on(day):
                for minute in (s, e):
                    local = datetime.combine(day, time()) + timedelta(minutes=minute)
                    # Both readings of a local time that a DST change makes twice or never.
                    found.update(local.replace(tzinfo=z, fold=fold).astimezone(UTC) for fold in (0, 1))
        for period in window.restricted:
            for local in period:
                found.update(local.replace(tzinfo=z, fold=fold).astimezone(UTC) for fold in (0, 1))
    end = start + timedelta(days=days)
    return sorted(t for t in found if start < t <= end)


def judge(window: CallingWindow, zones: Sequence[ZoneInfo], instant: datetime, days: int = SEARCH_DAYS) -> Verdict:
    """Whether `instant` (aware) is inside the window in every zone; when it closes or next opens."""
    names = tuple(str(z) for z in zones)
    if window.always_open:
        return Verdict(True, None, None, names)
    now_open = open_everywhere(window, zones, instant)
    for change in _changes(window, zones, instant, days):
        if open_everywhere(window, zones, change) != now_open:
            return Verdict(now_open, change if now_open else None, None if now_open else change, names)
    return Verdict(now_open, None, None, names)
