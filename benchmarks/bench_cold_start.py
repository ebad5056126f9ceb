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

A last section times a new Redis connection to a local TLS redis-server with AUTH, phase by
phase (TCP connect, TLS context, handshake, AUTH, first command), against the connect and command
timeouts of lambdas/shared/redis_client.py.

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
FUNCTIONS = ("enrich_dial_task", "dialer_worker", "call_events")
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
        "dialer_worker.worker_client",
        "dialer_worker.admission",
        "dialer_worker.deferral",
    ),
    "call_events": ("redis", "redis.backoff", "redis.retry"),
}
_CHILD = (
    "import sys, time, importlib\n"
    "sys.path[:0] = sys.argv[1:3]\n"
    "t = time.perf_counter()\n"
    "importlib.import_module(sys.argv[3])\n"
    "handler = time.perf_counter() - t, time.process_time()\n"
    "for name in sys.argv[4:]: importlib.import_module(name)\n"
    "print(*handler, time.perf_counter() - t, time.process_time())\n"
)
# Wall time is what a cold start waits; CPU time (the child's, from its start, so interpreter
# start-up included alike in every variant) is much less disturbed by other load on the machine.
METRICS = ("wall", "cpu", "wall+first use", "cpu+first use")


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
    samples: dict[str, list[float]] = field(default_factory=lambda: {metric: [] for metric in METRICS})  # s

    def median_ms(self, metric: str = "wall") -> float:
        return statistics.median(self.samples[metric]) * 1000

    def p90_ms(self, metric: str = "wall") -> float:
        ordered = sorted(self.samples[metric])
        return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))] * 1000


def import_once(python: str, variant: Variant, runtime: Path) -> dict[str, float]:
    flags = ["-I", "-S"] + ([] if variant.bytecode else ["-B"])
    result = subprocess.run(
        [python, *flags, "-c", _CHILD, str(variant.path), str(runtime), f"{variant.function}.handler",
         *FIRST_USE[variant.function]],
        check=True, capture_output=True, text=True, env={"PATH": os.environ["PATH"], **LAMBDA_ENV},
    )  # fmt: skip
    return dict(zip(METRICS, map(float, result.stdout.strip().splitlines()[-1].split()), strict=True))


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


