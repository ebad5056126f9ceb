"""`dialctl local up`: the local pipeline as a long-running service to enqueue into.

Real PostgreSQL and Redis (reused when they answer, throwaway ones otherwise), the local SQS
endpoint, the worker stand-in, the pipe and the real handlers (local_pipeline/run.py LocalRun),
running until stopped. Where each part listens goes to the state file, which every other
`dialctl --local` command reads.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from dialctl import activity
from dialctl.targets import Failure, pid_alive, read_state

DATABASE = "dialpipe_local"
# Local runs use a short visibility timeout, so a failed batch comes back in seconds, not minutes.
VISIBILITY_TIMEOUT_S = 10


def campaigns() -> list[tuple[str, str, dict]]:
    """The demo's campaigns (active, rate-limited, paused), so a fresh `up` has something to dial."""
    from local_pipeline.demo import CAMPAIGNS

    return list(CAMPAIGNS)


def running(state_file: Path) -> dict | None:
    """The state of a local pipeline that still runs, or None."""
    state = read_state(state_file)
    return state if state and pid_alive(state.get("pid")) else None


class LocalService:
    def __init__(
        self,
        state_file: Path,
        *,
        env: str = "dev",
        max_cps: float | None = None,
        visibility_timeout_seconds: int = VISIBILITY_TIMEOUT_S,
        dbname: str = DATABASE,
        batching_window_seconds: float | None = None,
        settings: Any = None,
        keep: bool = False,
    ) -> None:
        """`settings`: the environment's as given (a test's, say), instead of `env`'s own.
        `keep`: the queued tasks outlive the service: written to `kept_file_for(state_file)` when
        it stops, sent again when a service with `keep` starts."""
        self.state_file = state_file
        self.keep = keep
        self.kept_file = kept_file_for(state_file)
        self.restored: dict[str, int] = {}  # queue ("tasks", "dlq") -> messages sent again at start
        self.kept: dict[str, int] | None = None  # queue -> messages written at stop
        self._publisher: Any = None
        self.settings = settings
        self.env = env
        self.max_cps = max_cps
        self.visibility_timeout_seconds = visibility_timeout_seconds
        self.dbname = dbname
        self.batching_window_seconds = batching_window_seconds
        self.run: Any = None
        self.pipe: Any = None
        self._throwaways: list[Any] = []
        self.state: dict = {}

    def start(self) -> dict:
        other = running(self.state_file)
        if other:
            raise Failure(
                f"a local pipeline is already running (pid {other['pid']}, started {other.get('started_at')}); "
                f"state in {self.state_file}. Stop it with Ctrl-C in its terminal, or kill {other['pid']}."
            )
        import redis

        from local_pipeline import database
        from local_pipeline.run import LocalRun
        from local_pipeline.services import reuse_or_start_postgres, reuse_or_start_redis
        from stacks.settings import settings_for

        try:
            settings = self.settings or settings_for(self.env)
        except (KeyError, ValueError) as exc:
            raise Failure(str(exc)) from None
        pg, pg_throwaway = reuse_or_start_postgres()
        redis_server, redis_throwaway = reuse_or_start_redis()
        self._throwaways = [t for t in (pg_throwaway, redis_throwaway) if t is not None]
        try:
            database.prepare(pg, self.dbname, campaigns())
            self.run = LocalRun(
                settings,
                postgres=pg,
                dbname=self.dbname,
                redis=redis_server,
                max_cps=self.max_cps,
                visibility_timeout_seconds=self.visibility_timeout_seconds,
                batching_window_seconds=self.batching_window_seconds,
            )
            # As the stack creates the SSM parameter: the live value starts at the ceiling.
            client = redis.Redis(host=redis_server.host, port=redis_server.port)
            client.set(self.run.live_rate_key, f"{self.run.max_cps:g}")
            client.close()
            if self.keep:
                self.restored = restore(self.run, self.kept_file)
            self.pipe = self.run.pipe().start(self.run.parallel)
            # `status --local` reads what the dialers did from Redis (dialctl/activity.py).
            self._publisher = activity.Publisher(
                redis.Redis(host=redis_server.host, port=redis_server.port, socket_timeout=2),
                self.run.key_prefix,
                activity.tally_totals(self.run.functions.tally),
            ).start()
        except BaseException:
            self.stop()
            raise
        run = self.run
        self.state = {
            "pid": os.getpid(),
            "env": settings.name,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "max_cps": run.max_cps,
            "postgres_dsn": run.dsn,
            "redis_url": redis_server.url,
            "redis_key_prefix": run.key_prefix,
            "live_rate_key": run.live_rate_key,
            "rate_key": "{" + run.key_prefix + "}:rate",
            "sqs_endpoint": run.sqs.endpoint,
            "queue_url": run.queues.queue_url,
            "dlq_url": run.queues.dlq_url,
            "worker_url": run.worker.url,
            "visibility_timeout_seconds": run.visibility_timeout,
        }
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_suffix(".tmp")
        partial.write_text(json.dumps(self.state, indent=2))
        partial.replace(self.state_file)
        return self.state

    def stop(self) -> None:
        if self._publisher is not None:
            self._publisher.stop()
            self._publisher.client.close()
            self._publisher = None
        if self.pipe is not None:
            self.pipe.stop()
            self.pipe = None
        if self.run is not None:
            # Kept before the state file goes: `local down` returns once the file is written.
            if self.keep and self.kept is None:
                self.kept = keep_queued(self.run, self.kept_file)
            self.run.close()
            self.run = None
        state = read_state(self.state_file)
        if state and state.get("pid") == os.getpid() and state.get("sqs_endpoint") == self.state.get("sqs_endpoint"):
            self.state_file.unlink(missing_ok=True)
        for throwaway in self._throwaways:
            throwaway.destroy()
        self._throwaways = []

    def __enter__(self) -> LocalService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def kept_file_for(state_file: Path) -> Path:
    return state_file.with_name(state_file.stem + ".kept.jsonl")


