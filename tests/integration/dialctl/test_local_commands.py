"""dialctl against a running local pipeline (real PostgreSQL, Redis, local SQS, worker stand-in):
what each command prints, what it changes, and its exit status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import redis as redis_lib

from dialctl.activity import PUBLISH_EVERY_S, RATE_WINDOW_S
from dialctl.cli import main, status_lines

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def run(capsys, *argv):
    """The command's exit code and its --json document. The local pipeline's handlers log JSON
    lines to the same stdout from their threads; the document is the one line that is not theirs."""
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    decoder, documents, at = json.JSONDecoder(), [], 0
    while (at := out.find("{", at)) != -1:
        try:
            document, end = decoder.raw_decode(out, at)
        except ValueError:
            at += 1
            continue
        documents.append(document)
        at = end
    mine = [d for d in documents if isinstance(d, dict) and "level" not in d and "_aws" not in d]
    return code, mine[-1] if mine else None


def local(service):
    return ["--local", "--state-file", str(service.state_file)]


def test_rate_show_set_and_the_ceiling(local_service, capsys):
    code, doc = run(capsys, "rate", "show", *local(local_service))
    assert code == 0 and (doc["ceiling"], doc["live"], doc["stopped"]) == (20, 20, False)
    code, doc = run(capsys, "rate", "set", "5", *local(local_service))
    assert code == 0 and (doc["previous"], doc["live"]) == (20, 5)
    assert main(["rate", "set", "21", *local(local_service)]) == 2
    err = capsys.readouterr().err
    assert "over the ceiling 20" in err and "local up --max-cps" in err and "cdk deploy" not in err
    client = redis_lib.Redis.from_url(local_service.state["redis_url"])
    assert client.get(local_service.run.live_rate_key) == b"5"  # the key the dialer reads
    code, doc = run(capsys, "rate", "set", "0", *local(local_service))
    assert code == 0 and doc["stopped"]


def test_enqueue_sends_the_valid_rows_and_reports_the_bad_ones(local_service, tmp_path, capsys):
    path = tmp_path / "contacts.csv"
    rows = ["campaignId,contactId,phoneNumber,attempts"]
    rows += [f"spring-sale,c{i},+1415555{i:04d},0" for i in range(25)]
    rows += ["spring-sale,bad-phone,555-0100,0", "no-such-campaign,ghost,+14155550999,0", ",nobody,+14155550998,0"]
    path.write_text("\n".join(rows) + "\n")
    main(["rate", "set", "0", *local(local_service)])  # keep them in the queue to count them
    capsys.readouterr()
    code, doc = run(capsys, "enqueue", str(path), *local(local_service), "--processes", "1")
    assert code == 1
    assert (doc["valid"], doc["sent"], doc["campaigns_checked"]) == (25, 25, True)
    assert [(r["line"], r["reason"].split(" ")[0]) for r in doc["rejected"]] == [
        (27, "phoneNumber"), (28, "campaignId"), (29, "campaignId"),
    ]  # fmt: skip
    depth = local_service.run.queues.depth()
    assert sum(depth.values()) == 25


def test_enqueued_tasks_are_dialed_and_status_shows_them_per_campaign(local_service, tmp_path, capsys):
    path = tmp_path / "contacts.jsonl"
    bodies = [{"campaignId": "spring-sale", "contactId": f"s{i}", "phoneNumber": f"+1415555{i:04d}"} for i in range(6)]
    bodies += [{"campaignId": "renewals", "contactId": f"r{i}", "phoneNumber": f"+1415556{i:04d}"} for i in range(4)]
    path.write_text("".join(json.dumps(b) + "\n" for b in bodies))
    assert main(["enqueue", str(path), *local(local_service), "--processes", "1"]) == 0
    deadline = time.monotonic() + 20
    while len(local_service.run.worker.accepted()) < 10 and time.monotonic() < deadline:
        time.sleep(0.2)
    capsys.readouterr()
    code, doc = run(capsys, "status", *local(local_service))
    assert code == 0, doc["problems"]
    assert doc["dials_last_minute"]["by_campaign"] == {"spring-sale": 6, "renewals": 4}
    assert doc["max_cps"] == {"ceiling": 20, "live": 20} and doc["redis"]["ok"] is True
    assert doc["dlq"] == 0 and set(doc["queue"]) == {"visible", "in_flight", "delayed"}
    assert doc["listening"]["postgres_dsn"].startswith("postgresql://")
    assert doc["listening"]["sqs_endpoint"] == local_service.state["sqs_endpoint"]
    assert {"redis_url", "worker_url", "queue_url", "dlq_url"} <= set(doc["listening"])
    # The closed loop, from the keys the dialers and the call-events handler share.
    loop = doc["closed_loop"]
    assert isinstance(loop["fleet_live_calls"], int) and loop["fleet_live_calls"] <= 10
    assert set(loop["campaigns"]) <= {"spring-sale", "renewals"}
    for facts in loop["campaigns"].values():
        assert facts.get("answer_rate") is None or 0 <= facts["answer_rate"] <= 1
        assert 0.1 <= facts.get("pace_factor", 1.0) <= 1
    assert any(line.startswith("  live calls") for line in status_lines(doc))


def dialers_see(service, rate: float) -> None:
    """Until the running dialer paces at `rate`: a new container reads the key at once, a warm
    one within its 10 s cache."""
    service.run.functions.restart_dialer()
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        current = service.run.functions.dispatcher
        if current.live_rate is None or current.live_rate.current() == rate:
            return
        time.sleep(0.2)
    raise AssertionError(f"the dialer did not pick up the rate {rate} within 12 s")


def test_the_kill_switch_keeps_every_task_and_dialing_resumes(local_service, tmp_path, capsys):
    main(["rate", "set", "0", *local(local_service)])
    dialers_see(local_service, 0)
    path = tmp_path / "c.csv"
    path.write_text(
        "campaignId,contactId,phoneNumber\n" + "".join(f"spring-sale,k{i},+1415557{i:04d}\n" for i in range(5))
    )
    assert main(["enqueue", str(path), *local(local_service), "--processes", "1"]) == 0
    time.sleep(4)
    assert local_service.run.worker.calls == []
    assert sum(local_service.run.queues.depth().values()) == 5  # deferred, never dropped
    # status says why they wait: deferrals by reason, from the dialers' reports.
    doc = status_until(capsys, local_service, lambda d: (d["deferred"] or {}).get("by_reason", {}).get("stopped"))
    assert set(doc["deferred"]["by_reason"]) == {"stopped"} and doc["deferred"]["total"] >= 5
    assert doc["measured_cps"]["dials"] == 0 and doc["measured_cps"]["calls_per_second"] == 0
    text = "\n".join(status_lines(doc))
    assert (
        f"deferred     {doc['deferred']['total']} in the last " in text
        and f": stopped {doc['deferred']['total']}" in text
    )
    main(["rate", "set", "20", *local(local_service)])
    dialers_see(local_service, 20)
    deadline = time.monotonic() + 20
    while len(local_service.run.worker.accepted()) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(local_service.run.worker.accepted()) == 5
    # The measured rate: the 5 calls sent within the last 10 s, beside the configured rate.
    doc = status_until(capsys, local_service, lambda d: d["measured_cps"] and d["measured_cps"]["dials"] == 5)
    measured = doc["measured_cps"]
    # The window runs from the newest sample back to the newest one at least RATE_WINDOW_S old;
    # samples come about once a second from a thread, so a loaded machine stretches it (10.6 s
    # seen in CI). Both figures are rounded for display: the rate to 0.01, the window to 0.1 s.
    assert 0 < measured["window_seconds"] < RATE_WINDOW_S + 5 * PUBLISH_EVERY_S
    assert measured["calls_per_second"] == pytest.approx(5 / measured["window_seconds"], abs=0.02)
    effective = next(line for line in status_lines(doc) if line.startswith("  effective"))
    assert "20.0 calls/s configured; measured " in effective and "(5 sent)" in effective


def status_until(capsys, service, condition, timeout: float = 15):
    """`status --local --json` until `condition(doc)`: `local up` publishes its figures every second."""
    deadline = time.monotonic() + timeout
    while True:
        code, doc = run(capsys, "status", *local(service))
        if condition(doc):
            assert code == 0, doc["problems"]
            return doc
        assert time.monotonic() < deadline, f"status never showed it: {doc}"
        time.sleep(0.3)


def test_dlq_list_masks_numbers_and_redrive_sends_them_back(local_service, capsys):
    main(["rate", "set", "0", *local(local_service)])
    sqs, dlq = local_service.run.queues.client, local_service.run.queues.dlq_url
    for i in range(3):
        body = {"campaignId": "spring-sale", "contactId": f"d{i}", "phoneNumber": f"+1415558{i:04d}", "attempts": 0}
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(body))
    capsys.readouterr()
    code, doc = run(capsys, "dlq", "list", "--limit", "2", *local(local_service))
    assert code == 0 and doc["dlq_depth"] == 3 and len(doc["messages"]) == 2
    for message in doc["messages"]:
        assert message["phoneNumber"].startswith("+*******") and message["receiveCount"] == 1
    assert "SQS has no peek" in doc["listing"]  # it says the listing was a receive
    code, doc = run(capsys, "dlq", "list", "--limit", "3", *local(local_service))
    assert code == 0 and sorted(m["receiveCount"] for m in doc["messages"]) == [1, 2, 2]  # as it said
    code, doc = run(capsys, "dlq", "redrive", "--wait", *local(local_service))
    assert code == 0 and doc["task"]["Status"] == "COMPLETED" and doc["task"]["ApproximateNumberOfMessagesMoved"] == 3
    attributes = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_local_up_runs_until_interrupted_and_refuses_a_second_up(tmp_path, redis_server):
    state = tmp_path / "state.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(ROOT, "lambdas"), ROOT]),
           "REDIS_HOST": redis_server.host, "REDIS_PORT": str(redis_server.port)}  # fmt: skip
    argv = [sys.executable, "-m", "dialctl", "local", "up", "--state-file", str(state), "--max-cps", "10"]
    up = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not state.exists() and time.monotonic() < deadline and up.poll() is None:
            time.sleep(0.2)
        assert state.exists(), up.stderr.read() if up.poll() is not None else "no state file within 60 s"
        assert json.loads(state.read_text())["pid"] == up.pid
        second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and "already running" in second.stderr
        # Tasks that wait in its queue (rate 0) when it stops: it says it drops them.
        where = ["--local", "--state-file", str(state)]
        assert main(["rate", "set", "0", *where]) == 0
        contacts = tmp_path / "c.csv"
        contacts.write_text(
            "campaignId,contactId,phoneNumber\n" + "".join(f"spring-sale,q{i},+1415559{i:04d}\n" for i in range(3))
        )
        assert main(["enqueue", str(contacts), *where, "--processes", "1"]) == 0
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=60)
        assert up.returncode == 0
        assert "SQS endpoint" in out and "worker stand-in" in out and "PostgreSQL" in out
        assert "stopping: 3 queued dial tasks and 0 in the DLQ are dropped" in out
        assert "(`local up --keep` keeps them across a restart)" in out
        assert not state.exists()
        # Its handlers logged to its own file, beside the state file.
        assert (tmp_path / "state.log").stat().st_size > 0 and not (tmp_path / "handlers.log").exists()
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


def test_status_watch_json_writes_one_document_per_line_and_no_escapes(local_service_own_redis):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(ROOT, "lambdas"), ROOT])}
    where = local(local_service_own_redis)
    argv = [sys.executable, "-m", "dialctl", "status", "--watch", "--json", "--interval", "0.1", *where]
    # Ctrl-C as at a terminal: a suite run in the background (CI) starts its children with SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler.
    watch = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    try:
        assert watch.stdout is not None
        lines = [watch.stdout.readline() for _ in range(3)]
        watch.send_signal(signal.SIGINT)
        rest, err = watch.communicate(timeout=30)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert watch.returncode == 0, err
    assert "\x1b" not in "".join(lines) + rest
    complete = lines + rest.split("\n")[:-1]  # a Ctrl-C may cut the last line short
    assert len(complete) >= 3
    for line in complete:
        assert json.loads(line)["kind"] == "local"


def test_local_down_purge_stops_the_pipeline_and_removes_its_redis_keys(tmp_path, redis_server, capsys):
    state = tmp_path / "state.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(ROOT, "lambdas"), ROOT]),
           "REDIS_HOST": redis_server.host, "REDIS_PORT": str(redis_server.port)}  # fmt: skip
    argv = [sys.executable, "-m", "dialctl", "local", "up", "--state-file", str(state), "--max-cps", "10"]
    up = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not state.exists() and time.monotonic() < deadline and up.poll() is None:
            time.sleep(0.2)
        assert state.exists(), up.stderr.read() if up.poll() is not None else "no state file within 60 s"
        prefix = json.loads(state.read_text())["redis_key_prefix"]
        client = redis_lib.Redis.from_url(redis_server.url)
        client.set("{" + prefix + "}:pacing-left-behind", "1")  # as the dialers' keys would be
        client.set("{" + prefix + "x}:another-run", "1")  # a prefix that merely starts the same
        before = len(list(client.scan_iter(match="{" + prefix + "}*", count=10_000)))
        capsys.readouterr()
        code, doc = run(capsys, "local", "down", "--purge", "--state-file", str(state))
        assert code == 0 and doc["purged_keys"] == before >= 2
        assert up.wait(timeout=60) == 0 and not state.exists()
        assert list(client.scan_iter(match="{" + prefix + "}*", count=10_000)) == []
        assert client.get("{" + prefix + "x}:another-run") == b"1"
        client.delete("{" + prefix + "x}:another-run")
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


def test_status_right_after_up_finds_the_published_figures(local_service, capsys):
    code, doc = run(capsys, "status", *local(local_service))
    assert code == 0, doc["problems"]
    assert doc["measured_cps"]["dials"] == 0 and doc["deferred"]["by_reason"] == {}
