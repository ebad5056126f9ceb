"""Reading and checking a contacts file for `dialctl enqueue`: CSV with a header, or JSON lines.

Every row is checked offline (required fields, attempts, E.164 numbers that libphonenumber calls
valid); campaign ids are checked against the database separately, when it can be reached. A bad
row is reported by its line number and reason, and never sent. The rules are the enrichment's
(lambdas/enrich_dial_task/records.py), plus `phonenumbers.is_valid_number`, so a row that passes
here is not dropped for its shape later.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers

from shared.masking import mask_phone

REQUIRED = ("campaignId", "contactId", "phoneNumber")
MAX_ID_LENGTH = 128
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
                return f"attempts {value!r} is not a whole number"
        elif name == "metadata":
            try:
                record[name] = json.loads(value)
            except ValueError:
                return "metadata is not JSON"
        else:
            record[name] = value
    return record


def check_record(record: dict) -> str | None:
    """The reason a record cannot be sent, or None. Fills in attempts (0) when absent."""
    for name in ("campaignId", "contactId"):
        value = record.get(name)
        if value is None or value == "":
            return f"{name} is missing"
        if not isinstance(value, str):
            return f"{name} must be text"
        if len(value) > MAX_ID_LENGTH:
            return f"{name} is longer than {MAX_ID_LENGTH} characters"
    phone = record.get("phoneNumber")
    if phone is None or phone == "":
        return "phoneNumber is missing"
    if not isinstance(phone, str):
        return "phoneNumber must be text"
    problem = phone_problem(phone)
    if problem:
        return problem
    attempts = record.setdefault("attempts", 0)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        return f"attempts must be a whole number >= 0, got {attempts!r}"
    if "metadata" in record and not isinstance(record["metadata"], dict):
        return "metadata must be a JSON object"
    return None


def phone_problem(phone: str) -> str | None:
    """None for an E.164 number libphonenumber calls valid; the reason otherwise (number masked)."""
    shown = mask_phone(phone)
    if not phone.startswith("+") or not phone[1:].isdigit() or not 8 <= len(phone) <= 16:
        return f"phoneNumber {shown} is not E.164 (a + and 7 to 15 digits, e.g. +14155550100)"
    try:
        parsed = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return f"phoneNumber {shown} is not a phone number"
    if not phonenumbers.is_valid_number(parsed):
        return f"phoneNumber {shown} is not a valid number"
    return None


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
                    result.rejected.append(Rejected(line, f"campaignId {body['campaignId']!r} does not exist"))
            result.valid = keep
    result.rejected.sort(key=lambda r: r.line)
    return result
