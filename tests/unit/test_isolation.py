"""The unit layer needs no service: its conftest chain loads no database driver, Redis client, local
pipeline or AWS emulator, and the whole layer passes with PostgreSQL and Redis unreachable."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
# What the service fixtures (support/services.py) bring in; the unit layer's fixtures never do.
SERVICE_MODULES = {"psycopg", "redis", "local_pipeline", "db_migrate", "moto", "boto3", "aws_cdk"}
# Nor does the code under test: the Dispatcher knows the pacer's faults as PacerUnavailable, and
# the adapters' own tests (the campaign store's retries, the ledger's partitions) are integration.
NEVER_IN_UNIT = {"psycopg", "redis", "local_pipeline", "moto", "aws_cdk"}

IMPORT_CONFTESTS = """
import importlib.util, json, sys
for i, path in enumerate(sys.argv[1:]):
    spec = importlib.util.spec_from_file_location(f"unit_conftest_{i}", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""

RUN_LAYER = """
import json, sys, pytest
code = pytest.main(sys.argv[1:])
print(json.dumps({"exit": int(code), "modules": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def closed_port() -> int:
    """A port nothing listens on (bound, then released: nothing else asked for it meanwhile)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def python(code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_unit_layers_conftest_chain_imports_no_service_module():
    conftests = [str(TESTS / "conftest.py"), *sorted(str(p) for p in (TESTS / "unit").rglob("conftest.py"))]
    done = python(IMPORT_CONFTESTS, *conftests, env={"PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])})
    assert done.returncode == 0, done.stderr
    assert SERVICE_MODULES & set(json.loads(done.stdout.splitlines()[-1])) == set()


def test_the_unit_layer_passes_with_postgres_and_redis_unreachable():
    port = str(closed_port())
    unreachable = {"DB_HOST": "127.0.0.1", "DB_PORT": port, "REDIS_HOST": "127.0.0.1", "REDIS_PORT": port}
    argv = ["tests/unit", "-q", "-p", "no:cacheprovider", "--deselect", "tests/unit/test_isolation.py"]
    done = python(RUN_LAYER, *argv, env=unreachable)
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["exit"] == 0, done.stdout[-3000:]
    assert NEVER_IN_UNIT & set(result["modules"]) == set()
