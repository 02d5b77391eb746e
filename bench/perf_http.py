"""HTTP figures: gunicorn via `snippets serve`, load from wrk (if installed) and a Python client,
resident memory per worker, and how soon every worker answers from a new generation."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from perf_common import ROOT, children, proc_status, smaps_rollup, summary_ms


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

    def start(self, timeout: float = 90.0) -> None:
        self.port = free_port()
        command = Path(sys.executable).parent / "snippets"
        argv = [str(command)] if command.exists() else [
            sys.executable, "-c", "from service.cli import cli; cli()"]
        argv += ["serve", "--workers", str(self.workers), "--bind", f"127.0.0.1:{self.port}",
                 "--index", str(self.index_dir)]
        env = dict(os.environ, SNIPPETS_RATE_LIMIT="off", PYTHONUNBUFFERED="1")
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


# -- load generators --------------------------------------------------------------------------

def python_load(port: int, next_path: Callable[[], str | None], seconds: float,
                connections: int = 4) -> dict[str, Any]:
    """`connections` threads, each with its own http.client connection (re-opened whenever
    the server closes it), for `seconds` or until next_path() returns None."""
    deadline = time.monotonic() + seconds
    latencies: list[list[int]] = [[] for _ in range(connections)]
    errors = [0] * connections
    statuses: list[dict[int, int]] = [{} for _ in range(connections)]

    def run(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            path = next_path()
            if path is None:
                break
            started = time.perf_counter_ns()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = -1
            latencies[slot].append(time.perf_counter_ns() - started)
            statuses[slot][status] = statuses[slot].get(status, 0) + 1
            if status != 200:
                errors[slot] += 1
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    merged = [n for per in latencies for n in per]
    status_counts: dict[str, int] = {}
    for per in statuses:
        for status, count in per.items():
            status_counts[str(status)] = status_counts.get(str(status), 0) + count
    return {"client": "python", "connections": connections, "seconds": elapsed,
            "requests": len(merged), "rps": len(merged) / elapsed if elapsed else 0.0,
            "errors": sum(errors), "statuses": status_counts, "latency_ms": summary_ms(merged),
            "latency_ns": merged}


def cycling(paths: list[str]) -> Callable[[], str]:
    lock = threading.Lock()
    source = itertools.cycle(paths)

    def next_path() -> str:
        with lock:
            return next(source)
    return next_path


def once(paths: list[str]) -> tuple[Callable[[], str | None], Callable[[], int]]:
    """Each path at most once; the second function says how many were handed out."""
    lock = threading.Lock()
    position = [0]

    def next_path() -> str | None:
        with lock:
            if position[0] >= len(paths):
                return None
            position[0] += 1
            return paths[position[0] - 1]
    return next_path, lambda: position[0]


_WRK_SCRIPT = """
local paths = {}
local f = assert(io.open("%(paths)s", "r"))
for line in f:lines() do paths[#paths + 1] = line end
f:close()
local i = 0
wrapped = 0
request = function()
  i = i + 1
  if i > #paths then
    i = 1
    wrapped = wrapped + 1
  end
  return wrk.format("GET", paths[i])
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local w = 0
  for _, t in ipairs(threads) do w = w + (t:get("wrapped") or 0) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, "p95_us": %%d, ' ..
    '"p99_us": %%d, "mean_us": %%f, "max_us": %%d, "wrapped": %%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean,
    latency.max, w))
end
"""


def combine(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure from several time slices of the same scenario: requests and seconds add up;
    latency percentiles come from all the samples (Python client) or, for wrk, which only
    reports percentiles, are the median slice's p50 and the worst slice's p95/p99/max."""
    done = [s for s in slices if "rps" in s]
    seconds = sum(s["seconds"] for s in done)
    requests = sum(s["requests"] for s in done)
    out: dict[str, Any] = {
        "client": done[0]["client"] if done else None,
        "connections": done[0].get("connections") if done else None,
        "slices": len(slices), "failed_slices": len(slices) - len(done),
        "seconds": seconds, "requests": requests, "rps": requests / seconds if seconds else 0.0,
        "errors": sum(s["errors"] for s in done),
        "rps_per_slice": [round(s["rps"], 1) for s in done],
        "wrapped": sum(s.get("wrapped", 0) for s in done),
        "exhausted": any(s.get("exhausted") for s in done),
    }
    if done and "latency_ns" in done[0]:
        out["latency_ms"] = summary_ms([n for s in done for n in s["latency_ns"]])
    elif done:
        p50s = sorted(s["latency_ms"]["p50"] for s in done)
        out["latency_ms"] = {"p50": p50s[len(p50s) // 2],
                             **{k: max(s["latency_ms"][k] for s in done)
                                for k in ("p95", "p99", "max")}}
    return out


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_load(port: int, paths: list[str], seconds: float, work_dir: Path,
             connections: int = 4) -> dict[str, Any]:
    """wrk, one thread, `connections` connections, requests taken from `paths` in order
    (wrapping around, counted, if the list runs out)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    paths_file = work_dir / "wrk-paths.txt"
    paths_file.write_text("\n".join(paths) + "\n", encoding="utf-8")
    script = work_dir / "wrk.lua"
    script.write_text(_WRK_SCRIPT % {"paths": str(paths_file)}, encoding="utf-8")
    done = subprocess.run(
        [wrk_path() or "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
         "--timeout", "30s", "-s", str(script), f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=seconds + 60, check=False)
    found = re.search(r"^WRKJSON (.*)$", done.stdout, re.MULTILINE)
    if not found:
        return {"client": "wrk", "failed": (done.stdout + done.stderr)[-2000:]}
    raw = json.loads(found.group(1))
    elapsed = raw["duration_us"] / 1e6
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    return {"client": "wrk", "connections": connections, "seconds": elapsed,
            "requests": raw["requests"], "rps": raw["requests"] / elapsed if elapsed else 0.0,
            "errors": errors, "error_kinds": {k: raw[k] for k in
                                              ("connect", "read", "write", "status", "timeout")},
            "wrapped": raw["wrapped"],
            "latency_ms": {"p50": raw["p50_us"] / 1e3, "p95": raw["p95_us"] / 1e3,
                           "p99": raw["p99_us"] / 1e3, "mean": raw["mean_us"] / 1e3,
                           "max": raw["max_us"] / 1e3, "n": raw["requests"]}}


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
