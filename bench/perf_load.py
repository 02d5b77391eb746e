"""Load generators for the HTTP figures: a Python client (threads, http.client) and wrk (when
installed, one thread, a Lua script feeding the paths), and combining time slices of a run."""

from __future__ import annotations

import http.client
import itertools
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perf_common import summary_ms


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
    if done and all("worker_cpu_seconds" in s for s in done):
        cpu = sum(s["worker_cpu_seconds"] for s in done)
        out["worker_cpu_seconds"] = cpu
        out["worker_cpu_ms_per_request"] = cpu * 1000 / requests if requests else None
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
