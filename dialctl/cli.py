"""dialctl: the operator's tool for the dial-task pipeline, deployed (`--stack DialPipeline-<env>`)
or local (`--local`, started with `dialctl local up`).

Exit status: 0 done; 1 some rows were rejected, or something did not work (a message says what);
2 a usage error (bad arguments, a value over the ceiling, a file that cannot be read).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dialctl.targets import Failure, LocalTarget, StackTarget, Target, UsageError, default_state_file

OK, FAILED, USAGE = 0, 1, 2
CLOSED_PIPE = 128 + signal.SIGPIPE  # the reader of stdout went away, as a shell reports SIGPIPE
BATCH = 10  # SendMessageBatch's limit


# -- output helpers -------------------------------------------------------------------------------


class Progress:
    """A progress bar on stderr, redrawn at most 10 times a second; silent when disabled."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.total, self.label, self.enabled = total, label, enabled and total > 0
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0

    def add(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._drawn >= 0.1 or self.done >= self.total):
            self._drawn = now
            width = 30
            filled = int(width * self.done / self.total)
            rate = self.done / max(1e-6, now - self.started)
            print(
                f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {rate:,.0f}/s",
                end="", file=sys.stderr, flush=True,
            )  # fmt: skip

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr, flush=True)


def emit(args: argparse.Namespace, document: dict, lines: Sequence[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(document, indent=2, default=str))
    else:
        for line in lines:
            print(line)


def target_of(args: argparse.Namespace, *, required: bool = True) -> Target | None:
    if getattr(args, "stack", None):
        return StackTarget(args.stack, region=args.region, database_url=getattr(args, "database_url", None))
    if getattr(args, "local", False):
        return LocalTarget.from_state_file(args.state_file)
    if required:
        raise UsageError("say where: --local (the pipeline `dialctl local up` runs) or --stack DialPipeline-<env>")
    return None


# -- rate -----------------------------------------------------------------------------------------


def rate_document(target: Target) -> dict:
    ceiling, raw = target.ceiling(), target.live_raw()
    live = target.live()
    return {"target": target.name, "ceiling": ceiling, "live": live, "live_stored": raw, "stopped": live == 0}


def cmd_rate_show(args: argparse.Namespace) -> int:
    target = target_of(args)
    assert target is not None
    doc = rate_document(target)
    state = "STOPPED (kill switch: rate set 0)" if doc["stopped"] else f"{doc['live']:g} calls/s"
    emit(args, doc, [f"{doc['target']}: MAX_CPS live {state}, ceiling {doc['ceiling']:g}"])
    return OK


def cmd_rate_set(args: argparse.Namespace) -> int:
    target = target_of(args)
    assert target is not None
    ceiling = target.ceiling()
    if args.value > ceiling:
        raise UsageError(f"{args.value:g} is over the ceiling {ceiling:g}: {target.ceiling_hint()}")
    before = target.live()
    target.set_live(args.value)
    doc = {**rate_document(target), "previous": before}
    what = "STOPPED: every task waits in the queue" if args.value == 0 else f"{args.value:g} calls/s"
    emit(
        args,
        doc,
        [f"{target.name}: MAX_CPS live {before:g} -> {what} (ceiling {ceiling:g}); dialers follow within 10 s"],
    )
    return OK


# -- enqueue --------------------------------------------------------------------------------------


def cmd_enqueue(args: argparse.Namespace) -> int:
    from dialctl.rows import Checked, FileProblem, Rejected, read_records

    target = target_of(args, required=not args.dry_run)
    path = Path(args.file)
    started = time.monotonic()
    try:
        records = list(read_records(path))
    except FileProblem as exc:
        raise UsageError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: {exc}") from None
    # Campaign ids are looked up once, for the whole file, before the rows are checked.
    known = None
    if target is not None:
        ids = {r["campaignId"] for _, r in records if isinstance(r, dict) and isinstance(r.get("campaignId"), str)}
        known = target.known_campaigns(ids) if ids else set()
    send_to = target if target is not None and not args.dry_run else None
    checked, sent, failed = Checked(campaigns_checked=known is not None), 0, []
    progress = Progress(len(records), "checking" if send_to is None else "sending ", args.progress)
    chunks = [records[i : i + CHUNK] for i in range(0, len(records), CHUNK)]
    # Checking numbers and signing requests cost CPU: a few processes share the file, each sending
    # its own valid rows from a few threads (the time a request waits for SQS is spent in threads).
    jobs = [(chunk, known, args.threads) for chunk in chunks]
    with _workers(send_to, args.processes) as pool:
        for rejected, valid, chunk_sent, chunk_failed in pool(_check_and_send, jobs):
            checked.rejected += [Rejected(line, reason) for line, reason in rejected]
            checked.valid += valid
            sent += chunk_sent
            failed += chunk_failed
            progress.add(len(valid) + len(rejected))
    progress.close()
    checked.rejected.sort(key=lambda r: r.line)
    seconds = time.monotonic() - started
    rate = checked.rows / seconds if seconds else 0.0
    doc = {
        "target": target.name if target else None,
        "file": str(path),
        "rows": checked.rows,
        "valid": len(checked.valid),
        "rejected": [{"line": r.line, "reason": r.reason} for r in checked.rejected],
        "campaigns_checked": checked.campaigns_checked,
        "dry_run": args.dry_run,
        "sent": sent,
        "send_failed": [{"line": line, "reason": reason} for line, reason in sorted(failed)],
        "seconds": round(seconds, 3),
        "rows_per_second": round(rate, 1),
    }
    lines = [f"line {r.line}: {r.reason}" for r in checked.rejected]
    lines += [f"line {line}: not sent: {reason}" for line, reason in sorted(failed)]
    campaigns = (
        "campaign ids checked" if checked.campaigns_checked else f"campaign ids NOT checked ({unchecked(args, target)})"
    )
    lines.append(f"{checked.rows} rows: {len(checked.valid)} valid, {len(checked.rejected)} rejected; {campaigns}")
    if send_to is None:
        lines.append(f"dry run: nothing sent ({seconds:.2f} s, {rate:,.0f} rows/s)")
    else:
        lines.append(f"sent {sent} to {send_to.name} in {seconds:.2f} s ({rate:,.0f} rows/s checked and sent)")
    emit(args, doc, lines)
    return FAILED if checked.rejected or failed else OK


def unchecked(args: argparse.Namespace, target: Target | None) -> str:
    """Why the campaign ids could not be checked, in the words of what to do about it."""
    if target is None:
        return "no target: with --local, or --stack NAME --database-url URL, they are checked"
    if target.kind == "stack" and not args.database_url:
        return "the stack's database is in its VPC: --database-url URL through a tunnel checks them"
    return "the database could not be reached"


CHUNK = 2000  # rows per unit of work
_worker_target: Target | None = None


class _workers:
    """`pool(fn, jobs)` yields fn(job) for each job, in order: in this process when processes is 1
    (the AWS mocks of the tests live in this process), else in forked processes, each with SQS
    clients of its own (a client must not cross a fork)."""

    def __init__(self, target: Target | None, processes: int) -> None:
        self.target, self.processes = target, processes
        self._pool: Any = None

    def __enter__(self):
        global _worker_target
        _worker_target = self.target
        if self.processes > 1:
            import multiprocessing

            context = multiprocessing.get_context("fork")
            self._pool = context.Pool(self.processes, initializer=_fresh_clients)
            return lambda fn, jobs: self._pool.imap(fn, jobs)
        return lambda fn, jobs: map(fn, jobs)

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.terminate() if exc[0] else self._pool.close()
            self._pool.join()


def _fresh_clients() -> None:
    if _worker_target is not None:
        _worker_target.reconnect()


def _check_and_send(job: tuple[list, set[str] | None, int]) -> tuple[list, list, int, list]:
    from dialctl.rows import check

    records, known, threads = job
    checked = check(records, (lambda ids: known) if known is not None else None)
    rejected = [(r.line, r.reason) for r in checked.rejected]
    if _worker_target is None or not checked.valid:
        return rejected, checked.valid, 0, []
    sent, failed = send(_worker_target, checked.valid, threads=threads)
    return rejected, checked.valid, sent, failed


def send(target: Target, valid: list[tuple[int, dict]], *, threads: int) -> tuple[int, list]:
    """Sends every body in batches of 10 (MessageGroupId = campaignId) from a few threads.
    Returns (sent, [(line, reason) not sent])."""
    batches = [valid[i : i + BATCH] for i in range(0, len(valid), BATCH)]

    def one(batch: list[tuple[int, dict]]) -> tuple[int, list]:
        entries = [
            {"Id": str(i), "MessageBody": json.dumps(body, separators=(",", ":")), "MessageGroupId": body["campaignId"]}
            for i, (_, body) in enumerate(batch)
        ]
        try:
            reply = target.sqs.send_message_batch(QueueUrl=target.queue_url, Entries=entries)
        except Exception as exc:  # the SDK's or the network's: the whole batch is not sent
            return 0, [(line, f"{type(exc).__name__}: {exc}") for line, _ in batch]
        lost = [(batch[int(f["Id"])][0], f"{f.get('Code')}: {f.get('Message', '')}") for f in reply.get("Failed", [])]
        return len(batch) - len(lost), lost

    sent, failed = 0, []
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="enqueue") as pool:
        for count, lost in pool.map(one, batches):
            sent += count
            failed += lost
    return sent, failed


