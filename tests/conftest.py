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
