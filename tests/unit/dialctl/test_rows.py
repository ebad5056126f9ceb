"""dialctl enqueue's row checks and file reading, offline: no target, no services."""

from __future__ import annotations

import json

import pytest

from dialctl.rows import FileProblem, check, check_record, read_records
from enrich_dial_task.records import parse_record
from shared.drops import Drop


def valid(**overrides):
    return {"campaignId": "spring-sale", "contactId": "c-1", "phoneNumber": "+14155550100", **overrides}


def test_a_valid_row_passes_and_gets_attempts_zero():
    record = valid()
    assert check_record(record) is None and record["attempts"] == 0


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"campaignId": ""}, "campaignId is missing"),
        ({"contactId": None}, "contactId is missing"),
        ({"campaignId": 7}, "campaignId must be text"),
        ({"contactId": "x" * 129}, "longer than 128"),
        ({"phoneNumber": ""}, "phoneNumber is missing"),
        ({"phoneNumber": "0501234567"}, "not E.164"),
        ({"phoneNumber": "+1 415 555 0100"}, "not E.164"),
        ({"phoneNumber": "+1415555"}, "not a valid number"),
        ({"phoneNumber": "+10005550100"}, "not a valid number"),
        ({"attempts": -1}, "attempts must be a whole number >= 0"),
        ({"attempts": True}, "attempts must be"),
        ({"attempts": "2"}, "attempts must be"),
        ({"metadata": [1]}, "metadata must be a JSON object"),
    ],
)
def test_each_bad_field_has_its_reason(overrides, reason):
    assert reason in check_record(valid(**overrides))


def test_reasons_never_show_a_whole_phone_number():
    reason = check_record(valid(phoneNumber="+10005550123"))
    assert "0005550123" not in reason and "0123" in reason
    assert reason.endswith("not a valid number (invalid_phone_number)")


def test_csv_rows_are_reported_by_their_line_number(tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_text(
        "campaignId,contactId,phoneNumber,attempts,metadata\n"
        "spring-sale,c1,+14155550100,0,\n"
        'spring-sale,c2,+14155550101,,"{""tier"": ""gold""}"\n'
        "\n"
        "spring-sale,c3,+1415,0,\n"
        "spring-sale,c4,+14155550102,two,\n"
        "unknown,c5,+14155550103,1,\n"
    )
    checked = check(read_records(path), known_campaigns=lambda ids: {"spring-sale"})
    assert [(line, body["contactId"]) for line, body in checked.valid] == [(2, "c1"), (3, "c2")]
    assert checked.valid[1][1]["metadata"] == {"tier": "gold"} and checked.valid[1][1]["attempts"] == 0
    assert [(r.line, r.reason.split(" ")[0]) for r in checked.rejected] == [
        (5, "phoneNumber"),
        (6, "attempts"),
        (7, "campaignId"),
    ]
    assert checked.campaigns_checked


def test_json_lines_keep_unknown_fields_and_report_bad_lines(tmp_path):
    path = tmp_path / "contacts.jsonl"
    lines = [json.dumps(valid(timeZone="America/Los_Angeles")), "not json", "[1, 2]", "", json.dumps(valid(attempts=2))]
    path.write_text("\n".join(lines) + "\n")
    checked = check(read_records(path))
    assert [line for line, _ in checked.valid] == [1, 5]
    assert checked.valid[0][1]["timeZone"] == "America/Los_Angeles"
    assert [(r.line, r.reason) for r in checked.rejected] == [
        (2, "not JSON (Expecting value)"),
        (3, "not a JSON object"),
    ]
    assert not checked.campaigns_checked


def test_unreachable_database_means_campaigns_are_not_checked(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(valid(campaignId="anything")) + "\n")
    checked = check(read_records(path), known_campaigns=lambda ids: None)
    assert len(checked.valid) == 1 and not checked.campaigns_checked


def test_a_csv_without_a_required_column_is_a_file_problem(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("campaignId,contactId\nx,y\n")
    with pytest.raises(FileProblem, match="phoneNumber"):
        list(read_records(path))


def test_a_missing_file_is_a_file_problem(tmp_path):
    with pytest.raises(FileProblem, match="no such file"):
        list(read_records(tmp_path / "nope.csv"))


def test_the_format_is_sniffed_without_a_known_suffix(tmp_path):
    path = tmp_path / "contacts.txt"
    path.write_text(json.dumps(valid()) + "\n")
    assert len(check(read_records(path)).valid) == 1


# Rows the enrichment would drop: dialctl rejects each, naming the enrichment's own DropReason.
DROPPED_BY_THE_ENRICHMENT = [
    {"campaignId": "   "},
    {"campaignId": "\t"},
    {"contactId": "  "},
    {"campaignId": "x" * 129},
    {"phoneNumber": "+1 415 555 0100"},
    {"attempts": -1},
    {"metadata": "gold"},
    {"timeZone": 5},
    {"expiresAt": "2026-05-01T18:00:00"},
]


@pytest.mark.parametrize("overrides", DROPPED_BY_THE_ENRICHMENT, ids=lambda o: json.dumps(o)[:40])
def test_a_json_lines_row_gets_the_enrichments_verdict(tmp_path, overrides):
    body = valid(**overrides)
    drop = parse_record({"messageId": "m-1", "body": json.dumps(body)})
    assert isinstance(drop, Drop)
    path = tmp_path / "contacts.jsonl"
    path.write_text(json.dumps(body) + "\n")
    checked = check(read_records(path))
    [rejected] = checked.rejected
    assert not checked.valid and rejected.reason.endswith(f"({drop.reason})")


def test_a_whitespace_only_campaign_id_is_rejected_as_blank(tmp_path):
    path = tmp_path / "contacts.jsonl"
    path.write_text(json.dumps(valid(campaignId="   ")) + "\n")
    [rejected] = check(read_records(path)).rejected
    assert (rejected.line, rejected.reason) == (1, "campaignId is blank (invalid_campaign_id)")


def test_a_row_the_enrichment_keeps_passes(tmp_path):
    body = valid(campaignId=" spring-sale ", metadata=None, timeZone="Europe/Paris", expiresAt="2026-05-01T18:00:00Z")
    assert not isinstance(parse_record({"messageId": "m-1", "body": json.dumps(body)}), Drop)
    assert check_record(body) is None
