"""The restore hold's states: reserve.lua's RESTORE table is layout's RestoreState, and the script
names every state it reports from that table."""

from __future__ import annotations

import re

from dialer_worker.admission import RestoreState

from .test_admission_script import RESERVE, lua_table


def test_the_scripts_restore_states_are_the_enums():
    assert lua_table(RESERVE, "RESTORE") == {s.name: s.value for s in RestoreState}
    reported = set(re.findall(r"restore = (RESTORE\.\w+)", RESERVE))
    assert reported == {f"RESTORE.{s.name}" for s in RestoreState}
