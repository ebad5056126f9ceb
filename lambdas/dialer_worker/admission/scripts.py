"""The Redis scripts' sources, shipped as .lua files inside this package."""

from __future__ import annotations

from importlib.resources import files

RESERVE = "reserve.lua"
FINISH = "finish.lua"
SLOW_DOWN = "slow_down.lua"


def source(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")
