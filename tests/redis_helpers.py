"""A throwaway redis-server for the rate-limit tests: a free loopback port, nothing persisted.

Without a redis-server binary the tests that need one are skipped, unless SNIPPETS_REQUIRE_REDIS=1
(set by .ci/run), where a missing binary is a failure: CI must not pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from server_helpers import free_port, terminate, wait_until_ready

REQUIRE_ENV = "SNIPPETS_REQUIRE_REDIS"


def redis_unavailable(reason: str) -> None:
    """Skip the test, or fail it when the environment says redis is required."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: the Redis tests must run here)", pytrace=False)
    pytest.skip(f"{reason}; install redis-server to run the shared rate-limit tests")


def ping(port: int, timeout: float = 0.5) -> bool:
    """True when a redis server answers PING on 127.0.0.1:port (raw RESP, no client needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """`redis-server` on 127.0.0.1:<free port>, without RDB snapshots or an append-only file."""

    def __init__(self, binary: str, workdir: Path, port: int | None = None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log_path = workdir / "redis.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_until_up(self, timeout: float = 10.0) -> None:
        wait_until_ready(self.process, "redis-server", "PING", lambda: ping(self.port),
                         self.log, timeout, interval=0.05)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped server cannot handle SIGTERM
        returncode = terminate(self.process, timeout=10)
        self._log.close()
        return returncode

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_redis(workdir: Path, port: int | None = None) -> RedisServer:
    """A running RedisServer (on `port`, or a free one), or skip/fail (see redis_unavailable)
    when there is no binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        redis_unavailable("redis-server is not installed")
    server = RedisServer(binary, workdir, port)
    try:
        server.wait_until_up()
    except BaseException:
        server.stop()
        raise
    return server
