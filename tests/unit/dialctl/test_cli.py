"""dialctl's arguments and exit codes, without any service: usage errors exit 2, --help everywhere,
--dry-run needs no target."""

from __future__ import annotations

import json

import pytest

from dialctl.cli import build_parser, main

COMMANDS = [
    [], ["rate"], ["rate", "show"], ["rate", "set"], ["enqueue"], ["status"],
    ["dlq"], ["dlq", "list"], ["dlq", "redrive"], ["local"], ["local", "up"], ["local", "down"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "dialctl")
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: dialctl" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["rate"],
        ["rate", "set", "-1", "--local"],
        ["rate", "set", "fast", "--local"],
        ["rate", "show", "--local", "--stack", "DialPipeline-dev"],
        ["dlq", "list", "--limit", "0", "--local"],
        ["local", "up", "--env", "moon"],
        ["local", "up", "--max-cps", "0"],
        ["enqueue"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "error" in capsys.readouterr().err


def test_a_command_without_a_target_is_a_usage_error(capsys):
    assert main(["status"]) == 2
    assert "--local" in capsys.readouterr().err


def test_local_commands_without_a_running_pipeline_fail_with_a_hint(tmp_path, capsys):
    assert main(["rate", "show", "--local", "--state-file", str(tmp_path / "none.json")]) == 1
    assert "dialctl local up" in capsys.readouterr().err
    (tmp_path / "dead.json").write_text(json.dumps({"pid": 2**22 + 12345}))
    assert main(["status", "--local", "--state-file", str(tmp_path / "dead.json")]) == 1
    assert "not running" in capsys.readouterr().err


def test_a_dry_run_needs_no_target_and_exits_1_on_any_rejected_row(tmp_path, capsys):
    path = tmp_path / "c.csv"
    path.write_text("campaignId,contactId,phoneNumber\ns,c1,+14155550100\ns,c2,12345\n")
    assert main(["enqueue", str(path), "--dry-run", "--json", "--processes", "1"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["valid"], doc["sent"], doc["rejected"][0]["line"]) == (1, 0, 3)
    path.write_text("campaignId,contactId,phoneNumber\ns,c1,+14155550100\n")
    assert main(["enqueue", str(path), "--dry-run", "--processes", "1"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing sent" in out
    # No target is why the campaign ids went unchecked, not an unreachable database.
    assert "campaign ids NOT checked (no target:" in out and "reach" not in out


def test_a_dry_run_rejects_a_whitespace_campaign_id_as_the_enrichment_drops_it(tmp_path, capsys):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"campaignId": "   ", "contactId": "c1", "phoneNumber": "+14155550100"}) + "\n")
    assert main(["enqueue", str(path), "--dry-run", "--json", "--processes", "1"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["valid"], doc["rejected"]) == (0, [{"line": 1, "reason": "campaignId is blank (invalid_campaign_id)"}])


def test_an_unreadable_file_is_a_usage_error(tmp_path, capsys):
    assert main(["enqueue", str(tmp_path / "missing.csv"), "--dry-run"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_local_down_without_a_running_pipeline_fails_and_says_so(tmp_path, capsys):
    assert main(["local", "down", "--purge", "--state-file", str(tmp_path / "none.json")]) == 1
    assert "no local pipeline is running" in capsys.readouterr().err


def test_the_parser_knows_the_targets():
    args = build_parser().parse_args(["status", "--stack", "DialPipeline-prod", "--region", "eu-west-1", "--watch"])
    assert (args.stack, args.region, args.watch, args.local) == ("DialPipeline-prod", "eu-west-1", True, False)


TARGET_OPTIONS = ("--local", "--stack", "--region", "--state-file")


@pytest.mark.parametrize(
    "command",
    [["rate", "show"], ["rate", "set"], ["enqueue"], ["status"], ["dlq", "list"], ["dlq", "redrive"]],
    ids=" ".join,
)
def test_the_target_options_stand_together_under_one_heading_of_the_help(command, capsys):
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = capsys.readouterr().out
    options, target = text.split("\noptions:\n")[1].split("\ntarget:\n")
    for option in TARGET_OPTIONS + (("--database-url",) if command == ["enqueue"] else ()):
        assert f"  {option}" in target and f"  {option}" not in options, option