# -- status ---------------------------------------------------------------------------------------


def status_document(target: Target) -> dict:
    doc: dict[str, Any] = {"target": target.name, "kind": target.kind, "problems": []}

    def part(name: str, fn):
        try:
            doc[name] = fn()
        except Failure as exc:
            doc[name] = None
            doc["problems"].append(f"{name}: {exc}")
        except Exception as exc:  # one part down must not hide the others
            doc[name] = None
            doc["problems"].append(f"{name}: {type(exc).__name__}: {exc}")

    part("queue", lambda: target.queue_depth(target.queue_url))
    part("dlq", lambda: sum(target.queue_depth(target.dlq_url).values()))
    part("max_cps", lambda: {"ceiling": target.ceiling(), "live": target.live()})
    live = doc["max_cps"]["live"] if doc.get("max_cps") else None
    part("effective_cps", lambda: target.effective_cps(live) if live is not None else None)
    part("dials_last_minute", target.dials_last_minute)
    part("redis", target.redis_health)
    if doc.get("redis") and doc["redis"].get("ok") is False:
        doc["problems"].append(f"redis: {doc['redis'].get('error') or doc['redis'].get('detail')}")
    part("closed_loop", target.closed_loop)
    # The measured rate and the deferrals come from one read (one Redis hash, or CloudWatch).
    part("activity", target.activity)
    activity = doc.pop("activity") or {}
    doc["measured_cps"], doc["deferred"] = activity.get("measured_cps"), activity.get("deferred")
    if target.kind == "local" and not activity and not any(p.startswith("activity") for p in doc["problems"]):
        doc["problems"].append("activity: no figures from the local pipeline (`local up` publishes them every second)")
    if target.kind == "local":
        doc["listening"] = target.where()
    else:
        doc["stack_outputs"] = target.where()
    return doc


