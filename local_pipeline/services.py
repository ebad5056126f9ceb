"""Real PostgreSQL and Redis for the local runner and the tests.

`reuse_or_start_*` uses the server that already answers on the usual port (the machines we
run on start one) and otherwise starts a throwaway one from the installed binaries. Tests that
stop a server mid-run always start their own throwaway instance, never the shared one.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

DEFAULT_PG_PORT = 5432
DEFAULT_REDIS_PORT = 6379
HOST = "127.0.0.1"


def port_answers(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_child(code: str, *args: str, what: str, timeout_s: float) -> tuple[subprocess.Popen, Connection, Any]:
    """A child interpreter for a part of the local pipeline that must not share this one (the worker
    stand-in, the SQS endpoint): runs `code` with sys.argv[1] the file descriptor of its end of a
    socket pair (a multiprocessing Connection) and `args` after it, and waits for its first message,
    ("ready", value). Returns the process, this end of the pair, and the value. The child imports
    this very checkout (a worktree, a clone), whatever the caller's PYTHONPATH."""
    parent, child = socket.socketpair()
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    argv = [sys.executable, "-c", code, str(child.fileno()), *args]
    process = subprocess.Popen(argv, pass_fds=[child.fileno()], env=env, stdin=subprocess.DEVNULL)
    child.close()
    conn = Connection(parent.detach())
    try:
        if not conn.poll(timeout_s):
            raise RuntimeError(f"{what} did not start within {timeout_s:.0f} s")
        try:
            kind, value = conn.recv()
        except EOFError:
            raise OSError(f"{what} exited before it started (exit status {process.wait()})") from None
        if kind != "ready":
            raise OSError(f"{what} did not start: {value}")
    except BaseException:
        conn.close()
        end_child(process, timeout_s=5.0)
        raise
    return process, conn, value


def end_child(process: subprocess.Popen, *, timeout_s: float) -> None:
    """Waits for a child of start_child to exit (it does once its connection closes), else kills it."""
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def serve_child(fd: int, start: Callable[[], Any], answer: Callable[[Any, str, tuple], Any]) -> None:
    """The child's side of start_child: starts its server (`start()` returns it, with its `port`),
    says its port, then answers what the parent asks (`answer(server, op, args)`) until it says
    stop or goes away (the socket closes), so no child outlives its caller."""
    conn = Connection(fd)
    try:
        server = start()
    except OSError as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", server.port))
    while True:
        try:
            op, args = conn.recv()
        except (EOFError, OSError):
            break
        if op == "stop":
            break
        try:
            conn.send(("ok", answer(server, op, args)))
        except Exception as exc:  # the caller's mistake (no such queue, bad shares): raised there
            conn.send(("raise", exc))
    server.stop()
    try:
        conn.send(("stopped", None))
    except OSError:
        pass


def ask_child(conn: Connection, op: str, args: tuple) -> Any:
    """One request to a serve_child child, and its answer; what it raised is raised here."""
    conn.send((op, args))
    kind, value = conn.recv()
    if kind == "raise":
        raise value
    return value


def tell_child_to_stop(conn: Connection, timeout_s: float) -> None:
    """Asks a serve_child child to stop its server and waits for it to say so (or to be gone)."""
    try:
        conn.send(("stop", ()))
        if conn.poll(timeout_s):
            conn.recv()
    except (EOFError, OSError):
        pass  # gone already


