"""Lambda packages built on this machine, without Docker: the function's package, `lambdas/shared`,
any extra directories, and its pinned requirements installed for the Lambda platform by pip."""

from __future__ import annotations

import functools
import glob
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS_DIR = ROOT / "lambdas"
MIGRATIONS_DIR = ROOT / "migrations"

# Python 3.13, not 3.14: the package ships bytecode where it can, which only the runtime's own minor
# version can compile, and where we build (Debian 12, pyenv) there is a 3.13 but no 3.14. Like 3.14,
# the 3.13 runtime is Amazon Linux 2023 (glibc 2.34), where psycopg-binary's manylinux_2_28 wheels load.
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
PYTHON_VERSION = RUNTIME.name.removeprefix("python")
# psycopg-binary 3.3 publishes aarch64 wheels for glibc 2.28 only; the Python 3.12+ runtimes run
# on Amazon Linux 2023 (glibc 2.34), so both tags install.
PIP_PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
# Data a handler never loads, left out of every package: libphonenumber's geocoder (40 MB) and
# carrier (2.4 MB) data; the dialer uses only its number metadata and time zones.
NEVER_LOADED = ("phonenumbers/geodata", "phonenumbers/carrierdata")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
# Where to look for an interpreter of the runtime's version, besides PATH.
BYTECODE_PYTHON_ENV = "LAMBDA_BYTECODE_PYTHON"


@functools.cache  # one lookup, and at most one warning, per synth (one process)
def bytecode_python(version: str = PYTHON_VERSION) -> str | None:
    """An interpreter of `version` (bytecode is specific to a minor version): the one named by
    $LAMBDA_BYTECODE_PYTHON, else pythonX.Y on PATH, else pyenv's newest X.Y. Without one, the
    packages ship without bytecode: they work, their cold starts are slower; that is said once."""
    pyenv = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")))
    candidates = [os.environ.get(BYTECODE_PYTHON_ENV), shutil.which(f"python{version}"), *reversed(pyenv)]
    for candidate in filter(None, candidates):
        probe = [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
        found = subprocess.run(probe, capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip() == version:
            return candidate
    print(
        f"warning: no Python {version} found ({BYTECODE_PYTHON_ENV}, python{version} on PATH, pyenv), so the "
        f"Lambda packages ship without bytecode and every cold start compiles each module it imports (a "
        f"handler's cold import takes about three times as long). For bytecode: pyenv install {version}, "
        f"or set {BYTECODE_PYTHON_ENV} to a Python {version}.",
        file=sys.stderr,
    )
    return None


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """Builds a function package on this machine: the function's package, `lambdas/shared`, any
    extra directories, and its pinned requirements installed for the Lambda platform by pip."""

    def __init__(
        self,
        *,
        function: str,
        extra_dirs: Sequence[Path] = (),
        python_version: str = PYTHON_VERSION,
        lambdas_dir: Path = LAMBDAS_DIR,
    ) -> None:
        self.function = function
        self.extra_dirs = tuple(extra_dirs)
        # The runtime's; the tests build packages for the running interpreter's, from their own dir.
        self.python_version = python_version
        self.lambdas_dir = lambdas_dir

    @property
    def sources(self) -> list[Path]:
        return [self.lambdas_dir / self.function, self.lambdas_dir / "shared", *self.extra_dirs]

    @property
    def requirements(self) -> Path:
        return self.lambdas_dir / self.function / "requirements.txt"

    @property
    def bytecode_python(self) -> str | None:
        return bytecode_python(self.python_version)

    def pip_command(self, output_dir: str) -> list[str]:
        platforms = [arg for platform in PIP_PLATFORMS for arg in ("--platform", platform)]
        return [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            *platforms, "--only-binary=:all:", "--implementation", "cp",
            # No compile here: pip would compile with this interpreter's version (compile_command does it).
            "--python-version", self.python_version, "--no-compile",
            # Each requirements.txt pins its whole closure; --no-deps keeps out what the Lambda
            # runtime already provides (boto3, botocore).
            "--no-deps",
            "--target", output_dir, "-r", str(self.requirements),
        ]  # fmt: skip

    @staticmethod
    def compile_command(output_dir: str, python: str) -> list[str]:
        """Bytecode for the whole package: without it, every cold start compiles every module from
        source (/var/task is read-only, so nothing is cached). unchecked-hash: the CDK zips assets
        with one fixed timestamp, which timestamp-checked .pyc files would never match (they would
        be ignored), and the read-only sources cannot drift from their bytecode."""
        return [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", output_dir]

    def asset_hash(self) -> str:
        """Changes exactly when what goes into the package changes (sources, pins, target, bytecode
        or not: a package built without it is not reused once there is an interpreter for it)."""
        bytecode = "unchecked-hash" if self.bytecode_python else "no-bytecode"
        digest = hashlib.sha256(f"{self.python_version}|{PIP_PLATFORMS}|{self.function}|{bytecode}".encode())
        for source in self.sources:
            files = sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            for path in files:
                digest.update(str(path.relative_to(self.lambdas_dir.parent)).encode())
                digest.update(path.read_bytes())
        return digest.hexdigest()

    def try_bundle(self, output_dir: str, options: object = None, **_: object) -> bool:
        # Every function pins its dependencies (lambdas/<function>/requirements.txt); a package
        # without them would deploy and then fail on its first import.
        for needed in [*self.sources, self.requirements]:
            if not needed.exists():
                raise FileNotFoundError(f"cannot bundle {self.function}: {needed} is missing")
        for source in self.sources:
            shutil.copytree(source, Path(output_dir) / source.name, ignore=_IGNORE, dirs_exist_ok=True)
        subprocess.run(self.pip_command(output_dir), check=True)
        prune(output_dir)
        python = self.bytecode_python
        if python is not None:
            subprocess.run(self.compile_command(output_dir, python), check=True)
        return True


def prune(output_dir: str) -> list[str]:
    """Removes NEVER_LOADED from a package; returns what was there."""
    removed = []
    for relative in NEVER_LOADED:
        path = Path(output_dir) / relative
        if path.exists():
            shutil.rmtree(path)
            removed.append(relative)
    return removed


def function_code(function: str, *, extra_dirs: Sequence[Path] = ()) -> lambda_.Code:
    bundling = PipLocalBundling(function=function, extra_dirs=extra_dirs)
    return lambda_.Code.from_asset(
        str(LAMBDAS_DIR),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=bundling.asset_hash(),
        exclude=["**/__pycache__", "**/*.pyc"],
        # The image is never pulled: local bundling always succeeds or raises.
        bundling=BundlingOptions(image=DockerImage.from_registry("unused"), local=bundling),
    )
