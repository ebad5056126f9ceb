"""The live MAX_CPS reader (runtime control) and what the Dispatcher does with it: min(live,
ceiling), one read per 10 s, the kill switch. Fakes only: no SSM, no Redis."""

from __future__ import annotations

import pytest
from support.env import dialer_env
from support.fakes import FakeClock, FakeDeferrer, FakePacer, FakeWorker
from support.items import item

from dialer_worker.dispatch import STOPPED_DEFER_MS, Dispatcher
from dialer_worker.live_rate import LiveRate, redis_key


class FakeSsm:
    """get_parameter over a dict; counts calls; `fail` raises as a throttled or unreachable SSM."""

    class exceptions:
        class ParameterNotFound(Exception):
            pass

    def __init__(self, values: dict) -> None:
        self.values = values
        self.calls = 0
        self.fail = False

    def get_parameter(self, Name):
        self.calls += 1
        if self.fail:
            raise RuntimeError("ThrottlingException (fake)")
        if Name not in self.values:
            raise self.exceptions.ParameterNotFound(Name)
        return {"Parameter": {"Name": Name, "Value": self.values[Name]}}


class FakeRedis:
    def __init__(self, values: dict) -> None:
        self.values = values

    def get(self, key):
        value = self.values.get(key)
        return None if value is None else str(value).encode()


def test_reads_at_most_once_per_ten_seconds_and_picks_a_change_up_within_ten():
    clock, ssm = FakeClock(), FakeSsm({"/p": "20"})
    rate = LiveRate.from_ssm(ssm, "/p", ceiling=50, clock=clock)
    assert rate.current() == 20
    ssm.values["/p"] = "5"
    for _ in range(102):  # 10.1 s of batches
        clock.sleep(0.099)
        rate.current()
    assert ssm.calls == 2 and rate.current() == 5  # the read due at 10 s saw the change


def test_the_ceiling_bounds_the_live_value_and_zero_is_kept():
    clock = FakeClock()
    assert LiveRate.from_ssm(FakeSsm({"/p": "80"}), "/p", ceiling=50, clock=clock).current() == 50
    assert LiveRate.from_ssm(FakeSsm({"/p": "0"}), "/p", ceiling=50, clock=clock).current() == 0


def test_a_missing_parameter_means_the_ceiling():
    assert LiveRate.from_ssm(FakeSsm({}), "/p", ceiling=50, clock=FakeClock()).current() == 50


@pytest.mark.parametrize("bad", ["-1", "fast", "nan", ""])
def test_a_failed_read_or_a_malformed_value_keeps_the_last_good_value(bad):
    clock, ssm = FakeClock(), FakeSsm({"/p": "7"})
    rate = LiveRate.from_ssm(ssm, "/p", ceiling=50, clock=clock)
    assert rate.current() == 7
    ssm.values["/p"] = bad
    clock.sleep(10)
    assert rate.current() == 7 and rate.last_error
    ssm.fail = True
    clock.sleep(10)
    assert rate.current() == 7 and "Throttling" in rate.last_error
    assert ssm.calls == 3


def test_a_failed_first_read_paces_at_the_ceiling():
    ssm = FakeSsm({"/p": "5"})
    ssm.fail = True
    assert LiveRate.from_ssm(ssm, "/p", ceiling=50, clock=FakeClock()).current() == 50


def test_the_local_key_lives_under_the_dialers_hash_tag():
    key = redis_key("local-abc")
    assert key == "{local-abc}:live_max_cps"
    assert LiveRate.from_redis(FakeRedis({key: 3}), key, ceiling=20, clock=FakeClock()).current() == 3
    assert LiveRate.from_redis(FakeRedis({}), key, ceiling=20, clock=FakeClock()).current() == 20


ENV = dialer_env()


class RecordingPacer(FakePacer):
    def __init__(self) -> None:
        super().__init__()
        self.max_cps_seen: list[float] = []

    def reserve(self, tasks, *, max_cps, **kwargs):
        self.max_cps_seen.append(max_cps)
        return super().reserve(tasks, max_cps=max_cps, **kwargs)


def dispatcher_with(live: dict):
    clock = FakeClock()
    pacer, worker, deferrer = RecordingPacer(), FakeWorker(), FakeDeferrer()
    live_rate = LiveRate.from_ssm(FakeSsm(live), "/p", ceiling=ENV.max_cps, clock=clock)
    dispatcher = Dispatcher(
        config=ENV, pacer=pacer, worker=worker, deferrer=deferrer,
        live_rate=live_rate, clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    return dispatcher, pacer, worker, deferrer


def test_the_dialer_paces_at_the_live_value_under_the_ceiling():
    dispatcher, pacer, worker, _ = dispatcher_with({"/p": "12"})
    report = dispatcher.run([item(i) for i in range(3)], lambda: 15_000)
    assert pacer.max_cps_seen == [12] and report.counts["DialsSent"] == 3


def test_the_kill_switch_defers_every_task_without_a_claim_or_a_dial():
    dispatcher, pacer, worker, deferrer = dispatcher_with({"/p": "0"})
    report = dispatcher.run([item(i) for i in range(4)], lambda: 15_000)
    assert pacer.reserved == [] and worker.commands == [] and pacer.finished == []
    assert [wait for _, wait in deferrer.deferred] == [STOPPED_DEFER_MS] * 4
    assert report.counts["Deferred"] == 4 and report.failures == [] and report.effective_cps == 0


def test_without_a_parameter_the_ceiling_alone_applies():
    pacer = RecordingPacer()
    dispatcher = Dispatcher(
        config=ENV, pacer=pacer, worker=FakeWorker(), deferrer=FakeDeferrer(),
        clock=FakeClock(), sleep=lambda s: None,
    )  # fmt: skip
    dispatcher.run([item(0)], lambda: 15_000)
    assert pacer.max_cps_seen == [50]


def test_a_caller_waits_for_the_first_read_in_flight_instead_of_taking_the_ceiling():
    """Several threads share one dispatcher locally: none may dial at the ceiling while another is
    still fetching a kill switch."""
    import threading

    fetching, release = threading.Event(), threading.Event()

    def slow_fetch():
        fetching.set()
        release.wait(5)
        return "0"

    live = LiveRate(slow_fetch, ceiling=20)
    seen = []
    first = threading.Thread(target=lambda: seen.append(live.current()))
    first.start()
    assert fetching.wait(5)
    second = threading.Thread(target=lambda: seen.append(live.current()))
    second.start()
    release.set()
    first.join(5)
    second.join(5)
    assert seen == [0, 0]