def _wait_for_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_answers(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer on {HOST}:{port} within {timeout:.0f} s")


def _pg_bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    found = shutil.which(name) or (candidates[0] if candidates else None)
    if not found:
        raise RuntimeError(
            f"PostgreSQL binary {name!r} not found; install PostgreSQL (Debian: apt-get install postgresql)"
        )
    return found


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str = "postgres"
    password: str = ""
    dbname: str = "postgres"

    def params(self, dbname: str | None = None) -> dict:
        """Keyword arguments for psycopg.connect()."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": dbname or self.dbname,
        }

    def dsn(self, dbname: str | None = None) -> str:
        auth = f"{self.user}:{self.password}@" if self.password else f"{self.user}@"
        return f"postgresql://{auth}{self.host}:{self.port}/{dbname or self.dbname}"


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


class ThrowawayPostgres:
    """A private PostgreSQL cluster in a temporary directory, stoppable and restartable.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user.
    With `password`, TCP clients must authenticate with SCRAM-SHA-256 (as on RDS), the superuser
    with that password; without it every client is trusted.
    """

    def __init__(self, port: int | None = None, password: str | None = None) -> None:
        self.port = port or free_port()
        self.password = password
        self._dir = tempfile.mkdtemp(prefix="dialpipe-pg-")
        self.data_dir = os.path.join(self._dir, "data")
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self._dir, user="postgres")
        auth = ["--auth=trust"]
        if password:
            pwfile = os.path.join(self._dir, "pwfile")
            with open(pwfile, "w", encoding="utf-8") as f:
                f.write(password + "\n")
            if self._as_postgres:
                shutil.chown(pwfile, user="postgres")
            auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        self._run([_pg_bin("initdb"), "-D", self.data_dir, "-U", "postgres", *auth, "-E", "UTF8", "--no-sync"])

    @property
    def server(self) -> PostgresServer:
        return PostgresServer(HOST, self.port, password=self.password or "")

    def _run(self, argv: list[str]) -> None:
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> ThrowawayPostgres:
        opts = f"-c listen_addresses={HOST} -p {self.port} -c unix_socket_directories={self._dir} -c fsync=off"
        self._run(
            [_pg_bin("pg_ctl"), "-D", self.data_dir, "-o", opts, "-l", os.path.join(self._dir, "log"), "-w", "start"]
        )
        _wait_for_port(self.port, 30, "throwaway PostgreSQL")
        return self

    def stop(self) -> None:
        if os.path.exists(os.path.join(self.data_dir, "postmaster.pid")):
            self._run([_pg_bin("pg_ctl"), "-D", self.data_dir, "-m", "immediate", "-w", "stop"])

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


class ThrowawayRedis:
    """A private redis-server that keeps nothing on disk, stoppable and restartable.

    With `tls=True` it accepts only TLS, with a certificate for 127.0.0.1 and localhost signed by
    a throwaway CA (`ca_file`), as ElastiCache with in-transit encryption does; with `password`
    it requires AUTH, as ElastiCache with an auth token does."""

    def __init__(self, port: int | None = None, *, tls: bool = False, password: str | None = None) -> None:
        self.port = port or free_port()
        self.tls = tls
        self.password = password
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server not found; install Redis (Debian: apt-get install redis-server)")
        self._binary: str = binary
        self._proc: subprocess.Popen | None = None
        self._dir: str | None = None
        if tls:
            self._dir = tempfile.mkdtemp(prefix="dialpipe-redis-tls-")
            make_throwaway_certificates(self._dir)

    @property
    def server(self) -> RedisServer:
        return RedisServer(HOST, self.port)

    @property
    def ca_file(self) -> str:
        """The throwaway CA that signed the server's certificate (tls=True only)."""
        if self._dir is None:
            raise RuntimeError("this Redis has no TLS")
        return os.path.join(self._dir, "ca.crt")

    def start(self) -> ThrowawayRedis:
        argv = [self._binary, "--bind", HOST, "--save", "", "--appendonly", "no"]
        if self._dir is not None:
            argv += ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no",
                     "--tls-cert-file", os.path.join(self._dir, "server.crt"),
                     "--tls-key-file", os.path.join(self._dir, "server.key"),
                     "--tls-ca-cert-file", self.ca_file]  # fmt: skip
        else:
            argv += ["--port", str(self.port)]
        if self.password:
            argv += ["--requirepass", self.password]
        self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, 10, "throwaway Redis")
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None

    def destroy(self) -> None:
        self.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


def make_throwaway_certificates(directory: str) -> None:
    """ca.crt/ca.key and server.crt/server.key (for 127.0.0.1 and localhost), with openssl."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=dialpipe throwaway CA",
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"
    )
    with open(os.path.join(directory, "san.ext"), "w") as ext:
        ext.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip


def reuse_or_start_postgres() -> tuple[PostgresServer, ThrowawayPostgres | None]:
    """The PostgreSQL on DB_HOST/DB_PORT (default 127.0.0.1:5432) if it answers, else a
    throwaway one. The second value is the throwaway instance to destroy, or None."""
    host = os.environ.get("DB_HOST", HOST)
    port = int(os.environ.get("DB_PORT", DEFAULT_PG_PORT))
    if port_answers(port, host):
        return (
            PostgresServer(host, port, os.environ.get("DB_USER", "postgres"), os.environ.get("DB_PASSWORD", "")),
            None,
        )
    pg = ThrowawayPostgres().start()
    return pg.server, pg


def reuse_or_start_redis() -> tuple[RedisServer, ThrowawayRedis | None]:
    """The Redis on REDIS_HOST/REDIS_PORT (default 127.0.0.1:6379) if it answers, else a
    throwaway one. The second value is the throwaway instance to destroy, or None."""
    host = os.environ.get("REDIS_HOST", HOST)
    port = int(os.environ.get("REDIS_PORT", DEFAULT_REDIS_PORT))
    if port_answers(port, host):
        return RedisServer(host, port), None
    redis = ThrowawayRedis().start()
    return redis.server, redis
