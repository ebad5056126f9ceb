"""The Lambda packages' bytecode: compiled by an interpreter of the package's Python version where
the machine has one, otherwise left out with one warning per synth, never a failed synth.

Each test bundles a tiny function of its own (an empty requirements file: pip installs nothing,
needs no network), so what is checked is the real copy, pip, prune and compile steps."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stacks.constructs.bundling import BYTECODE_PYTHON_ENV, PYTHON_VERSION, PipLocalBundling, bytecode_python

RUNNING_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(autouse=True)
def fresh_lookup():
    """The lookup (and its warning) is once per process; each test starts from none."""
    bytecode_python.cache_clear()
    yield
    bytecode_python.cache_clear()


@pytest.fixture
def lambdas_dir(tmp_path) -> Path:
    root = tmp_path / "lambdas"
    for package in ("hello", "shared"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "hello" / "handler.py").write_text("def handler(event, context):\n    return event\n")
    (root / "hello" / "requirements.txt").write_text("# nothing beyond the standard library\n")
    return root


@pytest.fixture
def no_interpreter(tmp_path, monkeypatch):
    """A machine without the runtime's Python: nothing on PATH, no pyenv, no override."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("HOME", str(empty))
    monkeypatch.delenv(BYTECODE_PYTHON_ENV, raising=False)


def bundle(bundling: PipLocalBundling, out: Path) -> list[str]:
    assert bundling.try_bundle(str(out)) is True
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def test_without_the_runtimes_python_the_package_ships_without_bytecode_and_says_so_once(
    tmp_path, lambdas_dir, no_interpreter, capsys
):
    bundling = PipLocalBundling(function="hello", lambdas_dir=lambdas_dir)
    assert bundling.bytecode_python is None
    # Two packages, as a synth bundles several: the warning comes once.
    for out in (tmp_path / "out1", tmp_path / "out2"):
        files = bundle(bundling, out)
        assert files == ["hello/__init__.py", "hello/handler.py", "hello/requirements.txt", "shared/__init__.py"]
    err = capsys.readouterr().err
    assert err.count("warning:") == 1
    assert f"no Python {PYTHON_VERSION} found" in err and "without bytecode" in err
    assert f"pyenv install {PYTHON_VERSION}" in err and BYTECODE_PYTHON_ENV in err


def test_with_a_matching_python_every_module_gets_unchecked_bytecode(tmp_path, lambdas_dir, monkeypatch, capsys):
    """The running interpreter stands in for the runtime's: the package is built for its version."""
    monkeypatch.setenv(BYTECODE_PYTHON_ENV, sys.executable)
    bundling = PipLocalBundling(function="hello", python_version=RUNNING_VERSION, lambdas_dir=lambdas_dir)
    assert bundling.bytecode_python == sys.executable
    out = tmp_path / "out"
    files = bundle(bundling, out)
    tag = sys.implementation.cache_tag
    sources = [f for f in files if f.endswith(".py")]
    assert sources == ["hello/__init__.py", "hello/handler.py", "shared/__init__.py"]
    for source in sources:
        package, name = source.rsplit("/", 1)
        pyc = out / package / "__pycache__" / f"{name.removesuffix('.py')}.{tag}.pyc"
        # unchecked-hash: the CDK zips every file with one fixed timestamp, which timestamp-checked
        # bytecode would never match; hash-based, never checked against the source, it is used.
        assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01, source
    assert "warning:" not in capsys.readouterr().err


def test_the_override_counts_only_when_its_version_matches(monkeypatch):
    monkeypatch.setenv(BYTECODE_PYTHON_ENV, sys.executable)
    assert bytecode_python(RUNNING_VERSION) == sys.executable
    assert bytecode_python("2.0") is None, "bytecode of another version would be ignored by the runtime"


def test_a_package_without_bytecode_is_another_asset(lambdas_dir, monkeypatch):
    """A package bundled without bytecode is not reused from cdk.out once an interpreter exists."""
    monkeypatch.setenv(BYTECODE_PYTHON_ENV, sys.executable)
    with_bytecode = PipLocalBundling(function="hello", python_version=RUNNING_VERSION, lambdas_dir=lambdas_dir)
    hash_with = with_bytecode.asset_hash()
    bytecode_python.cache_clear()
    monkeypatch.delenv(BYTECODE_PYTHON_ENV)
    monkeypatch.setenv("PATH", str(lambdas_dir / "hello"))
    monkeypatch.setenv("HOME", str(lambdas_dir / "hello"))
    assert with_bytecode.bytecode_python is None
    assert with_bytecode.asset_hash() != hash_with
