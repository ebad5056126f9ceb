"""`dialctl calls`: was this contact called, and when? Every attempt and disposition in the call
ledger (call_attempts), oldest first; `dialctl calls export` writes a campaign's rows as CSV.

Numbers are masked unless --show-numbers. The ledger is in PostgreSQL: --local reads the local
pipeline's database (the state file `dialctl local up` writes, else the one `make local` uses on
DB_HOST/DB_PORT); --stack needs --database-url (the database is inside the VPC: a tunnel or a
bastion's forwarded port).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from dialctl.targets import UsageError, default_state_file, read_state
from shared.masking import mask_phone

# The local pipeline's database (dialctl/local_up.py and local_pipeline/demo.py use this name).
LOCAL_DATABASE = "dialpipe_local"
COLUMNS = (
    "call_id",
    "parent_call_id",
    "campaign_id",
    "contact_id",
    "phone_number",
    "attempt",
    "disposition",
    "reason",
    "admitted_at",
    "sent_at",
    "dropped_at",
    "worker_status",
    "time_zones",
    "outcome",
    "ended_at",
    "duration_seconds",
    "recorded_at",
)
# When the attempt happened: admitted (its slot), else sent, else dropped, else first recorded.
WHEN = "COALESCE(admitted_at, sent_at, dropped_at, recorded_at)"
SELECT = f"SELECT {', '.join(COLUMNS)} FROM call_attempts"


def register(
    commands: Any, add_target: Callable[[argparse.ArgumentParser], Any], as_json: argparse.ArgumentParser
) -> None:
    """The `calls` subcommand (cli.build_parser adds it with this one call)."""
    calls = commands.add_parser(
        "calls", parents=[as_json], help="was this contact called, and when (the call ledger)",
        description="Every attempt to a number or contact, oldest first: dialed (with its outcome once the "
        "call ended) or dropped with its reason; retries point to the attempt they follow. "
        "`calls export --campaign C --since D [--until D]` writes the campaign's rows as CSV on stdout. "
        "Numbers are masked unless --show-numbers.",
    )  # fmt: skip
    calls.add_argument("action", nargs="?", choices=["export"], help="export: CSV of a campaign's rows")
    who = calls.add_mutually_exclusive_group()
    who.add_argument("--phone", metavar="NUMBER", help="E.164, e.g. +14155550100")
    who.add_argument("--contact", metavar="ID", help="the scheduler's contactId")
    calls.add_argument("--campaign", metavar="ID", help="only this campaign (required by export)")
    calls.add_argument("--since", type=_date, metavar="DATE", help="export: from this date or ISO 8601 time (UTC)")
    calls.add_argument("--until", type=_date, metavar="DATE", help="export: before this date or time (default: now)")
    calls.add_argument("--show-numbers", action="store_true", help="print phone numbers whole")
    target = add_target(calls)
    target.add_argument("--database-url", help="the ledger's PostgreSQL URL (required with --stack)")
    calls.set_defaults(run=cmd_calls)


def _date(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def database_url(args: argparse.Namespace) -> str:
    if args.database_url:
        return args.database_url
    if getattr(args, "stack", None):
        raise UsageError("--stack: give --database-url (the ledger's database is inside the VPC)")
    if not getattr(args, "local", False):
        raise UsageError("say where: --local, or --database-url (with or without --stack)")
    state = read_state(getattr(args, "state_file", None) or default_state_file())
    if state and state.get("postgres_dsn"):
        return str(state["postgres_dsn"])
    host, port = os.environ.get("DB_HOST", "127.0.0.1"), os.environ.get("DB_PORT", "5432")
    user, password = os.environ.get("DB_USER", "postgres"), os.environ.get("DB_PASSWORD", "")
    auth = f"{user}:{password}" if password else user
    return f"postgresql://{auth}@{host}:{port}/{LOCAL_DATABASE}"


def cmd_calls(args: argparse.Namespace) -> int:
    if args.action == "export":
        if not args.campaign or not args.since:
            raise UsageError("calls export: --campaign and --since are required")
        return export(args)
    if not (args.phone or args.contact):
        raise UsageError("calls: --phone NUMBER or --contact ID")
    rows = attempts(database_url(args), phone=args.phone, contact=args.contact, campaign=args.campaign)
    shown = [shown_row(row, args.show_numbers) for row in rows]
    if args.json:
        import json

        print(json.dumps({"calls": shown}, indent=2, default=str))
    else:
        for line in lines(shown):
            print(line)
    return 0


def attempts(url: str, *, phone: str | None, contact: str | None, campaign: str | None) -> list[dict[str, Any]]:
    """Every row for the number (or contact), in one campaign or all, oldest first."""
    import psycopg

    where, params = ["phone_number = %s" if phone else "contact_id = %s"], [phone or contact]
    if campaign:
        where.append("campaign_id = %s")
        params.append(campaign)
    query = f"{SELECT} WHERE {' AND '.join(where)} ORDER BY {WHEN}, attempt, call_id"
    with psycopg.connect(url, connect_timeout=5) as conn:
        return [dict(zip(COLUMNS, row, strict=True)) for row in conn.execute(query, params)]


def shown_row(row: dict[str, Any], show_numbers: bool) -> dict[str, Any]:
    number = row["phone_number"]
    return {**row, "phone_number": number if show_numbers or number is None else mask_phone(number)}


def lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["no calls recorded"]
    out = []
    for row in rows:
        when = row["admitted_at"] or row["sent_at"] or row["dropped_at"] or row["recorded_at"]
        if row["disposition"] == "dialed":
            duration = f" ({row['duration_seconds']:g} s)" if row["duration_seconds"] is not None else ""
            ended = f"{row['outcome']}{duration}" if row["outcome"] else "no outcome yet"
            zones = f"  judged in {row['time_zones']}" if row["time_zones"] else ""
            what = f"dialed    {ended}{zones}"
        elif row["disposition"] == "dropped":
            what = f"dropped   {row['reason']}"
        elif row["outcome"]:
            what = f"outcome {row['outcome']} without its attempt's record (orphan)"
        else:
            what = "retry planned, not dialed yet"
        retry = f"  retry of {row['parent_call_id']}" if row["parent_call_id"] else ""
        out.append(
            f"{_iso(when)}  {row['campaign_id']}  {row['contact_id']}  {row['phone_number']}  "
            f"attempt {row['attempt']}  {what}  call {row['call_id']}{retry}"
        )
    return out


def export(args: argparse.Namespace) -> int:
    """CSV on stdout: the campaign's rows first recorded in [since, until), oldest first."""
    import psycopg

    until = args.until or datetime.now(UTC)
    query = f"{SELECT} WHERE campaign_id = %s AND recorded_at >= %s AND recorded_at < %s ORDER BY {WHEN}, call_id"
    writer = csv.writer(sys.stdout)
    writer.writerow(COLUMNS)
    with psycopg.connect(database_url(args), connect_timeout=5) as conn:
        for values in conn.execute(query, (args.campaign, args.since, until)):
            row = shown_row(dict(zip(COLUMNS, values, strict=True)), args.show_numbers)
            writer.writerow(_iso(row[c]) if isinstance(row[c], datetime) else row[c] for c in COLUMNS)
    return 0


def _iso(value: Any) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else str(value)