def _queue_names(run: Any) -> dict[str, str]:
    """The local queues whose messages `--keep` keeps, by their name in the kept file."""
    return {which: url.rstrip("/").rsplit("/", 1)[-1] for which, url in
            (("tasks", run.queues.queue_url), ("dlq", run.queues.dlq_url))}  # fmt: skip


def keep_queued(run: Any, path: Path) -> dict[str, int]:
    """Writes every message of the run's dial-tasks queue and DLQ to `path`, one JSON line each
    (queue, body, MessageGroupId, message attributes): visible, in flight and delayed alike, read
    from the local SQS store itself, since a delayed message cannot be received. Returns how
    many per queue. The pipe has stopped: nothing takes them meanwhile."""
    counts: dict[str, int] = {}
    partial = path.with_suffix(".tmp")
    with partial.open("w", encoding="utf-8") as f:
        for which, name in _queue_names(run).items():
            queue = run.sqs.queues.queue_named(name)
            messages = sorted(list(queue.messages.values()), key=lambda m: m.sent_timestamp_ms)
            for m in messages:
                line = {"queue": which, "body": m.body, "groupId": m.group_id, "attributes": m.attributes}
                f.write(json.dumps(line, separators=(",", ":")) + "\n")
            counts[which] = len(messages)
    if sum(counts.values()):
        partial.replace(path)
    else:
        partial.unlink()
    return counts


def restore(run: Any, path: Path) -> dict[str, int]:
    """Sends the messages `keep_queued` wrote to `path` again, each to its queue, as new messages
    (new ids, receive counts afresh, no delay: the dialer decides again when each may go), then
    removes the file. Returns how many per queue."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    names = _queue_names(run)
    kept = []
    # Every line read before any is sent: a file that fails half way stays as it is.
    for number, text in enumerate(lines, start=1):
        try:
            line = json.loads(text)
            kept.append(
                (line["queue"], names[line["queue"]], line["body"], line.get("groupId"), line.get("attributes"))
            )
        except (ValueError, KeyError, TypeError):
            raise Failure(f"{path}, line {number}: not a kept message; move the file away to start") from None
    counts = dict.fromkeys(names, 0)
    for which, name, body, group_id, attributes in kept:
        run.sqs.queues.send(name, body, group_id=group_id, attributes=attributes)
        counts[which] += 1
    path.unlink()
    return counts


def kept_waiting(path: Path) -> int:
    """How many kept messages wait in `path` for a `local up --keep` (0: none)."""
    try:
        with path.open(encoding="utf-8") as f:
            return sum(1 for line in f if line.strip())
    except FileNotFoundError:
        return 0


def describe(state: dict) -> list[tuple[str, str]]:
    """Where each part listens, for people: what `local up` prints."""
    return [
        ("PostgreSQL", state["postgres_dsn"]),
        ("Redis", f"{state['redis_url']} (keys under {{{state['redis_key_prefix']}}})"),
        ("SQS endpoint", state["sqs_endpoint"]),
        ("dial-tasks queue", state["queue_url"]),
        ("DLQ", state["dlq_url"]),
        ("worker stand-in", f"{state['worker_url']}/dial"),
        ("MAX_CPS", f"ceiling {state['max_cps']:g}, live key {state['live_rate_key']}"),
    ]


def down(state_file: Path, *, purge: bool, timeout_seconds: float = 60) -> dict:
    """Stops the local pipeline of `state_file` (SIGTERM: it stops as on Ctrl-C) and, with
    `purge`, then removes its Redis keys: every key under its hash tag `{<prefix>}`."""
    state = running(state_file)
    if state is None:
        raise Failure(f"no local pipeline is running with the state file {state_file}")
    pid = state["pid"]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_seconds
    # Stopped when its process is gone, or when it removed its state file (its last step but one).
    while pid_alive(pid) and (read_state(state_file) or {}).get("pid") == pid:
        if time.monotonic() > deadline:
            raise Failure(f"the local pipeline (pid {pid}) did not stop within {timeout_seconds:g} s")
        time.sleep(0.1)
    result: dict[str, Any] = {"pid": pid, "redis_key_prefix": state["redis_key_prefix"], "purged_keys": None}
    if purge:
        result["purged_keys"] = purge_keys(state["redis_url"], state["redis_key_prefix"])
    return result


def purge_keys(redis_url: str, prefix: str) -> int:
    """Removes every key under `{prefix}` (SCAN, then UNLINK in batches); returns how many."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", "{" + prefix + "}") + "*"  # the prefix matched as it is
    removed, batch = 0, []
    try:
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                removed += client.unlink(*batch)
                batch = []
        if batch:
            removed += client.unlink(*batch)
    except redis.ConnectionError:
        # A throwaway Redis that `local up` started stops with it, keys and all.
        return removed
    finally:
        client.close()
    return removed
