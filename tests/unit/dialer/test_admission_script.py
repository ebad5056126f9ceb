"""The admission script and its Python face agree: the same decision codes, the same KEYS and
ARGV layout. Read from the .lua sources, so a change on one side alone fails here."""

from __future__ import annotations

import dataclasses
import re

from dialer_worker.admission import AdmissionRequest, BatchArgs, Decision, Keys, scripts
from dialer_worker.admission.layout import pack_reserve

RESERVE = scripts.source(scripts.RESERVE)


def lua_table(source: str, name: str) -> dict[str, int]:
    """A `local NAME = {key = 1, ...}` table of integers, as declared in the script."""
    match = re.search(rf"^local {name} = \{{([^}}]*)\}}", source, re.MULTILINE)
    assert match, f"no `local {name} = {{...}}` in reserve.lua"
    pairs = re.findall(r"(\w+)\s*=\s*(\d+)", match.group(1))
    assert pairs, f"{name} declares nothing"
    return {key: int(value) for key, value in pairs}


def test_the_scripts_decision_codes_are_the_enums():
    assert lua_table(RESERVE, "DECISION") == {d.name: d.value for d in Decision}
    # Every decision the script hands out is named from that table, never a bare number.
    handed_out = re.findall(r"(?<!function )decide\(([^,]+),", RESERVE)
    assert handed_out and all(code.startswith("DECISION.") for code in handed_out), handed_out
    assert {code.removeprefix("DECISION.") for code in handed_out} == {d.name for d in Decision}


def test_the_scripts_layout_is_the_packers():
    layout = lua_table(RESERVE, "LAYOUT")
    batch = BatchArgs(*range(len(dataclasses.fields(BatchArgs))))
    keys = Keys("p")
    none_keys, none_args = pack_reserve(keys, batch, [])
    one_keys, one_args = pack_reserve(keys, batch, [AdmissionRequest("call", "campaign")])
    assert layout == {
        "batch_keys": len(none_keys) - 1,  # the epoch's key comes last
        "task_keys": len(one_keys) - len(none_keys),
        "batch_args": len(none_args),
        "task_args": len(one_args) - len(none_args),
    }
    assert none_keys[-1] == one_keys[-1] == keys.epoch
    # The script reads ARGV[1..n] under BatchArgs' own names, in BatchArgs' order.
    read = dict(re.findall(r"^local (\w+) = tonumber\(ARGV\[(\d+)\]\)", RESERVE, re.MULTILINE))
    assert [name for name, _ in sorted(read.items(), key=lambda kv: int(kv[1]))] == [
        f.name for f in dataclasses.fields(BatchArgs)
    ]
