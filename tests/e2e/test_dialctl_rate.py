"""The operator turns the live MAX_CPS from 20 to 5 with `dialctl rate set` while the local pipeline
dials a backlog; the calls arriving at the worker stand-in follow without a restart or a deploy."""

from __future__ import annotations

import time
import uuid

import pytest

from dialctl.cli import main
from dialctl.local_up import LocalService
from local_pipeline import database


@pytest.fixture
def service(tmp_path, postgres_server, redis_server, monkeypatch):
    monkeypatch.setenv("REDIS_HOST", redis_server.host)
    monkeypatch.setenv("REDIS_PORT", str(redis_server.port))
    dbname = f"dialctl_e2e_{uuid.uuid4().hex[:8]}"
    local = LocalService(tmp_path / "state.json", max_cps=20, dbname=dbname, batching_window_seconds=0.5)
    local.start()
    yield local
    local.stop()
    database.drop(postgres_server, dbname)


def per_second(times, start, end):
    buckets = [0] * int(end - start)
    for t in times:
        if start <= t < end:
            buckets[int(t - start)] += 1
    return buckets


@pytest.mark.slow
def test_calls_per_second_follow_a_rate_change_within_ten_seconds(service, tmp_path, capsys):
    where = ["--local", "--state-file", str(service.state_file)]
    path = tmp_path / "backlog.csv"
    path.write_text(
        "campaignId,contactId,phoneNumber\n" + "".join(f"spring-sale,e{i},+1415555{i:04d}\n" for i in range(700))
    )
    assert main(["enqueue", str(path), *where, "--processes", "1"]) == 0
    time.sleep(8)  # dialing at 20 calls/s
    assert main(["rate", "set", "5", *where]) == 0
    changed = time.monotonic()
    time.sleep(16)
    times = [c.at_monotonic for c in service.run.worker.calls]
    before = per_second(times, changed - 4, changed)
    after = per_second(times, changed, changed + 16)
    # The first second from which no later second holds more than 5 calls (+1 for a slot on the edge).
    follow = next(s for s in range(len(after)) if all(n <= 6 for n in after[s:]))
    print(f"\ncalls/s before: {before}\ncalls/s after:  {after}\nfollowed within {follow} s")
    assert min(before) >= 17  # it was dialing at 20 (the pacing's 2.5% slack)
    # One cached read per 10 s, plus the slots the dialers had already reserved at 20 calls/s.
    assert follow <= 10
    assert 4 <= sum(after[-4:]) / 4 <= 5.5
