"""`python -m local_pipeline`: dial tasks through filter, enrichment, pacing and dialing, locally.

Starts (or reuses) PostgreSQL and Redis, applies the migration, seeds campaigns, enqueues a mix of
good and bad tasks, runs the pipe with the chosen environment's settings until the queue drains
and every call's records are in the ledger (and its retries dialed), and prints what happened to
every task: the calls and drops, and the ledger's rows against them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from local_pipeline import demo_report
from local_pipeline.database import DIALABLE_CONFIG

ROOT = Path(__file__).resolve().parent.parent
GOOD_CONFIG = {**DIALABLE_CONFIG, "maxConcurrentCalls": 50}
# Retried by the ledger at demo speed: an unanswered or busy call comes back seconds after it
# ended (a deployed policy says minutes or hours), at most twice per contact.
DEMO_RETRY = {"no_answer": {"afterSeconds": 3, "maxAttempts": 2}, "busy": {"afterSeconds": 3, "maxAttempts": 2}}
RETRIED_CAMPAIGN = "spring-sale"
LOW_ANSWER = "low-answer"
CAMPAIGNS = [
    (RETRIED_CAMPAIGN, "active", {**GOOD_CONFIG, "retry": DEMO_RETRY}),
    # The closed loop: at most 6 live calls; and a campaign whose answers are poor at first.
    ("renewals", "active", {**GOOD_CONFIG, "maxCps": 5, "maxConcurrentCalls": 6}),
    (LOW_ANSWER, "active", {**GOOD_CONFIG, "maxCps": 5, "minAnswerRate": 0.5}),
    # Paused at the start (its tasks wait), resumed a few seconds in.
    ("paused-promo", "paused", GOOD_CONFIG),
]
# Answer-rate pacing at demo speed: the deployed cool-down is 30 s over a window of 50.
DEMO_PACING = {"answer_rate_window": 20, "answer_rate_min_samples": 10, "answer_rate_cool_down_seconds": 4}
RESUME_AFTER_S = 5
# How long each accepted call lasts at the worker stand-in (uniform); its mean bounds the rate of a
# campaign with maxConcurrentCalls (demo_report.campaign_ceiling).
CALL_SECONDS = (1.0, 3.0)


# The demo's recipients are in whichever of these zones it is closest to 1 pm in, so the legal
# calling hours (08:00-21:00 local) are open whenever the demo runs; the tasks say so (timeZone).
DEMO_ZONES = (
    "Pacific/Honolulu", "America/Los_Angeles", "America/Denver", "America/Chicago", "America/New_York",
    "America/Sao_Paulo", "Atlantic/Azores", "Europe/London", "Europe/Berlin", "Europe/Athens", "Asia/Dubai",
    "Asia/Kolkata", "Asia/Bangkok", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland",
)  # fmt: skip
# A campaign whose own window opens a minute after the demo starts (--opens-in): its task waits,
# then goes out.
OPENS_SOON = "opens-soon"
OPENS_IN_S = 60.0
DO_NOT_CALL_NUMBER = "+14155550199"
DATABASE = "dialpipe_local"


def demo_zone(now: datetime) -> str:
    def hours_from_1pm(zone: str) -> float:
        local = now.astimezone(ZoneInfo(zone))
        return abs(local.hour + local.minute / 60 - 13)

    return min(DEMO_ZONES, key=hours_from_1pm)


def opens_soon_campaign(now: datetime, zone: str, opens_in_s: float = OPENS_IN_S) -> tuple[str, str, dict]:
    """Open from `opens_in_s` after `now` to 21:00 in `zone`. Open hours are whole minutes: they
    start at the opening's minute, and a restricted period closes that minute's seconds before it."""
    opens = (now + timedelta(seconds=opens_in_s)).astimezone(ZoneInfo(zone))
    minute = opens.replace(second=0, microsecond=0)
    weekday = opens.strftime("%A").upper()
    window: dict = {"timeZone": zone, "openHours": {weekday: [[minute.strftime("%H:%M"), "21:00"]]}}
    if opens > minute:
        local_start, local_end = (t.replace(tzinfo=None).isoformat() for t in (minute, opens))
        window["restrictedPeriods"] = [{"start": local_start, "end": local_end}]
    return OPENS_SOON, "active", {**GOOD_CONFIG, "callingWindow": window}


def compliance_tasks(now: datetime, zone: str) -> list:
    """A task outside its campaign's window (it opens soon), an expired one, and one to a number
    on the do-not-call list."""
    return [
        {"campaignId": OPENS_SOON, "contactId": "opens-soon-1", "phoneNumber": "+14155550198", "timeZone": zone},
        {"campaignId": "spring-sale", "contactId": "expired", "phoneNumber": "+14155550197", "timeZone": zone,
         "expiresAt": (now - timedelta(minutes=1)).isoformat()},
        {"campaignId": "spring-sale", "contactId": "do-not-call", "phoneNumber": DO_NOT_CALL_NUMBER, "timeZone": zone},
    ]  # fmt: skip


def task_mix(count: int, seed: int = 1, zone: str = "America/Los_Angeles") -> list:
    """Mostly valid tasks, plus one of every kind of bad input and some duplicates."""
    rng = random.Random(seed)
    bodies: list = []
    for n in range(count):
        campaign = "renewals" if n % 5 == 0 else LOW_ANSWER if n % 5 in (1, 2) else "spring-sale"
        # A dialable US number: the exchange starts with 2-9.
        phone = f"+1415{rng.randrange(2, 10)}{rng.randrange(10**6):06d}"
        bodies.append(
            {"campaignId": campaign, "contactId": f"contact-{n}", "phoneNumber": phone, "attempts": 0, "timeZone": zone}
        )
    bad = [
        {"campaignId": "spring-sale", "contactId": "bad-phone", "phoneNumber": "0501234567"},
        {"campaignId": "no-such-campaign", "contactId": "ghost", "phoneNumber": "+14155550001"},
        # In the demo's zone like the others: resumed, it is dialed whatever the hour.
        {"campaignId": "paused-promo", "contactId": "paused", "phoneNumber": "+14155550002", "timeZone": zone},
        "this is not JSON",
        {"campaignId": "spring-sale", "contactId": "no-phone"},
        {"campaignId": "spring-sale", "contactId": "bad-attempts", "phoneNumber": "+14155550003", "attempts": -1},
    ]
    duplicates = bodies[: max(1, count // 20)]
    mixed = bodies + bad + duplicates
    rng.shuffle(mixed)
    return mixed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="dev", help="whose settings to run with (dev, staging, prod)")
    parser.add_argument("--tasks", type=int, default=200, help="valid tasks to enqueue (bad ones are added)")
    parser.add_argument("--max-cps", type=float, help="override the environment's MAX_CPS")
    parser.add_argument(
        "--visibility-timeout", type=int, default=10,
        help="seconds; the settings' value makes a retried batch wait two minutes",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--series", action="store_true", help="with --json: add the per-second series the chart draws")
    parser.add_argument("--chart", metavar="PNG", help="write a chart of calls per second with the MAX_CPS line")
    parser.add_argument(
        "--opens-in", type=float, default=OPENS_IN_S, metavar="SECONDS",
        help="when the opens-soon campaign's calling window opens, after the start",
    )  # fmt: skip
    parser.add_argument(
        "--database", default=DATABASE,
        help="the PostgreSQL database (created if missing) it seeds, and whose ledger it empties first",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)

    from stacks.settings import settings_for

    settings = settings_for(args.env)
    # The handlers log JSON lines to stdout; in the demo they go to a file, the summary to stdout.
    log_path = ROOT / ".local" / "handlers.log"
    log_path.parent.mkdir(exist_ok=True)
    real_stdout = sys.stdout
    handler_log = open(log_path, "w", encoding="utf-8")
    # The handlers' loggers hold the sys.stdout of when they are imported: import them redirected.
    with contextlib.redirect_stdout(handler_log):
        from local_pipeline.run import favour_the_stand_in

        favour_the_stand_in()  # the demo charts calls per second as the stand-in saw them
        summary = _run(settings, args)
    handler_log.close()
    sys.stdout = real_stdout
    if args.json:
        print(json.dumps(demo_report.json_document(summary.as_dict(), series=args.series), indent=2))
    else:
        _print(summary, settings.name, log_path)
    if args.chart:
        _chart(summary, args.chart)
        print(f"chart: {args.chart}", file=sys.stderr if args.json else sys.stdout)
    within = summary.peak_rolling_second <= summary.max_cps
    return 0 if summary.drained and summary.lost == 0 and summary.dialed_twice == 0 and within else 1


def _run(settings, args):
    from local_pipeline import database
    from local_pipeline.run import LocalRun
    from local_pipeline.services import reuse_or_start_postgres, reuse_or_start_redis

    pg, pg_throwaway = reuse_or_start_postgres()
    redis, redis_throwaway = reuse_or_start_redis()
    dbname = args.database
    try:
        now, now_monotonic = datetime.now(UTC), time.monotonic()
        zone = demo_zone(now)
        campaigns = [*CAMPAIGNS, opens_soon_campaign(now, zone, args.opens_in)]
        dsn = database.prepare(pg, dbname, campaigns)
        database.add_to_do_not_call(dsn, DO_NOT_CALL_NUMBER, "demo")
        # The ledger starts empty each run: the demo's contacts (and callIds) are the same every time.
        database.clear_ledger(dsn)
        run = LocalRun(settings, postgres=pg, dbname=dbname, redis=redis, max_cps=args.max_cps,
                       visibility_timeout_seconds=args.visibility_timeout,
                       call_events_overrides=DEMO_PACING)  # fmt: skip
        try:
            # Calls last 1 to 3 s; low-answer is answered 10% of the time until its pace falls.
            run.worker.duration_s = lambda rng: rng.uniform(*CALL_SECONDS)
            run.worker.answer_rates = {LOW_ANSWER: 0.1}
            queue_samples: list[tuple[float, bool]] = []
            mix = task_mix(args.tasks, zone=zone)
            run.enqueue(mix + compliance_tasks(now, zone))
            total = run.enqueued
            low_answer = {b["contactId"] for b in mix if isinstance(b, dict) and b.get("campaignId") == LOW_ANSWER}

            def progress(depth):
                queue_samples.append((time.monotonic(), depth["visible"] == 0 and depth["in_flight"] == 0))
                done = total - depth["visible"] - depth["in_flight"] - depth["delayed"]
                width = 30
                filled = int(width * max(0, done) / max(1, total))
                print(
                    f"\r[{'#' * filled}{'.' * (width - filled)}] queue {depth['visible']:>5} visible "
                    f"{depth['in_flight']:>4} in flight {depth['delayed']:>4} delayed | dialed {len(run.worker.accepted()):>5}",
                    end="", file=sys.stderr, flush=True,
                )  # fmt: skip

            summary = run.run(
                timeout=args.timeout,
                progress=progress,
                during=lambda r: _closed_loop(r, low_answer),
                until_ledger_settles=True,
            )
            print(file=sys.stderr)
            calls = run.worker.accepted()
            start = min((c.at_monotonic for c in calls), default=0.0)
            summary.extra["calls_per_second"] = _per_second([c.at_monotonic for c in run.worker.calls])
            summary.extra["recipients_zone"] = zone
            # From the instant its window was set to open `--opens-in` seconds later.
            opened = [c.at_monotonic - now_monotonic for c in calls if c.body["campaignId"] == OPENS_SOON]
            summary.extra["opens_soon_dialed_after_s"] = round(min(opened), 1) if opened else None
            summary.extra["calls_per_second_by_campaign"] = {
                name: _per_second([c.at_monotonic for c in calls if c.body.get("campaignId") == name], start)
                for name in sorted({str(c.body.get("campaignId")) for c in calls})
            }
            # (seconds since the first call, {campaign: live calls, "*": the fleet's}).
            summary.extra["live_calls"] = [(round(t - start, 3), live) for t, live in run.worker.live_samples]
            _explain(summary, campaigns, calls, queue_samples)
            summary.extra["retries_dialed"] = sum(1 for c in calls if c.body.get("callId") in _retry_ids(dsn))
            return summary
        finally:
            run.close()
            _purge_keys(run)
    finally:
        if pg_throwaway:
            pg_throwaway.destroy()
        if redis_throwaway:
            redis_throwaway.destroy()


def _purge_keys(run) -> None:
    """Removes the run's Redis keys (all under its own hash tag): nothing reads them after the run,
    and its claims would stay for days in a Redis the run did not start."""
    import redis as redis_lib

    from shared.live_calls import tag

    client = redis_lib.Redis(host=run.redis.host, port=run.redis.port, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{tag(run.key_prefix)}*", count=10_000))
        for start in range(0, len(keys), 500):
            client.unlink(*keys[start : start + 500])
    finally:
        client.close()


def _closed_loop(run, low_answer: set[str]):
    """Resume the paused campaign, and give low-answer good answers once its pace has fallen (or
    stop waiting for that once every one of its tasks, `low_answer`, is dialed: a short run may
    end before the pace has the samples it needs)."""
    import redis as redis_lib

    from local_pipeline.database import set_campaign_status
    from shared.live_calls import pace_key

    client = redis_lib.Redis(host=run.redis.host, port=run.redis.port)
    started, resumed = time.monotonic(), False
    try:
        while time.monotonic() - started < 60:
            if not resumed and time.monotonic() - started >= RESUME_AFTER_S:
                set_campaign_status(run.dsn, "paused-promo", "active")
                resumed = True
            if float(client.hget(pace_key(run.key_prefix, LOW_ANSWER), "factor") or 1) <= 0.5:
                run.worker.answer_rates = {LOW_ANSWER: 0.9}
                if resumed:
                    return
            dialed = {c.body.get("contactId") for c in run.worker.accepted() if c.body.get("campaignId") == LOW_ANSWER}
            if resumed and low_answer <= dialed:
                return
            time.sleep(0.5)
    finally:
        client.close()


def _explain(summary, campaigns, calls, queue_samples) -> None:
    """The caps and what they allow, and the rate while calls were due (demo_report)."""
    configs = {name: config for name, _, config in campaigns}
    mean_call_s = sum(CALL_SECONDS) / 2
    times: dict[str, list[float]] = {}
    for call in calls:
        times.setdefault(str(call.body.get("campaignId")), []).append(call.at_monotonic)
    rates = demo_report.campaign_rates(times)
    summary.extra["achieved_by_campaign"] = rates
    caps = demo_report.caps(summary.dialed_by_campaign, configs, summary.max_cps, mean_call_s)
    summary.extra["caps"] = caps.as_dict(rates)
    achieved = demo_report.achieved_while_due([c.at_monotonic for c in calls], queue_samples)
    summary.extra["achieved_while_due"] = {
        "cps": achieved.cps,
        "due_s": achieved.due_s,
        "span_s": achieved.span_s,
        "idle_s": round(achieved.span_s - achieved.due_s, 2),
    }
    summary.extra["campaigns"] = sorted(configs)
    summary.extra["max_concurrent_calls"] = {
        n: c["maxConcurrentCalls"] for n, c in configs.items() if c.get("maxConcurrentCalls")
    }


def _retry_ids(dsn: str) -> set[str]:
    """The callIds of the ledger's retries (rows that point to a parent)."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        return {row[0] for row in conn.execute("SELECT call_id FROM call_attempts WHERE parent_call_id IS NOT NULL")}