def status_lines(doc: dict) -> list[str]:
    lines = [f"{doc['target']}  ({time.strftime('%H:%M:%S')})"]
    q = doc.get("queue")
    lines.append(
        f"  queue        visible {q['visible']}  in flight {q['in_flight']}  delayed {q['delayed']}"
        if q
        else "  queue        ?"
    )
    lines.append(f"  DLQ          {doc['dlq'] if doc.get('dlq') is not None else '?'}")
    rate = doc.get("max_cps")
    if rate:
        live = "STOPPED (0)" if rate["live"] == 0 else f"{rate['live']:g}"
        lines.append(f"  MAX_CPS      live {live}  ceiling {rate['ceiling']:g}")
    eff = doc.get("effective_cps")
    configured = f"{eff:.1f} calls/s configured" if eff is not None else "? configured (no data)"
    lines.append(f"  effective    {configured}; measured {measured_text(doc.get('measured_cps'))}")
    dials = doc.get("dials_last_minute")
    if dials:
        per = dials.get("by_campaign")
        detail = ", ".join(f"{c} {n}" for c, n in sorted(per.items())) if per else "per campaign: n/a"
        lines.append(f"  dials (60 s) {dials['total']}  [{detail}]")
    deferred = doc.get("deferred")
    if deferred is not None:
        span = window_text(deferred["window_seconds"])
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(deferred["by_reason"].items(), key=lambda rn: -rn[1]))
        lines.append(f"  deferred     {deferred['total']} in {span}" + (f": {reasons}" if reasons else ""))
    redis = doc.get("redis")
    if redis:
        health = {True: "ok", False: "DOWN", None: "unknown"}[redis.get("ok")]
        extra = (
            f" ping {redis['ping_ms']} ms" if "ping_ms" in redis else f" ({redis.get('detail') or redis.get('error')})"
        )
        lines.append(f"  redis        {health}{extra}")
    loop = doc.get("closed_loop")
    if loop:
        live = loop.get("fleet_live_calls")
        lines.append(f"  live calls   {live if live is not None else '?'} (fleet)")
        for campaign, facts in sorted(loop.get("campaigns", {}).items()):
            rate = facts.get("answer_rate")
            lines.append(
                f"    {campaign:<16} live {facts.get('live_calls', 0):g}  answer rate "
                f"{'?' if rate is None else f'{rate:.0%}'}  pace {facts.get('pace_factor', 1.0):g}"
            )
    lines += [f"  PROBLEM      {p}" for p in doc["problems"]]
    return lines


