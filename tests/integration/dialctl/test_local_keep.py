"""`dialctl local up --keep`: the local queues' messages outlive a restart (written beside the
state file when the service stops, sent again when the next one starts)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from support.services import purge_redis_keys

from dialctl.cli import main
from dialctl.local_up import LocalService
from local_pipeline import database
from stacks.settings import settings_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ATTRIBUTES = {"source": {"DataType": "String", "StringValue": "crm-export"}}


@pytest.fixture
def service_factory(tmp_path, postgres_server, redis_server, monkeypatch):
    """Local services on one state file and one database, one after the other, as restarts are."""
    monkeypatch.setenv("REDIS_HOST", redis_server.host)
    monkeypatch.setenv("REDIS_PORT", str(redis_server.port))
    dbname = f"dialctl_{uuid.uuid4().hex[:10]}"
    settings = dataclasses.replace(settings_for("dev"), calling_hours="00:00-24:00")
    started: list[tuple[LocalService, str]] = []

    def start(*, keep: bool) -> LocalService:
        service = LocalService(tmp_path / "state.json", max_cps=20, dbname=dbname, visibility_timeout_seconds=2,
                               batching_window_seconds=0.5, settings=settings, keep=keep)  # fmt: skip
        service.start()
        started.append((service, service.run.key_prefix))
        return service

    yield start
    for service, prefix in started:
        service.stop()
        purge_redis_keys(redis_server, prefix)
    database.drop(postgres_server, dbname)


def task(i: int) -> dict:
    return {"campaignId": "spring-sale", "contactId": f"keep-{i}", "phoneNumber": f"+1415553{i:04d}"}


def test_kept_tasks_come_back_after_a_restart_with_their_group_and_attributes(service_factory):
    first = service_factory(keep=True)
    where = ["--local", "--state-file", str(first.state_file)]
    assert main(["rate", "set", "0", *where]) == 0
    client = first.run.queues.client
    for i in range(5):
        client.send_message(QueueUrl=first.run.queues.queue_url, MessageBody=json.dumps(task(i)),
                            MessageGroupId="spring-sale", MessageAttributes=ATTRIBUTES)  # fmt: skip
    client.send_message(QueueUrl=first.run.queues.dlq_url, MessageBody=json.dumps(task(9)), MessageGroupId="g-9",
                        MessageAttributes=ATTRIBUTES)  # fmt: skip
    # Stopped, the dialer defers them: delayed messages, which no receive could read, are kept too.
    deadline = time.monotonic() + 20
    while first.run.queues.depth()["delayed"] == 0:
        assert time.monotonic() < deadline, f"never deferred: {first.run.queues.depth()}"
        time.sleep(0.2)
    first.stop()
    assert first.kept == {"tasks": 5, "dlq": 1}
    lines = [json.loads(line) for line in first.kept_file.read_text().splitlines()]
    tasks = [line for line in lines if line["queue"] == "tasks"]
    assert sorted(json.loads(line["body"])["contactId"] for line in tasks) == [f"keep-{i}" for i in range(5)]
    assert {line["groupId"] for line in tasks} == {"spring-sale"}
    # The deferred copies carry the task's attributes, and the first-enqueue time the dialer adds.
    assert all(ATTRIBUTES.items() <= (line["attributes"] or {}).items() for line in tasks)

    second = service_factory(keep=True)
    assert second.restored == {"tasks": 5, "dlq": 1} and not second.kept_file.exists()
    dlq = second.run.queues.client.receive_message(
        QueueUrl=second.run.queues.dlq_url, MessageAttributeNames=["All"], AttributeNames=["All"]
    )["Messages"]
    assert [json.loads(m["Body"])["contactId"] for m in dlq] == ["keep-9"]
    assert dlq[0]["Attributes"]["MessageGroupId"] == "g-9" and dlq[0]["MessageAttributes"] == ATTRIBUTES
    # The live rate starts at the ceiling again: the kept tasks are dialed, each once.
    deadline = time.monotonic() + 30
    while len(second.run.worker.accepted()) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    dialed = sorted(c.body["contactId"] for c in second.run.worker.accepted())
    assert dialed == [f"keep-{i}" for i in range(5)]


def test_without_keep_a_restart_leaves_the_kept_file_for_a_later_keep(service_factory):
    first = service_factory(keep=True)
    main(["rate", "set", "0", "--local", "--state-file", str(first.state_file)])
    first.run.enqueue([task(i) for i in range(2)])
    first.stop()
    assert first.kept == {"tasks": 2, "dlq": 0}
    plain = service_factory(keep=False)
    assert plain.restored == {} and sum(plain.run.queues.depth().values()) == 0
    plain.stop()
    assert plain.kept is None and len(plain.kept_file.read_text().splitlines()) == 2


def test_local_up_keep_says_what_it_kept_and_restores_it(tmp_path, redis_server):
    state = tmp_path / "state.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(ROOT, "lambdas"), ROOT]),
           "REDIS_HOST": redis_server.host, "REDIS_PORT": str(redis_server.port)}  # fmt: skip
    argv = [sys.executable, "-m", "dialctl", "local", "up", "--keep", "--state-file", str(state), "--max-cps", "10"]
    where = ["--local", "--state-file", str(state)]

    def up_until_ready() -> subprocess.Popen[str]:
        up = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert up.stderr is not None
        deadline = time.monotonic() + 60
        while not state.exists() and time.monotonic() < deadline and up.poll() is None:
            time.sleep(0.2)
        assert state.exists(), up.stderr.read() if up.poll() is not None else "no state file within 60 s"
        return up

    processes: list[subprocess.Popen[str]] = []
    try:
        processes.append(up := up_until_ready())
        assert main(["rate", "set", "0", *where]) == 0
        contacts = tmp_path / "c.csv"
        contacts.write_text("campaignId,contactId,phoneNumber\n" + "".join(
            f"spring-sale,q{i},+1415559{i:04d}\n" for i in range(3)))  # fmt: skip
        assert main(["enqueue", str(contacts), *where, "--processes", "1"]) == 0
        up.send_signal(signal.SIGINT)
        out, err = up.communicate(timeout=60)
        assert up.returncode == 0, err
        kept = tmp_path / "state.kept.jsonl"
        assert (
            f"stopping: kept 3 queued dial tasks and 0 in the DLQ in {kept}; `local up --keep` sends them again" in out
        )
        processes.append(up := up_until_ready())
        assert main(["local", "down", "--state-file", str(state)]) == 0
        out, err = up.communicate(timeout=60)
        assert "restored 3 queued dial tasks and 0 in the DLQ kept by the last `local up --keep`" in out, err
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
