"""Cold import time and package size of each handler, before and after, side by side in one run.

For each function and each tree (`--base`, default the merge base with main, and the working
tree) this builds:

- the Lambda package, exactly as the stack does (that tree's own `PipLocalBundling`, for the
  runtime's Python on arm64): its unzipped size is what the table reports;
- a package for THIS machine's Python and platform, with the same sources and pins, so that it can
  be imported here: once without bytecode (as the Lambda package is without it: every cold start
  compiles from source, and /var/task is read-only) and once with bytecode compiled by the
  measuring interpreter (unchecked-hash, as a read-only deployment would ship it).

Then each variant is imported N times, round robin, each time in a fresh interpreter (`-I -S`:
nothing from the venv; the Lambda runtime's boto3/botocore, precompiled, on the path after the
package, as /var/runtime is), timing `import <function>.handler` only, not interpreter start-up.
The machine is shared: compare the ratios within one run, and read the load average printed
with each table.

Run: `.venv/bin/python benchmarks/bench_cold_start.py [--runs 15] [--python /path/to/python3.13]`
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("enrich_dial_task", "dialer_worker")
# What a Lambda execution environment has set before the handler module is imported.
LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "LAMBDA_TASK_ROOT": "/var/task",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "DialPipeline/bench",
    "LOG_LEVEL": "INFO",
}
# What a first invocation imports besides the handler module (the database driver, the Redis
# client's helpers), so that a lazy import shows as moved, not as saved.
FIRST_USE = {
    "enrich_dial_task": ("psycopg",),
    "dialer_worker": (
        "redis",
        "redis.backoff",
        "redis.retry",
        "requests",
        "dialer_worker.pacing",
        "dialer_worker.deferral",
    ),
}
_CHILD = (
    "import sys, time, importlib\n"
    "sys.path[:0] = sys.argv[1:3]\n"
    "t = time.perf_counter()\n"
    "importlib.import_module(sys.argv[3])\n"
    "handler = time.perf_counter() - t\n"
    "for name in sys.argv[4:]: importlib.import_module(name)\n"
    "print(handler, time.perf_counter() - t)\n"
)


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f} ({} cores)".format(*os.getloadavg(), os.cpu_count())


def quiet(argv: list[str], **kwargs) -> None:
    """Runs a build step; its output is shown only when it fails."""
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if result.returncode:
        sys.stderr.write(result.stdout + result.stderr)
        result.check_returncode()


def tree_size(path: Path) -> tuple[float, int, int]:
    """(MB, .py files, .pyc files) of a directory, unzipped."""
    files = [p for p in path.rglob("*") if p.is_file()]
    mb = sum(p.stat().st_size for p in files) / 1e6
    return mb, sum(p.suffix == ".py" for p in files), sum(p.suffix == ".pyc" for p in files)


def base_tree(ref: str, into: Path) -> Path:
    """The repository at `ref` (its lambdas/ and stacks/), extracted with git archive."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "lambdas", "stacks", "migrations"],
                             check=True, capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def lambda_package(tree: Path, function: str, out: Path) -> Path:
    """`function`'s Lambda package built by `tree`'s own stacks/constructs/bundling.py."""
    code = (
        "import sys; from stacks.constructs.bundling import PipLocalBundling; "
        "PipLocalBundling(function=sys.argv[1]).try_bundle(sys.argv[2])"
    )
    out.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": f"{tree}:{tree / 'lambdas'}"}
    quiet([sys.executable, "-c", code, function, str(out)], cwd=tree, env=env)
    return out


def local_package(tree: Path, function: str, out: Path, python: str) -> Path:
    """The same sources and pins as the Lambda package, installed for this machine's Python."""
    for source in (tree / "lambdas" / function, tree / "lambdas" / "shared"):
        shutil.copytree(source, out / source.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    quiet(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:",
         "--no-compile", "--no-deps", "--target", str(out), "-r", str(tree / "lambdas" / function / "requirements.txt")]
    )  # fmt: skip
    return out


def compiled(package: Path, out: Path, python: str) -> Path:
    shutil.copytree(package, out)
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(out)],
                   check=True)  # fmt: skip
    return out


def runtime_libraries(out: Path, python: str) -> Path:
    """boto3 and botocore, as the Lambda runtime provides them (precompiled, as the runtime's are)."""
    quiet(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
         "--target", str(out), "boto3"]
    )  # fmt: skip
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", str(out)], check=True)
    return out


@dataclass
class Variant:
    label: str
    function: str
    path: Path
    bytecode: bool
    samples: list[float] = field(default_factory=list)  # import <function>.handler, s
    with_first_use: list[float] = field(default_factory=list)  # and what a first invocation imports, s

    def median_ms(self, first_use: bool = False) -> float:
        return statistics.median(self.with_first_use if first_use else self.samples) * 1000

    def p90_ms(self, first_use: bool = False) -> float:
        ordered = sorted(self.with_first_use if first_use else self.samples)
        return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))] * 1000


def import_once(python: str, variant: Variant, runtime: Path) -> tuple[float, float]:
    flags = ["-I", "-S"] + ([] if variant.bytecode else ["-B"])
    result = subprocess.run(
        [python, *flags, "-c", _CHILD, str(variant.path), str(runtime), f"{variant.function}.handler",
         *FIRST_USE[variant.function]],
        check=True, capture_output=True, text=True, env={"PATH": os.environ["PATH"], **LAMBDA_ENV},
    )  # fmt: skip
    handler, total = result.stdout.strip().splitlines()[-1].split()
    return float(handler), float(total)