def tls_connection_phases(runs: int) -> None:
    """Connect, handshake and AUTH to a local TLS redis-server, with plain TCP beside it."""
    import socket
    import ssl

    sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]
    from aws_lambda_powertools.utilities import parameters

    from local_pipeline.services import HOST, ThrowawayRedis
    from shared.redis_client import COMMAND_TIMEOUT_S, CONNECT_TIMEOUT_S, RedisEnv, redis_client

    token = "bench-token"
    auth = f"*2\r\n$4\r\nAUTH\r\n${len(token)}\r\n{token}\r\n".encode()
    tls_server = ThrowawayRedis(tls=True, password=token).start()
    plain_server = ThrowawayRedis(password=token).start()
    phases: dict[str, list[float]] = {}

    def timed(name: str, start: float) -> float:
        now = time.perf_counter()
        phases.setdefault(name, []).append(now - start)
        return now

    def request(sock: socket.socket, payload: bytes) -> None:
        sock.sendall(payload)
        if not sock.recv(64).startswith(b"+"):
            raise RuntimeError("Redis refused")

    for _ in range(runs):  # ElastiCache's certificate chains to the system's CAs: the real cost
        t = time.perf_counter()
        ssl.create_default_context()
        timed("TLS context (system CA bundle)", t)
    original_get_secret = parameters.get_secret
    parameters.get_secret = lambda arn, **_: token  # the client's AUTH token, as from its secret
    os.environ["SSL_CERT_FILE"] = tls_server.ca_file  # the throwaway CA stands for the system's
    try:
        for _ in range(runs):
            t = time.perf_counter()
            raw = socket.create_connection((HOST, tls_server.port))
            t = timed("TCP connect", t)
            context = ssl.create_default_context()  # what redis-py does for every new connection
            t = timed("TLS context (throwaway CA)", t)
            sock = context.wrap_socket(raw, server_hostname=HOST)
            t = timed("TLS handshake", t)
            request(sock, auth)
            t = timed("AUTH", t)
            request(sock, b"*1\r\n$4\r\nPING\r\n")
            timed("first command (PING)", t)
            sock.close()

            t = time.perf_counter()
            client = redis_client(RedisEnv(host=HOST, port=tls_server.port, tls=True, auth_secret_arn="bench"))
            client.ping()
            timed("redis_client: TLS connect+AUTH+PING", t)
            client.close()
            t = time.perf_counter()
            client = redis_client(RedisEnv(host=HOST, port=plain_server.port, auth_secret_arn="bench"))
            client.ping()
            timed("redis_client: TCP connect+AUTH+PING", t)
            client.close()
    finally:
        parameters.get_secret = original_get_secret
        os.environ.pop("SSL_CERT_FILE", None)
        tls_server.destroy()
        plain_server.destroy()

    print(f"\nNew Redis connection to a local TLS redis-server with AUTH, {runs} runs, ms   [{load()}]")
    print(
        f"(timeouts: connect {CONNECT_TIMEOUT_S * 1000:.0f} ms covers TCP+TLS+AUTH, command {COMMAND_TIMEOUT_S * 1000:.0f} ms)"
    )
    print(f"{'phase':<38} {'median':>7} {'p90':>7} {'max':>7}   (max: mostly the first, cold, connection)")
    for name, samples in phases.items():
        ordered = sorted(samples)
        p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
        print(f"{name:<38} {statistics.median(ordered) * 1000:7.2f} {p90 * 1000:7.2f} {ordered[-1] * 1000:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--base", default=None, help="git ref for 'before' (default: merge base of HEAD and main)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to import with (default: this one)")
    parser.add_argument("--no-lambda-build", action="store_true", help="skip the Lambda packages (sizes)")
    parser.add_argument("--importtime", action="store_true", help="also show where the import time goes")
    parser.add_argument("--tls-runs", type=int, default=50, help="new TLS Redis connections to time (0: none)")
    parser.add_argument("--tls-only", action="store_true", help="only the TLS Redis connection section")
    args = parser.parse_args()
    if args.tls_only:
        tls_connection_phases(args.tls_runs)
        return
    base = args.base or subprocess.run(["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
                                       check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    python = shutil.which(args.python)
    if python is None:
        parser.error(f"--python {args.python}: no such interpreter on PATH (give its name or path, e.g. python3.13)")
    probe = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                           capture_output=True, text=True)  # fmt: skip
    if probe.returncode != 0:  # a pyenv shim whose version is not selected, say
        parser.error(f"--python {python} does not run: {probe.stderr.strip()[:300]}")
    version = probe.stdout.strip()

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
                for metric, value in import_once(python, variant, runtime).items():
                    variant.samples[metric].append(value)

        by_key = {(v.function, v.label, v.bytecode): v for v in variants}
        for metric in METRICS:
            what = "import <function>.handler" + (", then a first invocation's imports" if "first" in metric else "")
            print(f"\nCold {what}: {metric.split('+')[0]} ms, {args.runs} fresh interpreters each   [{load()}]")
            print(f"{'function':<18} {'bytecode':<9} {'before med':>10} {'p90':>6} {'after med':>10} {'p90':>6} {'after/before':>12}")  # fmt: skip
            for function in FUNCTIONS:
                for bytecode in (False, True):
                    b, a = by_key[(function, "before", bytecode)], by_key[(function, "after", bytecode)]
                    print(f"{function:<18} {'yes' if bytecode else 'no':<9} {b.median_ms(metric):10.0f} "
                          f"{b.p90_ms(metric):6.0f} {a.median_ms(metric):10.0f} {a.p90_ms(metric):6.0f} "
                          f"{a.median_ms(metric) / b.median_ms(metric):12.2f}")  # fmt: skip
        print(f"\nBefore as it shipped (no bytecode) -> after with bytecode, median wall ms   [{load()}]")
        print("(the bytecode is what ships only when --python is the runtime's version, 3.13)")
        for function in FUNCTIONS:
            b, a = by_key[(function, "before", False)], by_key[(function, "after", True)]
            print(f"{function:<18} handler {b.median_ms():5.0f} -> {a.median_ms():4.0f} ({a.median_ms() / b.median_ms():.2f}x)"
                  f"   with first use {b.median_ms('wall+first use'):5.0f} -> {a.median_ms('wall+first use'):4.0f} "
                  f"({a.median_ms('wall+first use') / b.median_ms('wall+first use'):.2f}x)")  # fmt: skip

        if args.importtime:
            for variant in variants:
                if variant.label == "after":
                    print(f"\n{variant.function} after, bytecode {'yes' if variant.bytecode else 'no'}: "
                          f"largest cumulative imports (µs)   [{load()}]")  # fmt: skip
                    for micros, name in importtime_top(python, variant, runtime):
                        print(f"  {micros:>8} {name}")
    if args.tls_runs:
        tls_connection_phases(args.tls_runs)


if __name__ == "__main__":
    main()
