"""HTTP servers for the benchmark: ours (gunicorn via `snippets serve`) and the peer services
(gunicorn over bench/peer_app.py), their workers' memory, and how soon every worker of ours
answers from a new generation. The load generators are in perf_load.py."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from perf_common import BENCH, ROOT, children, proc_status, smaps_rollup


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def path_for(query: dict[str, Any]) -> str:
    params = [("q", query["text"])]
    params += [("condition", c) for c in query["conditions"]]
    params += [("source", s) for s in query["sources"]]
    return "/v1/snippets?" + urlencode(params)


def get(port: int, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
    """One request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Server:
    """`snippets serve` (gunicorn, sync workers) on a free loopback port."""

    def __init__(self, index_dir: Path, log_path: Path, workers: int = 2):
        self.index_dir = index_dir
        self.log_path = log_path
        self.workers = workers
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def command(self) -> tuple[list[str], dict[str, str]]:
        command = Path(sys.executable).parent / "snippets"
        argv = [str(command)] if command.exists() else [
            sys.executable, "-c", "from service.cli import cli; cli()"]
        argv += ["serve", "--workers", str(self.workers), "--bind", f"127.0.0.1:{self.port}",
                 "--index", str(self.index_dir)]
        return argv, dict(os.environ, SNIPPETS_RATE_LIMIT="off", PYTHONUNBUFFERED="1")

    def start(self, timeout: float = 90.0) -> None:
        self.port = free_port()
        argv, env = self.command()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}); see "
                                   f"{self.log_path}")
            try:
                if get(self.port, "/healthz", timeout=2)[0] == 200 and \
                        len(self.worker_pids()) >= self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer /healthz within {timeout:.0f}s")

    def worker_pids(self) -> list[int]:
        return children(self.proc.pid) if self.proc else []

    def memory(self) -> dict[str, Any]:
        return {str(pid): {**proc_status(pid), **smaps_rollup(pid)}
                for pid in self.worker_pids()}

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class PeerServer(Server):
    """A peer service (bench/peer_app.py: plain Flask over FTS5 or tantivy) under gunicorn with
    the same worker settings as ours: `workers` sync workers, no control socket."""

    def __init__(self, engine: str, index_path: Path, log_path: Path, workers: int = 2):
        super().__init__(index_path, log_path, workers)
        self.engine = engine

    def command(self) -> tuple[list[str], dict[str, str]]:
        argv = [sys.executable, "-m", "gunicorn", "--chdir", str(BENCH), "--pythonpath",
                str(ROOT), "--worker-class", "sync", "--workers", str(self.workers),
                "--no-control-socket", "--bind", f"127.0.0.1:{self.port}", "--timeout", "30",
                "--error-logfile", "-", "peer_app:create_app()"]
        return argv, dict(os.environ, PEER_ENGINE=self.engine,
                          PEER_INDEX=str(self.index_dir.resolve()), PYTHONUNBUFFERED="1")


# -- a new generation becoming visible ---------------------------------------------------------

def open_generations(pid: int) -> set[str]:
    """Names of the gen-* directories a process holds files open in."""
    names = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            found = re.search(r"/(gen-[^/]+)/", target)
            if found:
                names.add(found.group(1))
    except OSError:
        pass
    return names


def _readyz_generation(port: int) -> tuple[int, str | None]:
    status, body = get(port, "/readyz", timeout=30)
    try:
        return status, json.loads(body).get("generation")
    except ValueError:
        return status, None


def visibility(server: Server, build_argv: list[str], streak: int = 40,
               pollers: int = 4, timeout: float = 30.0) -> dict[str, Any]:
    """Run the build (a child process that prints {"returned": <monotonic>, "generation": ...}
    the moment build() returns) while the server runs; from then on poll /readyz on fresh
    connections from several threads until `streak` answers in a row come from the new
    generation and every worker has files of it open. The delay is from build() returning
    to the first answer after which no answer came from an old generation."""
    port = server.port
    for _ in range(20):  # every worker has opened the current generation
        _readyz_generation(port)
    old = _readyz_generation(port)[1]
    pids = server.worker_pids()
    before = {pid: open_generations(pid) for pid in pids}
    child = subprocess.Popen(build_argv, cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    marker = None
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("{"):
            marker = json.loads(line)
            break
    if marker is None:
        child.communicate(timeout=60)
        return {"failed": f"the build exited ({child.returncode}) without returning"}
    returned, new = marker["returned"], marker["generation"]
    answers: list[tuple[float, float, int, str | None]] = []
    lock = threading.Lock()
    stop = threading.Event()
    opened_at: dict[int, float] = {}

    def poll() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                status, generation = _readyz_generation(port)
            except OSError:
                status, generation = -1, None
            with lock:
                answers.append((started, time.monotonic(), status, generation))

    def watch_fds() -> None:
        while not stop.is_set() and len(opened_at) < len(pids):
            for pid in pids:
                if pid not in opened_at and new in open_generations(pid):
                    opened_at[pid] = time.monotonic()
            time.sleep(0.001)

    threads = [threading.Thread(target=poll, daemon=True) for _ in range(pollers)]
    threads.append(threading.Thread(target=watch_fds, daemon=True))
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    fd_tracking = all(old in names for names in before.values()) and bool(pids)
    while time.monotonic() < deadline:
        with lock:
            tail = sorted(answers, key=lambda a: a[1])[-streak:]
        fresh = len(tail) == streak and all(a[2] == 200 and a[3] == new for a in tail)
        if fresh and (not fd_tracking or len(opened_at) == len(pids)):
            break
        time.sleep(0.01)
    stop.set()
    for thread in threads:
        thread.join(timeout=35)
    child.communicate("go\n", timeout=600)  # the build process may finish now
    ordered = sorted(answers, key=lambda a: a[1])
    stale = [a for a in ordered if not (a[2] == 200 and a[3] == new)]
    last_stale = stale[-1][1] if stale else float("-inf")
    after = [a for a in ordered if a[1] > last_stale and a[2] == 200 and a[3] == new]
    visible = (after[0][1] - returned) if after and len(after) >= streak else None
    return {
        "old_generation": old, "new_generation": new, "polls": len(ordered),
        "stale_answers": len(stale), "seconds": visible,
        "first_answer_seconds": (ordered[0][1] - returned) if ordered else None,
        "fd_tracking": fd_tracking,
        "worker_opened_seconds": {str(pid): t - returned for pid, t in opened_at.items()},
        "build_exit_code": child.returncode,
    }
