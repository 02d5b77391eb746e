"""Rate-limit storage faults with a real redis-server and a real `snippets serve` (2 workers):
Redis down from the start, killed under load, hung (SIGSTOP), and back. The API keeps
answering (limits fail open to per-worker memory counting), nothing waits longer than the
storage timeout, /readyz says `degraded` and stays 200, each switch is one log line per
worker, and counting goes back to Redis when it answers again.

Skipped without redis-server, unless SNIPPETS_REQUIRE_REDIS=1; SNIPPETS_TEST_SKIP_SERVER=1
skips them too.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pytest
import redis as redis_client
import requests
from redis_helpers import start_redis
from server_helpers import SKIP_SERVER, BackgroundLoad, Server, free_port

pytestmark = pytest.mark.skipif(SKIP_SERVER, reason="SNIPPETS_TEST_SKIP_SERVER=1")

FALLBACK = "falling back to in-memory storage"
RECOVERED = "Rate limit storage recovered"
WORKERS = 2


def limiter_lines(server: Server, words: str) -> list[dict]:
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    return [r for r in lines if r.get("logger") == "flask-limiter"
            and words in r.get("message", "")]


def ready(server: Server) -> dict:
    response = server.get("/readyz", timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(condition, timeout: float, poke=None) -> None:
    """Until condition() holds; poke() each round (requests are what make a worker look at
    its storage again)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        if poke:
            poke()
        time.sleep(0.1)


class Load(BackgroundLoad):
    """Threads asking the API on fresh connections (so both workers serve) until stopped;
    the statuses and the slowest answer."""

    def __init__(self, server: Server, threads: int = 3):
        self.server = server
        self.statuses: Counter = Counter()
        self.slowest = 0.0
        super().__init__(threads)

    def ask_once(self) -> None:
        started = time.monotonic()
        try:
            status = requests.get(f"{self.server.base}/v1/snippets?q=sleep", timeout=5,
                                  headers={"Connection": "close"}).status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        self.slowest = max(self.slowest, time.monotonic() - started)
        self.statuses[status] += 1


def test_redis_down_from_the_start_fails_open_per_worker_and_recovers(tmp_path, built_index):
    port = free_port()  # nothing listens here yet
    env = {"SNIPPETS_RATE_LIMIT": "5 per minute",
           "SNIPPETS_RATE_LIMIT_STORAGE": f"redis://127.0.0.1:{port}"}
    with Server(built_index, tmp_path / "server.log", workers=WORKERS, env=env) as server:
        assert ready(server)["status"] == "degraded"
        assert ready(server)["rate_limit_storage"] == "degraded"
        statuses = Counter(requests.get(f"{server.base}/v1/sources", timeout=5,
                                        headers={"Connection": "close"}).status_code
                           for _ in range(30))
        # Counted in each worker's memory: at least one worker's 5, at most both workers'.
        assert set(statuses) <= {200, 429}
        assert 5 <= statuses[200] <= 5 * WORKERS, statuses
        fell_back = len(limiter_lines(server, FALLBACK))
        assert 1 <= fell_back <= WORKERS  # once per worker, not once per request
        redis = start_redis(tmp_path, port=port)
        try:
            wait_for(lambda: ready(server)["status"] == "ready", 10)
            # Each worker goes back to Redis on a request after its next check (at most a
            # few seconds), and says so once.
            wait_for(lambda: len(limiter_lines(server, RECOVERED)) == fell_back, 30,
                     poke=lambda: requests.get(f"{server.base}/v1/sources", timeout=5,
                                               headers={"Connection": "close"}))
            assert len(limiter_lines(server, FALLBACK)) == fell_back
            # Counting is in Redis again.
            client = redis_client.Redis(host="127.0.0.1", port=port)
            try:
                assert client.keys("*")
            finally:
                client.close()
        finally:
            redis.stop()
        assert "Traceback" not in server.log()
        assert str(port) not in json.dumps(ready(server))


def test_redis_killed_or_hung_under_load_never_fails_a_request(tmp_path, built_index):
    for name in ("r1", "r2"):
        (tmp_path / name).mkdir()
    redis = start_redis(tmp_path / "r1")
    env = {"SNIPPETS_RATE_LIMIT": "100000 per minute",
           "SNIPPETS_RATE_LIMIT_STORAGE": redis.url}
    try:
        with Server(built_index, tmp_path / "server.log", workers=WORKERS, env=env) as server:
            assert ready(server)["status"] == "ready"
            with Load(server) as load:
                time.sleep(1)
                # Killed: connections refused at once.
                redis.process.kill()
                redis.process.wait()
                time.sleep(2)
                assert ready(server)["status"] == "degraded"
                first = len(limiter_lines(server, FALLBACK))
                assert 1 <= first <= WORKERS
                redis.stop()
                redis = start_redis(tmp_path / "r2", port=redis.port)
                wait_for(lambda: len(limiter_lines(server, RECOVERED)) == first, 30)
                assert ready(server)["status"] == "ready"
                # Hung: connections accepted, never answered (the storage timeout applies).
                os.kill(redis.process.pid, signal.SIGSTOP)
                time.sleep(2)
                assert ready(server)["status"] == "degraded"
                both = len(limiter_lines(server, FALLBACK))
                assert first + 1 <= both <= first + WORKERS
                os.kill(redis.process.pid, signal.SIGCONT)
                wait_for(lambda: len(limiter_lines(server, RECOVERED)) == both, 30)
                assert ready(server)["status"] == "ready"
            assert set(load.statuses) == {200}, load.statuses
            assert sum(load.statuses.values()) > 50
            # Nothing waited much longer than the storage timeout (250 ms) on top of a search.
            assert load.slowest < 2.0, load.slowest
            # One line per worker and outage, not one per request.
            assert len(limiter_lines(server, FALLBACK)) == both
            log = server.log()
            assert "Traceback" not in log
            assert not [line for line in log.splitlines()
                        if line.startswith("{") and json.loads(line)["level"] == "error"]
    finally:
        redis.stop()
