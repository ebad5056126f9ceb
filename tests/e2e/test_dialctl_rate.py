"""The operator turns the live MAX_CPS from 20 to 5 with `dialctl rate set` while the local pipeline
dials a backlog; the dialers follow without a restart or a deploy.

Judged on what the system did, never on how fast a shared machine managed to dial: the key dialctl
wrote, the rate each batch's reservation was computed at (its report's effective_cps), and an upper
bound on the calls the worker accepted once the dialers had followed.
"""

from __future__ import annotations

import time

import pytest
from support.arrivals import most_per_second
from support.local_service import local_service

from dialctl.cli import main

NEW_RATE = 5
# Long enough that a dialer still at the old rate (120 calls) is far from the bound.
WINDOW_S = 6


@pytest.fixture
def service(tmp_path, postgres_server, redis_server, monkeypatch):
    with local_service(tmp_path, postgres_server, redis_server, monkeypatch, max_cps=20,
                       batching_window_seconds=0.5) as running:  # fmt: skip
        yield running


def wait_for(condition, seconds, what):
    """Polls `condition` until it holds; `seconds` is a generous bound, not a measurement."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {seconds} s")
        time.sleep(0.2)


@pytest.mark.slow
def test_the_dialers_follow_a_rate_change_without_a_restart(service, tmp_path, capsys):
    where = ["--local", "--state-file", str(service.state_file)]
    path = tmp_path / "backlog.csv"
    path.write_text(
        "campaignId,contactId,phoneNumber\n" + "".join(f"spring-sale,e{i},+1415555{i:04d}\n" for i in range(500))
    )
    assert main(["enqueue", str(path), *where, "--processes", "1"]) == 0
    computed = service.run.functions.tally.effective_cps  # each dialed batch's rate, in report order
    worker = service.run.worker
    wait_for(lambda: len(computed) >= 3 and worker.accepted(), 60, "no batch was dialed")
    assert set(computed) == {20.0}, computed  # the ceiling, the live key's first value

    assert main(["rate", "set", str(NEW_RATE), *where]) == 0
    assert main(["rate", "show", *where, "--json"]) == 0
    assert f'"live": {NEW_RATE}' in capsys.readouterr().out
    at_change = len(computed)
    # A warm dialer reads the key once per 10 s (its cache); then every batch reserves at the new rate.
    wait_for(lambda: NEW_RATE in computed[at_change:], 60, f"no batch was reserved at {NEW_RATE} calls/s")
    # Batches reserved at 20 before the key was read still finish at their slots, and report
    # then (reports come at a batch's end, not in the order of reservation).
    time.sleep(4)
    start, from_report = time.monotonic(), len(computed)
    time.sleep(WINDOW_S)
    during = computed[from_report:]
    in_window = [c for c in worker.accepted() if start <= c.at_monotonic < start + WINDOW_S]
    print(f"\nrates computed before: {computed[:at_change]}\nduring: {during}\n{len(in_window)} calls in {WINDOW_S} s")
    assert during and set(during) == {float(NEW_RATE)}, during  # never back up to the old rate
    # Slots 205 ms apart (5 a second with the pacing's slack), each arriving a little late.
    assert len(in_window) <= most_per_second(NEW_RATE, window_s=WINDOW_S)
