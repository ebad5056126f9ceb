"""The dialer function's environment: Redis, the worker, the global rate (ceiling and live value)
and the deferral queue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from dialer_worker.admission.tuning import LATE_TOLERANCE_S
from dialer_worker.calling_window import InvalidWindow, parse_hours, zone
from shared.env_contract import InvalidEnvironment, above, at_least, variable
from shared.redis_client import RedisEnv


def _hours(text: str) -> str | None:
    try:
        parse_hours(text)
    except InvalidWindow as exc:
        return str(exc)
    return None


def _zone(name: str) -> str | None:
    return None if zone(name) is not None else f"is not an IANA time zone: {name!r}"


@dataclass(frozen=True, kw_only=True)
class DialerEnv(RedisEnv):
    # Fleet-wide calls per second: every dialer together stays at or under it.
    max_cps: float = variable("MAX_CPS", check=above(0))
    # The Node.js worker's base URL; dials go to {worker_url}/dial.
    worker_url: str = variable("NODE_WORKER_URL")
    # The function's reserved concurrency: without Redis each container paces at max_cps / this.
    reserved_concurrency: int = variable("DIALER_RESERVED_CONCURRENCY", check=at_least(1))
    # How long a dial claim (never dial twice) lives in Redis.
    claim_ttl_seconds: int = variable("CLAIM_TTL_SECONDS", check=at_least(1))
    # A Redis found empty holds dialing until the ledger has restored its claims, at most this long.
    restore_hold_seconds: int = variable("RESTORE_HOLD_SECONDS", check=at_least(1))
    # After Redis fails, slots reserved there may still be dialed by their owners for up to one
    # dialer timeout: local pacing waits this long first. The stack sets the dialer's timeout.
    redis_quarantine_seconds: float = variable("REDIS_QUARANTINE_SECONDS", check=at_least(0))
    # The legal calling hours in the recipient's local time, every day; a campaign's window
    # narrows them. "00:00-24:00" switches the gate off (tests about something else).
    calling_hours: str = variable("CALLING_HOURS", check=_hours)
    # The recipient's zone when neither the task, the number nor the campaign tells it.
    default_time_zone: str = variable("DEFAULT_TIME_ZONE", check=_zone)
    # A task older than this since its first enqueue is dropped as expired (0: no limit).
    task_max_age_hours: float = variable("TASK_MAX_AGE_HOURS", check=at_least(0))
    # At most this many calls to one number in any 24 h, across campaigns (0: no limit). The
    # Redis key is a keyed hash of the number: the key comes from Secrets Manager when deployed
    # (RECIPIENT_HASH_KEY_SECRET_ARN), from RECIPIENT_HASH_KEY locally.
    recipient_daily_limit: int = variable("RECIPIENT_DAILY_LIMIT", check=at_least(0))
    recipient_hash_key_secret_arn: str | None = variable("RECIPIENT_HASH_KEY_SECRET_ARN", default=None)
    recipient_hash_key: str | None = variable("RECIPIENT_HASH_KEY", default=None)
    # Live calls: at most this many at once across the fleet (0: no fleet cap; the stack
    # parameter MaxConcurrentCalls); a campaign's own cap is its config's maxConcurrentCalls. A
    # call stops counting after MAX_CALL_SECONDS even when its call event never comes.
    max_concurrent_calls: int = variable("MAX_CONCURRENT_CALLS", check=at_least(0))
    max_call_seconds: int = variable("MAX_CALL_SECONDS", check=at_least(1))
    # Where tasks that must wait are re-sent with a delay; unset (tests), they come back as
    # batch item failures.
    defer_queue_url: str | None = variable("DEFER_QUEUE_URL", default=None)
    # Where the live MAX_CPS is (runtime control, dialer_worker/live_rate.py): an SSM parameter
    # name, or "redis:<name>" for the key "{<prefix>}:<name>" in this Redis (the local pipeline).
    # The dialer paces at min(live, max_cps), reading it at most once per 10 s; 0 stops dialing.
    # Unset: MAX_CPS alone.
    max_cps_parameter_name: str | None = variable("MAX_CPS_PARAMETER_NAME", default=None)
    # The call ledger's records queue: a `dialed` record per call the worker took, a `dropped`
    # one per drop, acknowledged before the item is reported done. None: no records (tests).
    call_records_queue_url: str | None = variable("CALL_RECORDS_QUEUE_URL", default=None)
    # How late after its slot a call may still leave; later, it is deferred `late` so that no
    # rolling second is crowded. The stack never sets it: the default is what the pacing's slack
    # covers (admission.tuning). LATE_CHECK_OFF below is its switch-off for tests.
    late_tolerance_s: float = variable("LATE_TOLERANCE_SECONDS", default=LATE_TOLERANCE_S, check=at_least(0))
    # Set by the Lambda runtime, never by the stack: the function's memory, whose CPU share sets
    # how far apart one container's calls must be (admission.tuning.dial_spacing_us). None (the
    # local runner): a full core.
    lambda_memory_mb: int | None = variable("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", default=None, check=at_least(128))

    def __post_init__(self) -> None:
        if self.recipient_daily_limit and not (self.recipient_hash_key or self.recipient_hash_key_secret_arn):
            raise InvalidEnvironment(
                "DialerEnv: RECIPIENT_DAILY_LIMIT needs RECIPIENT_HASH_KEY_SECRET_ARN (or RECIPIENT_HASH_KEY locally)"
            )

    @property
    def degraded_cps(self) -> float:
        """Per-container rate without Redis: the fleet together stays under MAX_CPS."""
        return self.max_cps / self.reserved_concurrency


# The documented switch-off of each admission gate, by DialerEnv field, for runs about something
# else (the benchmarks, the tests of pacing and failures): every task is inside its calling hours,
# none expires, no recipient limit, no fleet cap on live calls. A campaign's own caps still apply.
GATES_OFF: Mapping[str, str | int] = MappingProxyType(
    {
        "calling_hours": "00:00-24:00",
        "task_max_age_hours": 0,
        "recipient_daily_limit": 0,
        "max_concurrent_calls": 0,
    }
)

# The late check's switch-off, for tests that hold a batch to exactly the calls it sent or a cap to
# being reached: a loaded machine makes any call late now and then. A minute is never reached in a
# test. Not in GATES_OFF: the benchmarks and the pacing tests count late calls as such.
LATE_CHECK_OFF: Mapping[str, float] = MappingProxyType({"late_tolerance_s": 60.0})