def window_text(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return "the last minute" if seconds == 60 else f"the last {seconds / 60:g} minutes"
    return f"the last {seconds:.0f} s" if seconds >= 10 else f"the last {seconds:g} s"


def measured_text(measured: dict | None) -> str:
    """The calls sent per second over the window the source allows (10 s locally, a minute from
    CloudWatch), and how many calls that is."""
    if not measured:
        return "?"
    span = window_text(measured["window_seconds"])
    if "to" in measured:  # CloudWatch's: a minute of the clock
        span = f"the last full minute ({measured['from'][11:16]}-{measured['to'][11:16]} UTC)"
    if measured["calls_per_second"] is None:
        return f"? over {span} (no data)"
    return f"{measured['calls_per_second']:.1f} calls/s over {span} ({measured['dials']} sent)"


def cmd_status(args: argparse.Namespace) -> int:
    target = target_of(args)
    assert target is not None
    if not args.watch:
        doc = status_document(target)
        emit(args, doc, status_lines(doc))
        return FAILED if doc["problems"] else OK
    # With --json, one document per line (JSON lines) for a script to read as it comes; the text is
    # redrawn in place on a terminal, and written one block after another anywhere else.
    redraw = not args.json and sys.stdout.isatty()
    try:
        first = True
        while True:
            doc = status_document(target)
            if args.json:
                text = json.dumps(doc, default=str)
            elif redraw:  # home and clear to the end
                text = ("\x1b[2J" if first else "") + "\x1b[H\x1b[J" + "\n".join(status_lines(doc))
            else:
                text = ("" if first else "\n") + "\n".join(status_lines(doc))
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            first = False
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return OK


# -- dlq ------------------------------------------------------------------------------------------


# SQS has no peek: to read a message is to receive it (targets.masked_dlq_messages).
LISTING_IS_A_RECEIVE = (
    "listing received each message shown once (SQS has no peek): its receive count includes this listing; "
    "it stays in the DLQ, visible again at once, and a redrive sends it back as a new message"
)


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from dialctl.targets import masked_dlq_messages

    target = target_of(args)
    assert target is not None
    messages = masked_dlq_messages(target, args.limit)
    depth = target.queue_depth(target.dlq_url)
    doc = {"target": target.name, "dlq_depth": depth["visible"] + depth["in_flight"], "messages": messages,
           "reason": "not kept on the message: search the handlers' logs for its messageId",
           "listing": LISTING_IS_A_RECEIVE}  # fmt: skip
    lines = [f"{target.name}: {doc['dlq_depth']} in the DLQ, showing {len(messages)}"]
    for m in messages:
        lines.append(
            f"  {m['messageId']}  {m['campaignId']}/{m['contactId']}  {m['phoneNumber']}  "
            f"attempts {m['attempts']}  receives {m['receiveCount']}  sent {m['sentAt']}"
        )
    if messages:
        lines.append(f"  reason: {doc['reason']}")
        lines.append(f"  note: {LISTING_IS_A_RECEIVE}")
    emit(args, doc, lines)
    return OK


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    target = target_of(args)
    assert target is not None
    depth = target.queue_depth(target.dlq_url)
    handle = target.redrive(args.max_per_second)
    task: dict = {}
    deadline = time.monotonic() + args.timeout
    while True:
        tasks = target.move_tasks()
        task = tasks[0] if tasks else {}
        if not args.wait or task.get("Status") in ("COMPLETED", "FAILED", "CANCELLED") or time.monotonic() > deadline:
            break
        time.sleep(2)
    doc = {"target": target.name, "task_handle": handle, "dlq_depth_before": depth["visible"], "task": task}
    lines = [
        f"{target.name}: redrive started (task {handle}) for {depth['visible']} messages back to the dial-tasks queue",
        f"  status {task.get('Status', '?')}, moved {task.get('ApproximateNumberOfMessagesMoved', '?')}"
        f" of {task.get('ApproximateNumberOfMessagesToMove', '?')}",
    ]
    emit(args, doc, lines)
    return FAILED if task.get("Status") == "FAILED" else OK


# -- local up -------------------------------------------------------------------------------------


def cmd_local_up(args: argparse.Namespace) -> int:
    from dialctl.local_up import LocalService, describe, kept_waiting, running

    state_file: Path = args.state_file
    other = running(state_file)
    if other:
        raise Failure(f"a local pipeline is already running (pid {other['pid']}); its state is in {state_file}")
    # The handlers log JSON lines to stdout; they go to a file of this service's own, beside its
    # state file (not the demo's handlers.log, which `make local` truncates).
    log_path = log_file_for(state_file)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    real_stdout = sys.stdout
    handler_log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 (open for the service's life)
    os.environ.setdefault("LOG_LEVEL", "INFO")
    # Ctrl-C and a plain `kill` both stop the service cleanly.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    sys.stdout = handler_log
    service = LocalService(
        state_file, env=args.env, max_cps=args.max_cps, visibility_timeout_seconds=args.visibility_timeout,
        keep=args.keep,
    )  # fmt: skip
    notes = sys.stderr if args.json else real_stdout
    interrupted = False
    try:
        state = service.start()
        waiting = 0 if args.keep else kept_waiting(service.kept_file)
        doc = {**state, "state_file": str(state_file), "handler_log": str(log_path), "keep": args.keep,
               "restored": service.restored, "kept_waiting": waiting}  # fmt: skip
        if args.json:
            print(json.dumps(doc, indent=2), file=real_stdout, flush=True)
        else:
            print(f"local pipeline up ({state['env']} settings, pid {state['pid']}); Ctrl-C to stop", file=real_stdout)
            for label, where in describe(state):
                print(f"  {label:<17} {where}", file=real_stdout)
            print(f"  {'state file':<17} {state_file}", file=real_stdout)
            print(f"  {'handler logs':<17} {log_path}", file=real_stdout, flush=True)
        if service.restored:
            print(f"restored {restored_text(service.restored)} kept by the last `local up --keep`",
                  file=notes, flush=True)  # fmt: skip
        if waiting:
            print(f"{waiting} tasks kept by an earlier `local up --keep` wait in {service.kept_file}: "
                  "`local up --keep` sends them again", file=notes, flush=True)  # fmt: skip
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        interrupted = True
        if not args.keep:
            print(f"stopping: {dropped_on_stop(service)}", file=notes, flush=True)
    finally:
        service.stop()
        sys.stdout = real_stdout
        handler_log.close()
    if interrupted and args.keep and service.kept is not None:
        where = f" in {service.kept_file}" if sum(service.kept.values()) else ""
        print(f"stopping: kept {restored_text(service.kept)}{where}; `local up --keep` sends them again",
              file=notes, flush=True)  # fmt: skip
    return OK


def restored_text(counts: dict[str, int]) -> str:
    return f"{counts.get('tasks', 0)} queued dial tasks and {counts.get('dlq', 0)} in the DLQ"


def cmd_local_down(args: argparse.Namespace) -> int:
    from dialctl.local_up import down

    result = down(args.state_file, purge=args.purge, timeout_seconds=args.timeout)
    tag = "{" + result["redis_key_prefix"] + "}"
    keys = (
        f"removed {result['purged_keys']} Redis keys under {tag}"
        if args.purge
        else f"its Redis keys stay under {tag} (--purge removes them)"
    )
    emit(args, result, [f"local pipeline (pid {result['pid']}) stopped; {keys}"])
    return OK


def log_file_for(state_file: Path) -> Path:
    return state_file.with_name(state_file.stem + ".log")


def dropped_on_stop(service: Any) -> str:
    """What goes with the local queues when the service stops: they live in this process only."""
    if service.run is None:
        return "nothing was queued"
    try:
        queues = service.run.queues
        queued = sum(queues.depth().values())
        attributes = queues.client.get_queue_attributes(QueueUrl=queues.dlq_url, AttributeNames=["All"])
        dead = int(attributes["Attributes"].get("ApproximateNumberOfMessages", 0))
    except Exception as exc:  # the local SQS endpoint is this process's; report, never hide the stop
        return f"could not count the queued tasks ({type(exc).__name__}: {exc})"
    return (
        f"{queued} queued dial tasks and {dead} in the DLQ are dropped with the local queues "
        "(`local up --keep` keeps them across a restart)"
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# -- parser ---------------------------------------------------------------------------------------


def non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a number >= 0")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def add_target(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The target options, together under one heading of the command's --help. Added to each
    command rather than through a parent parser: argparse moves a parent's mutually exclusive
    options (--local, --stack) out of their group, under "options"."""
    group = parser.add_argument_group("target", "where the command acts: --local or --stack NAME")
    exclusive = group.add_mutually_exclusive_group()
    exclusive.add_argument("--local", action="store_true", help="the local pipeline started by `dialctl local up`")
    exclusive.add_argument("--stack", metavar="NAME", help="a deployed stack, e.g. DialPipeline-prod (its outputs)")
    group.add_argument("--region", help="AWS region of --stack (default: the AWS SDK's)")
    group.add_argument(
        "--state-file", type=Path, default=default_state_file(),
        help="with --local: where `local up` wrote its endpoints (default: %(default)s; env DIALCTL_STATE_FILE)",
    )  # fmt: skip
    return group


def build_parser() -> argparse.ArgumentParser:
    from stacks.settings import ENVIRONMENTS

    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")

    parser = argparse.ArgumentParser(
        prog="dialctl",
        description="Operate the dial-task pipeline: its rate, its queues, its DLQ; deployed or local.",
        epilog="Exit status: 0 ok; 1 rows rejected or an operation failed; 2 usage error.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    rate = commands.add_parser("rate", help="the live MAX_CPS (show, set; 0 stops dialing)",
                               description="The live MAX_CPS: the dialers pace at min(live, ceiling) and pick a "
                               "change up within 10 s, no deploy. The ceiling is the stack's MaxCps parameter.")  # fmt: skip
    rate_commands = rate.add_subparsers(dest="rate_command", metavar="ACTION", required=True)
    show = rate_commands.add_parser("show", parents=[as_json], help="the ceiling and the live value",
                                    description="Show the MAX_CPS ceiling and the live value.")  # fmt: skip
    add_target(show)
    show.set_defaults(run=cmd_rate_show)
    set_ = rate_commands.add_parser(
        "set", parents=[as_json], help="set the live value (0: the kill switch)",
        description="Set the live MAX_CPS. A value over the ceiling is refused (exit 2). 0 stops all dialing "
        "and keeps every task in the queue (deferred a few seconds at a time) until the rate is raised again.",
    )  # fmt: skip
    set_.add_argument("value", type=non_negative, metavar="N", help="calls per second, 0 to stop")
    add_target(set_)
    set_.set_defaults(run=cmd_rate_set)

    enqueue = commands.add_parser(
        "enqueue", parents=[as_json], help="validate a CSV or JSON-lines file and send its tasks",
        description="Validate every row (campaignId, contactId, phoneNumber required; attempts a whole number "
        ">= 0; phoneNumber valid E.164; campaign ids that exist when the database is reachable), report each bad "
        "row by line number, and send the good ones in batches of 10 with MessageGroupId = campaignId. "
        "Exit 0 when every row was valid, 1 when any was rejected (the valid ones are still sent).",
    )  # fmt: skip
    enqueue.add_argument("file", metavar="FILE", help="CSV with a header row, or JSON lines (.jsonl)")
    enqueue.add_argument("--dry-run", action="store_true", help="validate only; needs no target")
    enqueue.add_argument("--processes", type=positive_int, default=min(4, os.cpu_count() or 1),
                         help="processes checking and sending (default: %(default)s)")  # fmt: skip
    enqueue.add_argument("--threads", type=positive_int, default=4, help="senders per process (default: %(default)s)")
    enqueue.add_argument("--progress", action=argparse.BooleanOptionalAction, default=sys.stderr.isatty(),
                         help="progress bars on stderr (default: when stderr is a terminal)")  # fmt: skip
    add_target(enqueue).add_argument(
        "--database-url", help="with --stack: a PostgreSQL URL to check campaign ids against"
    )
    enqueue.set_defaults(run=cmd_enqueue)

    status = commands.add_parser(
        "status", parents=[as_json], help="queues, DLQ, rate, dials per campaign, Redis health",
        description="Queue visible / in flight / delayed, DLQ depth, MAX_CPS ceiling and live value, the "
        "effective rate as configured beside the measured one (calls sent per second: over the last 10 s locally, "
        "the last full minute from CloudWatch, whose standard resolution is a minute), deferrals by reason over "
        "the last 5 minutes, dials in the last minute (per campaign locally), Redis health, live calls (fleet and per "
        "campaign), answer rate and pace factor per campaign. Locally, --json also says where each part listens. "
        "Exit 1 when a part cannot be read.",
    )  # fmt: skip
    status.add_argument("--watch", action="store_true",
                        help="refresh until Ctrl-C: in place on a terminal; with --json one document per line")  # fmt: skip
    status.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (default: %(default)s)")
    add_target(status)
    status.set_defaults(run=cmd_status)

    dlq = commands.add_parser("dlq", help="look into the dead-letter queue, send it back",
                              description="The dial-tasks dead-letter queue.")  # fmt: skip
    dlq_commands = dlq.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    dlq_list = dlq_commands.add_parser(
        "list", parents=[as_json], help="messages in the DLQ (phone numbers masked)",
        description="List DLQ messages with masked phone numbers and receive counts; they stay in the DLQ. "
        "SQS has no peek: listing receives each message shown once (its receive count goes up by one; the DLQ "
        "has no redrive policy of its own, so nothing moves) and makes it visible again at once. A redrive "
        "sends messages back as new ones, their counts afresh.",
    )  # fmt: skip
    dlq_list.add_argument("--limit", type=positive_int, default=20, help="at most this many (default: %(default)s)")
    add_target(dlq_list)
    dlq_list.set_defaults(run=cmd_dlq_list)
    redrive = dlq_commands.add_parser(
        "redrive", parents=[as_json], help="move every DLQ message back to the dial-tasks queue",
        description="Start an SQS message move task (StartMessageMoveTask) from the DLQ back to the queue "
        "that dead-lettered its messages; each comes back as a new message with a fresh receive count.",
    )  # fmt: skip
    redrive.add_argument("--max-per-second", type=positive_int, help="limit the move rate (AWS only)")
    redrive.add_argument("--wait", action="store_true", help="wait until the move task has finished")
    redrive.add_argument("--timeout", type=float, default=600, help="with --wait: give up after this many seconds")
    add_target(redrive)
    redrive.set_defaults(run=cmd_dlq_redrive)

    local = commands.add_parser("local", help="the local pipeline as a service",
                                description="The local pipeline on this machine.")  # fmt: skip
    local_commands = local.add_subparsers(dest="local_command", metavar="ACTION", required=True)
    up = local_commands.add_parser(
        "up", parents=[as_json], help="run the local pipeline until Ctrl-C",
        description="Run the whole pipeline locally (PostgreSQL and Redis, the local SQS endpoint, the worker "
        "stand-in, the pipe and the real handlers) until Ctrl-C; prints where each part listens and writes "
        "the state file the --local commands read. A second `up` while one runs exits 1. Its queues live in "
        "this process: stopping drops their tasks (and says how many), unless --keep keeps them for the next "
        "`up --keep`.",
    )  # fmt: skip
    up.add_argument("--env", default="dev", choices=sorted(ENVIRONMENTS), help="whose settings (default: %(default)s)")
    up.add_argument("--max-cps", type=non_negative, help="the MAX_CPS ceiling (default: the environment's)")
    up.add_argument("--visibility-timeout", type=positive_int, default=10,
                    help="seconds (default: %(default)s; the settings' value makes a failed batch wait minutes)")  # fmt: skip
    up.add_argument("--keep", action="store_true",
                    help="keep the queued tasks across a restart: written beside the state file when it stops "
                    "(.kept.jsonl), sent again by the next `local up --keep`")  # fmt: skip
    up.add_argument("--state-file", type=Path, default=default_state_file(), help="default: %(default)s")
    up.set_defaults(run=cmd_local_up)
    local_down = local_commands.add_parser(
        "down", parents=[as_json], help="stop the running local pipeline; --purge: remove its Redis keys",
        description="Stop the local pipeline that `local up` runs (as Ctrl-C in its terminal would) and wait "
        "until it has stopped. With --purge, then remove its Redis keys: every key under its prefix "
        "{local-...}, which each `up` draws afresh. Exit 1 when none runs.",
    )  # fmt: skip
    local_down.add_argument("--purge", action="store_true", help="remove the run's Redis keys once it stopped")
    local_down.add_argument("--timeout", type=float, default=60, help="seconds to wait for it (default: %(default)s)")
    local_down.add_argument("--state-file", type=Path, default=default_state_file(), help="default: %(default)s")
    local_down.set_defaults(run=cmd_local_down)

    from dialctl import calls

    calls.register(commands, add_target, as_json)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command. A reader that goes away (`dialctl status | head -3`) ends it quietly with
    128 + SIGPIPE, as a tool killed by the signal would: the Python docs' recipe (signal handling)."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # inside the try: buffered output meets the closed pipe here, not at exit
    except BrokenPipeError:
        _stdout_to_devnull()
        return CLOSED_PIPE
    return code


def _stdout_to_devnull() -> None:
    """What is still buffered goes nowhere instead of failing again when Python exits."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # not a real file (a test's capture): nothing to redirect
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on a usage error, 0 on --help
    if getattr(args, "local_command", None) == "up" and args.max_cps == 0:
        parser.error("--max-cps must be above 0 (it is the ceiling; `rate set 0` stops dialing)")
    try:
        return args.run(args)
    except UsageError as exc:
        print(f"dialctl: error: {exc}", file=sys.stderr)
        return USAGE
    except Failure as exc:
        print(f"dialctl: {exc}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        return FAILED
    except BrokenPipeError:
        raise  # an OSError, but the reader's doing: main() ends quietly
    except Exception as exc:  # botocore, redis, network: one line, not a traceback
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, (BotoCoreError, ClientError, OSError)) or type(exc).__module__.startswith("redis"):
            print(f"dialctl: {type(exc).__name__}: {exc}", file=sys.stderr)
            return FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
