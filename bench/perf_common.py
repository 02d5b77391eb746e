"""Shared helpers for the benchmark: paths, statistics, memory readings, the machine."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
SEEDS = ROOT / "seeds"
CORPUS = ROOT.parent / "shared" / "corpus" / "medquad-pages.jsonl"


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (no interpolation); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


def summary_ms(nanoseconds: list[int]) -> dict[str, Any]:
    """p50/p95/p99/mean/max in milliseconds of a list of perf_counter_ns durations."""
    ms = [n / 1e6 for n in nanoseconds]
    if not ms:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    return {"n": len(ms), "p50": percentile(ms, 50), "p95": percentile(ms, 95),
            "p99": percentile(ms, 99), "mean": sum(ms) / len(ms), "max": max(ms)}


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS, VmHWM and friends from /proc/<pid>/status, in kB."""
    values = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key.startswith("Vm") or key.startswith("Rss"):
                    values[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return values


def smaps_rollup(pid: int) -> dict[str, int]:
    """Pss and private memory (kB): what a worker costs beyond the pages it shares."""
    values = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty", "Shared_Clean",
                           "Shared_Dirty"):
                    values[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return values


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes (from /proc/<pid>/stat); gone ones count 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs). False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def dir_size(path: Path) -> int:
    """Bytes in the regular files under `path` (apparent size)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for base, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(base, name)).st_size
            except OSError:
                pass
    return total


def children(pid: int) -> list[int]:
    """Direct child pids of `pid`."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            found = [int(p) for p in handle.read().split()]
        if found:
            return found
    except OSError:
        pass
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry))
    return sorted(found)


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10, check=False)
        return done.stdout
    except OSError:
        return ""


def code_state() -> dict[str, Any]:
    """The commit and the uncommitted files that change what is measured."""
    return {"commit": _git("rev-parse", "--short", "HEAD").strip(),
            "uncommitted": [line[3:] for line in _git(
                "status", "--porcelain", "--", "index", "service", "seeds",
                "pyproject.toml").splitlines() if line.strip()]}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram_kb = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    ram_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "ram_gb": round(ram_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        **code_state(),
        "loadavg_at_start": os.getloadavg(),
    }


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True, default=str)
        handle.write("\n")


def read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
