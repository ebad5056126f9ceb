"""Dial-time compliance judged in Python around the admission script: expiry, a dialable number,
the calling window in the recipient's time zone(s), and a retry's notBefore. No I/O, no Lambda types."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dialer_worker.calling_window import CallingWindow, Interval, InvalidWindow, campaign_window, judge, recipient_zones
from shared.dial_task import EnrichedTask
from shared.drops import DeferReason, DropReason


@dataclass(frozen=True)
class Admit:
    """Callable now; `until` is when the window closes (None: not within the search), `zones`
    the recipient's zones it was judged in (the ledger keeps them)."""

    until: datetime | None
    zones: tuple[str, ...] = ()


@dataclass(frozen=True)
class Wait:
    """Not yet: `opens_at` is when it may be called (None: not within the search), `reason` why."""

    opens_at: datetime | None
    reason: DeferReason = DeferReason.OUTSIDE_WINDOW


@functools.lru_cache(maxsize=4096)
def number_facts(phone_number: str) -> tuple[bool, tuple[str, ...]]:
    """(a valid, dialable number?, its candidate IANA zones) from libphonenumber's metadata."""
    import phonenumbers  # imported on first use: most of its cost is the metadata it loads
    from phonenumbers import timezone

    try:
        parsed = phonenumbers.parse(phone_number)
    except phonenumbers.NumberParseException:
        return False, ()
    # The number's type once: valid means a known type (what is_valid_number tests), and the type
    # says where its zones come from. is_valid_number and time_zones_for_number would each work it
    # out: once is about a third less of this function's CPU for a US number (the same answers:
    # tests/unit/dialer/test_number_facts.py).
    kind = phonenumbers.number_type(parsed)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        return False, ()
    if parsed.country_code is not None and phonenumbers.is_number_type_geographical(kind, parsed.country_code):
        return True, tuple(timezone.time_zones_for_geographical_number(parsed))
    # Non-geographical (toll-free, and mobiles where they are not tied to a place): the
    # country-level zones, and the type is worked out once more.
    return True, tuple(timezone.time_zones_for_number(parsed))


class Compliance:
    def __init__(self, *, legal_hours: Interval, default_zone, max_age: timedelta | None) -> None:
        self.legal_hours = legal_hours
        self.default_zone = default_zone
        self.max_age = max_age

    def expired(self, task: EnrichedTask, now: datetime) -> bool:
        if task.task.expires_at is not None and task.task.expires_at <= now:
            return True
        if self.max_age is None or task.first_sent_ms is None:
            return False
        return now - datetime.fromtimestamp(task.first_sent_ms / 1000, UTC) >= self.max_age

    def window(self, task: EnrichedTask) -> CallingWindow:
        return campaign_window(self.legal_hours, task.config.raw.get("callingWindow"))

    def screen(self, task: EnrichedTask, now: datetime) -> Admit | Wait | DropReason:
        """Drop (expired, not a dialable number, an unreadable campaign window), wait for a
        retry's notBefore or the window, or admit until it closes. A retry is judged as any task
        once its notBefore has come: the window, expiry and the rest apply then."""
        if self.expired(task, now):
            return DropReason.EXPIRED
        valid, zones = number_facts(task.phone_number)
        if not valid:
            return DropReason.INVALID_PHONE_NUMBER
        try:
            window = self.window(task)
        except InvalidWindow:
            return DropReason.CAMPAIGN_MISCONFIGURED
        not_before = task.task.not_before
        if not_before is not None and not_before > now:
            return Wait(not_before, DeferReason.NOT_BEFORE)
        verdict = judge(window, recipient_zones(task.task.time_zone, zones, window, self.default_zone), now)
        return Admit(verdict.until, verdict.zones) if verdict.open else Wait(verdict.opens_at)

    def next_opening(self, task: EnrichedTask, instant: datetime) -> datetime | None:
        """When a task whose slot fell after the window closed may be called next."""
        _, zones = number_facts(task.phone_number)
        window = self.window(task)
        verdict = judge(window, recipient_zones(task.task.time_zone, zones, window, self.default_zone), instant)
        return instant if verdict.open else verdict.opens_at