def _per_second(times, start=None):
    if not times:
        return []
    start = min(times) if start is None else start
    buckets = [0] * (int(max(times) - start) + 1)
    for t in times:
        buckets[int(t - start)] += 1
    return buckets


def _listed(counts) -> str:
    """{"a": 1, "b": 2} as "a 1, b 2" (reasons are StrEnums: their value, not their repr)."""
    return (
        ", ".join(f"{key} {value}" for key, value in sorted((str(k), v) for k, v in (counts or {}).items())) or "none"
    )


def _print(s, env, log_path):
    print(f"local pipeline ({env} settings), {s.seconds:.1f} s, drained: {s.drained}")
    caps = s.extra.get("caps", {})
    due = s.extra.get("achieved_while_due", {})
    over = "" if s.peak_rolling_second <= s.max_cps else "  OVER MAX_CPS"
    rows = [
        ("enqueued", s.enqueued),
        ("dialed (once each)", s.dialed),
        ("dialed twice", s.dialed_twice),
        ("duplicates suppressed", s.duplicates_suppressed),
        ("filtered out by the pipe", s.filtered_out),
        *((f"dropped: {reason}", n) for reason, n in sorted(s.dropped_by_reason.items())),
        ("deferred (re-queued with a delay)", s.deferred),
        ("retried items", s.retried_items),
        ("in DLQ", s.in_dlq),
        ("lost", s.lost),
        ("MAX_CPS", f"{s.max_cps:g}"),
        ("dialed by campaign", _listed(s.dialed_by_campaign)),
        ("achieved CPS by campaign (first to last call)", _listed(s.extra.get("achieved_by_campaign"))),
        ("capped campaigns", caps.get("explained")),
        ("reachable rate", caps.get("reachable")),
        (
            "achieved CPS (while calls were due)",
            f"{due.get('cps')} over {due.get('due_s')} s "
            f"(first to last call {due.get('span_s')} s, idle {due.get('idle_s')} s left out)",
        ),
        ("peak rolling-second rate (at the worker)", f"{s.peak_rolling_second}{over}"),
        ("peak live calls (at the worker)", _listed(s.extra.get("peak_live_calls"))),
        ("deferrals by reason", _listed(s.extra.get("deferrals_by_reason"))),
        ("call events sent by the worker", s.extra.get("call_events_sent")),
        ("recipients' zone (every task's timeZone)", s.extra.get("recipients_zone")),
        ("task outside its window: dialed after (s)", s.extra.get("opens_soon_dialed_after_s")),
        *_ledger_rows(s),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    print(f"handler logs: {log_path}")


def _ledger_rows(s) -> list[tuple[str, object]]:
    """The ledger against the pipeline: a `dialed` row per call the worker took, a `dropped` row
    per drop that names its call (the pipe's filtered-out and unparsable ones name none)."""
    rows = s.extra.get("ledger_rows") or {}
    ledger = s.extra.get("ledger", {})
    drops = sum(s.dropped_by_reason.values())
    return [
        ("ledger: dialed rows / calls dialed", f"{rows.get('dialed', 0)} / {s.dialed}"),
        ("ledger: dropped rows / tasks dropped", f"{rows.get('dropped', 0)} / {drops}"),
        ("ledger: records sent by the functions", ledger.get("records_sent", 0)),
        ("ledger: rows written, records merged", f"{ledger.get('rows_written', 0)}, {ledger.get('records_merged', 0)}"),
        (f"ledger: retries enqueued ({RETRIED_CAMPAIGN}, policy)", ledger.get("retries_enqueued", 0)),
        ("ledger: retries dialed", s.extra.get("retries_dialed")),
        ("ledger: orphans (outcome, no attempt)", rows.get("orphan", 0)),
    ]


def _chart(summary, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from local_pipeline.worker_standin import FLEET

    per_second = summary.extra.get("calls_per_second", [])
    by_campaign = summary.extra.get("calls_per_second_by_campaign", {})
    live = summary.extra.get("live_calls", [])
    # Every seeded campaign gets its colour, so it is the same in both panels and from run to run.
    colours = demo_report.campaign_colours([*summary.extra.get("campaigns", []), *by_campaign])
    fig, (ax, ax_live) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    ax.bar(range(len(per_second)), per_second, width=1.0, color="#d0d7e1", label="calls to the worker")
    for name, series in by_campaign.items():
        ax.plot(range(len(series)), series, drawstyle="steps-mid", color=colours[name], label=name)
    limit = demo_report.LIMIT_COLOUR
    ax.axhline(summary.max_cps, color=limit, linestyle="--", label=f"MAX_CPS = {summary.max_cps:g}")
    ax.set_ylabel("calls per second")
    due = summary.extra.get("achieved_while_due", {})
    ax.set_title(
        f"achieved {due.get('cps', summary.achieved_cps):g} CPS while calls were due, "
        f"peak rolling second {summary.peak_rolling_second} (MAX_CPS {summary.max_cps:g})"
    )
    ax.legend(loc="upper right", fontsize=8)
    if live:
        times = [t for t, _ in live]
        peak = max(counts.get(FLEET, 0) for _, counts in live)
        ax_live.step(times, [c.get(FLEET, 0) for _, c in live], where="post", color="#333333", label="fleet")
        for name in sorted({n for _, c in live for n in c} - {FLEET}):
            ax_live.step(times, [c.get(name, 0) for _, c in live], where="post", color=colours[name], label=name)
        for name, cap in sorted(summary.extra.get("max_concurrent_calls", {}).items()):
            if cap <= peak:  # only the caps the run came near; the others are off the chart
                ax_live.axhline(cap, color=colours[name], linestyle="--", label=f"{name} maxConcurrentCalls = {cap}")
    ax_live.set_xlabel("seconds since the first call")
    ax_live.set_ylabel("live calls at the worker")
    ax_live.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