def importtime_top(python: str, variant: Variant, runtime: Path, count: int = 8) -> list[tuple[int, str]]:
    """The modules with the largest cumulative import time (µs), one fresh run with -X importtime."""
    flags = ["-I", "-S", "-X", "importtime"] + ([] if variant.bytecode else ["-B"])
    result = subprocess.run(
        [python, *flags, "-c", _CHILD, str(variant.path), str(runtime), f"{variant.function}.handler"],
        check=True, capture_output=True, text=True, env={"PATH": os.environ["PATH"], **LAMBDA_ENV},
    )  # fmt: skip
    rows = []
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            depth = (len(name) - len(name.lstrip())) // 2
            if depth <= 2:  # top-level imports and their direct children
                rows.append((int(parts[1]), name.strip()))
    return sorted(rows, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--base", default=None, help="git ref for 'before' (default: merge base of HEAD and main)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to import with (default: this one)")
    parser.add_argument("--no-lambda-build", action="store_true", help="skip the Lambda packages (sizes)")
    parser.add_argument("--importtime", action="store_true", help="also show where the import time goes")
    args = parser.parse_args()
    base = args.base or subprocess.run(["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
                                       check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    python = args.python
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                             check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp_name:
        tmp = Path(tmp_name)
        trees = {"before": base_tree(base, tmp / "before-tree"), "after": ROOT}
        print(f"before = {base[:10]}, after = working tree; importing with Python {version} ({python})")
        started = time.perf_counter()

        if not args.no_lambda_build:
            print(f"\nLambda packages, as the stack builds them (unzipped)   [{load()}]")
            print(f"{'function':<18} {'before MB':>9} {'after MB':>9} {'ratio':>6}   files before -> after (.py/.pyc)")
            for function in FUNCTIONS:
                sizes = {label: tree_size(lambda_package(tree, function, tmp / f"lambda-{label}-{function}"))
                         for label, tree in trees.items()}  # fmt: skip
                (b_mb, b_py, b_pyc), (a_mb, a_py, a_pyc) = sizes["before"], sizes["after"]
                print(f"{function:<18} {b_mb:9.1f} {a_mb:9.1f} {a_mb / b_mb:6.2f}   {b_py}/{b_pyc} -> {a_py}/{a_pyc}")

        runtime = runtime_libraries(tmp / "runtime", python)
        variants: list[Variant] = []
        for function in FUNCTIONS:
            for label, tree in trees.items():
                source = local_package(tree, function, tmp / f"local-{label}-{function}", python)
                variants.append(Variant(label, function, source, bytecode=False))
                variants.append(
                    Variant(label, function, compiled(source, tmp / f"pyc-{label}-{function}", python), True)
                )
        print(f"\n(built in {time.perf_counter() - started:.0f} s)")

        for variant in variants:  # one warm-up each: file system caches, not bytecode (-B)
            import_once(python, variant, runtime)
        for _ in range(args.runs):
            for variant in variants:  # round robin: a burst of load hits every variant alike
                handler, total = import_once(python, variant, runtime)
                variant.samples.append(handler)
                variant.with_first_use.append(total)

        by_key = {(v.function, v.label, v.bytecode): v for v in variants}
        for first_use, what in (
            (False, "import <function>.handler"),
            (True, "the same plus a first invocation's imports"),
        ):
            print(f"\nCold {what}, {args.runs} fresh interpreters each, ms   [{load()}]")
            print(
                f"{'function':<18} {'bytecode':<9} {'before med':>10} {'p90':>6} {'after med':>10} {'p90':>6} {'after/before':>12}"
            )
            for function in FUNCTIONS:
                for bytecode in (False, True):
                    b, a = by_key[(function, "before", bytecode)], by_key[(function, "after", bytecode)]
                    print(f"{function:<18} {'yes' if bytecode else 'no':<9} {b.median_ms(first_use):10.0f} "
                          f"{b.p90_ms(first_use):6.0f} {a.median_ms(first_use):10.0f} {a.p90_ms(first_use):6.0f} "
                          f"{a.median_ms(first_use) / b.median_ms(first_use):12.2f}")  # fmt: skip
        print(f"\nAs shipped: before without bytecode -> after with bytecode, median ms   [{load()}]")
        for function in FUNCTIONS:
            b, a = by_key[(function, "before", False)], by_key[(function, "after", True)]
            print(f"{function:<18} handler {b.median_ms():5.0f} -> {a.median_ms():4.0f} ({a.median_ms() / b.median_ms():.2f}x)"
                  f"   with first use {b.median_ms(True):5.0f} -> {a.median_ms(True):4.0f} "
                  f"({a.median_ms(True) / b.median_ms(True):.2f}x)")  # fmt: skip

        if args.importtime:
            for variant in variants:
                if variant.label == "after":
                    print(f"\n{variant.function} after, bytecode {'yes' if variant.bytecode else 'no'}: "
                          f"largest cumulative imports (µs)   [{load()}]")  # fmt: skip
                    for micros, name in importtime_top(python, variant, runtime):
                        print(f"  {micros:>8} {name}")


if __name__ == "__main__":
    main()
