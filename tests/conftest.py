"""Every layer: the layer markers and the environment Powertools needs outside Lambda.

Nothing here touches a service, so the unit layer runs with no database or Redis at all. The
servers and AWS emulators are fixtures of the layers that need them (support/services.py, loaded
by integration/conftest.py and e2e/conftest.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Each folder directly under tests/ is one layer, and its tests carry that layer's marker.
LAYERS = {"unit": "unit", "integration": "integration", "infrastructure": "infra", "e2e": "e2e"}

# Powertools needs these to emit metrics outside Lambda; the values are the tests' own.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "DialPipeline/test")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def pytest_collection_modifyitems(config, items):
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        layer = Path(item.path).resolve().relative_to(tests_dir).parts[0]
        if layer not in LAYERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in one of the layers {sorted(LAYERS)}")
        item.add_marker(LAYERS[layer])


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_xdist_groups(config, items):
    """`--dist loadgroup` groups by an `@group` suffix a worker puts on each grouped test's node id.
    pytest-xdist 3.8 writes it to `item._nodeid`, which pytest 9.2's structured ids no longer read
    (pytest-dev/pytest-xdist#1386), so with the pinned two every group was ignored without a word
    (each worker synthesized the CDK app). After xdist's own hook, the suffix goes where pytest
    reads it; a no-op once xdist puts it there itself."""
    if not getattr(config.option, "loadgroup", False):  # set in xdist workers only
        return
    from _pytest.nodeid import NodeId

    for item in items:
        names = {
            str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")
        }
        suffix = "@" + "_".join(sorted(names))
        if names and not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(item.nodeid + suffix)
