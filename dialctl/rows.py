"""Reading and checking a contacts file for `dialctl enqueue`: CSV with a header, or JSON lines.

Every row is checked offline, by the rules the pipeline itself applies: the enrichment's parser
(`shared.dial_task.parse_task`) and the dialer's test of a dialable number
(`dialer_worker.compliance.number_facts`); campaign ids are checked against the database
separately, when it can be reached. A bad row is reported by its line number and a reason that
ends with the DropReason the pipeline would drop it for, and is never sent: a row that passes here
is not dropped for its shape later.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialer_worker.compliance import number_facts
from shared.dial_task import MAX_ID_LENGTH, parse_task
from shared.drops import DropReason
from shared.masking import mask_phone

REQUIRED = ("campaignId", "contactId", "phoneNumber")
JSON_SUFFIXES = {".jsonl", ".ndjson", ".json"}


class FileProblem(Exception):
    """The file as a whole cannot be read (missing, unknown format, CSV header without a required
    column): a usage error, not a bad row."""


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


@dataclass
class Checked:
    valid: list[tuple[int, dict]] = field(default_factory=list)  # (line, message body)
    rejected: list[Rejected] = field(default_factory=list)
    campaigns_checked: bool = False

    @property
    def rows(self) -> int:
        return len(self.valid) + len(self.rejected)


def file_format(path: Path) -> str:
    """ "csv" or "jsonl": by suffix, else by the first character that is not blank."""
    if path.suffix.lower() == ".csv":
        return "csv"
    if path.suffix.lower() in JSON_SUFFIXES:
        return "jsonl"
    with path.open(encoding="utf-8-sig") as f:
        for line in f:
            if line.strip():
                return "jsonl" if line.lstrip().startswith("{") else "csv"
    return "csv"


def read_records(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, record) per row: a dict for a row that parsed, a str (the reason) otherwise."""
    if not path.is_file():
        raise FileProblem(f"{path}: no such file")
    if file_format(path) == "jsonl":
        yield from _json_lines(path)
    else:
        yield from _csv_rows(path)


def _json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"not JSON ({exc.msg})"
                continue
            yield number, record if isinstance(record, dict) else "not a JSON object"


def _csv_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [name for name in REQUIRED if name not in header]
        if missing:
            raise FileProblem(f"{path}: the CSV header has no {', '.join(missing)} column (header: {','.join(header)})")
        for row in reader:
            if None in row:  # more cells than header columns
                yield reader.line_num, f"{len(header) + len(row[None])} cells for {len(header)} columns"
                continue
            if all(not (value or "").strip() for value in row.values()):
                continue
            yield reader.line_num, _from_csv(row)


def _from_csv(row: dict) -> Any:
    """CSV cells are text: attempts becomes a number, metadata a JSON object, empty cells absent."""
    record: dict[str, Any] = {}
    for name, value in row.items():
        value = (value or "").strip()
        if value == "":
            continue
        if name == "attempts":
            try:
                record[name] = int(value)
            except ValueError:
                return f"attempts {value!r} is not a whole number ({DropReason.INVALID_ATTEMPTS})"
        elif name == "metadata":
            try:
                record[name] = json.loads(value)
            except ValueError:
                return f"metadata is not JSON ({DropReason.INVALID_METADATA})"
        else:
            record[name] = value
    return record


def check_record(record: dict) -> str | None:
    """The reason a record cannot be sent, or None. Fills in attempts (0) when absent."""
    task = parse_task(record)
    if isinstance(task, DropReason):
        return f"{_explain(task, record)} ({task})"
    valid, _ = number_facts(task.phone_number)
    if not valid:
        return f"phoneNumber {mask_phone(task.phone_number)} is not a valid number ({DropReason.INVALID_PHONE_NUMBER})"
    record.setdefault("attempts", 0)
    return None


def _explain(reason: DropReason, record: dict) -> str:
    """What is wrong with the field `parse_task` refused, in words (phone numbers masked)."""
    name = {
        DropReason.INVALID_CAMPAIGN_ID: "campaignId",
        DropReason.INVALID_CONTACT_ID: "contactId",
        DropReason.INVALID_PHONE_NUMBER: "phoneNumber",
    }.get(reason)
    if name is not None:
        value = record.get(name)
        if value is None or value == "":
            return f"{name} is missing"
        if not isinstance(value, str):
            return f"{name} must be text"
        if name == "phoneNumber":
            return f"phoneNumber {mask_phone(value)} is not E.164 (a + and up to 15 digits, e.g. +14155550100)"
        if not value.strip():
            return f"{name} is blank"
        return f"{name} is longer than {MAX_ID_LENGTH} characters"
    if reason is DropReason.INVALID_ATTEMPTS:
        return f"attempts must be a whole number >= 0, got {record.get('attempts')!r}"
    if reason is DropReason.INVALID_METADATA:
        return "metadata must be a JSON object"
    if reason is DropReason.INVALID_TIME_ZONE:
        return f"timeZone must be text of at most {MAX_ID_LENGTH} characters"
    if reason is DropReason.INVALID_EXPIRES_AT:
        return "expiresAt must be an ISO 8601 time with an offset, e.g. 2026-05-01T18:00:00Z"
    return "not a dial task"


def check(
    records: Iterable[tuple[int, Any]],
    known_campaigns: Callable[[set[str]], set[str] | None] | None = None,
    on_row: Callable[[], None] | None = None,
) -> Checked:
    """Checks every record; `known_campaigns(ids)` returns the ids that exist, or None when the
    database cannot be reached (then campaigns are not checked)."""
    result = Checked()
    for line, record in records:
        reason = record if isinstance(record, str) else check_record(record)
        if reason:
            result.rejected.append(Rejected(line, reason))
        else:
            result.valid.append((line, record))
        if on_row:
            on_row()
    if known_campaigns is not None and result.valid:
        wanted = {body["campaignId"] for _, body in result.valid}
        known = known_campaigns(wanted)
        if known is not None:
            result.campaigns_checked = True
            keep = []
            for line, body in result.valid:
                if body["campaignId"] in known:
                    keep.append((line, body))
                else:
                    result.rejected.append(
                        Rejected(
                            line, f"campaignId {body['campaignId']!r} does not exist ({DropReason.UNKNOWN_CAMPAIGN})"
                        )
                    )
            result.valid = keep
    result.rejected.sort(key=lambda r: r.line)
    return result
