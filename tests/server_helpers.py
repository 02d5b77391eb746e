"""A real `snippets serve` (gunicorn) over an index directory the test controls.

The one recipe every HTTP test uses: a free port, the venv's `snippets serve` as a subprocess
with its log in a file, SIGTERM at the end. The index directory may already hold an index (or
not: serve builds one from `seeds_dir`); extra environment variables configure the server
(SNIPPETS_RATE_LIMIT=off for load tests). Set SNIPPETS_TEST_SKIP_SERVER=1 to skip them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

SNIPPETS = Path(sys.executable).parent / "snippets"
ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 20.0

SKIP_SERVER = os.environ.get("SNIPPETS_TEST_SKIP_SERVER") == "1"
skip_server = pytest.mark.skipif(SKIP_SERVER, reason="SNIPPETS_TEST_SKIP_SERVER=1")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(process: subprocess.Popen, name: str, what: str, ready: Callable[[], bool],
                     output: Callable[[], str], timeout: float, interval: float = 0.1) -> None:
    """Poll `ready` until it says yes; fail with the process's output if the process exits or
    `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{name} exited with {process.returncode}:\n" + output())
        if ready():
            return
        time.sleep(interval)
    raise AssertionError(f"{name} did not answer {what} in time:\n" + output())


def terminate(process: subprocess.Popen, timeout: float) -> int:
    """SIGTERM, wait, then SIGKILL if it will not stop; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class Server:
    """`snippets serve --index INDEX_DIR` on 127.0.0.1 with `workers` gunicorn workers."""

    def __init__(self, index_dir: Path, log_path: Path, workers: int = 2,
                 env: dict[str, str] | None = None, seeds_dir: Path = ROOT / "seeds",
                 cwd: Path | None = None):
        self.index_dir = index_dir
        self.log_path = log_path
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SNIPPETS_")}
        clean.update(env or {})
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [str(SNIPPETS), "serve", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(workers), "--index", str(index_dir), "--seeds", str(seeds_dir)],
            cwd=cwd or log_path.parent, env=clean, stdout=self._log, stderr=subprocess.STDOUT)
        self.http = self.session()

    def session(self) -> requests.Session:
        """A new HTTP session (one per client thread: Session is not thread-safe)."""
        http = requests.Session()
        http.trust_env = False  # never through a proxy from the environment
        return http

    def wait_until_up(self) -> None:
        def healthy() -> bool:
            try:
                return self.get("/healthz", timeout=1).status_code == 200
            except (requests.ConnectionError, requests.Timeout):  # booting, or a busy machine
                return False

        wait_until_ready(self.process, "server", "/healthz", healthy, self.log, STARTUP_TIMEOUT)

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.http.get(f"{self.base}{path}", **kwargs)

    def alive(self) -> bool:
        return self.process.poll() is None

    def __enter__(self) -> Server:
        """Up and answering; stopped on leaving (also when it never came up)."""
        try:
            self.wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> int:
        self.http.close()
        returncode = terminate(self.process, timeout=15)
        self._log.close()
        return returncode

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


class BackgroundLoad:
    """Threads calling `ask_once` until the `with` block ends; subclasses count the answers."""

    def __init__(self, threads: int = 3):
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def ask_once(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.ask_once()

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
