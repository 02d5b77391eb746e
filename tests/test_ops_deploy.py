"""The documented deployment, run: two replicas (`snippets serve`, real gunicorn) behind
Debian's nginx with deploy/snippets-nginx.conf (TLS on loopback), one real Redis for the rate
limits; and deploy/snippets@.service checked by systemd-analyze.

Client addresses are varied with loopback source addresses (127.0.0.0/8 is all loopback), so
nginx sees several clients and sets X-Forwarded-For for each. Skipped without nginx or
redis-server unless SNIPPETS_REQUIRE_NGINX=1 / SNIPPETS_REQUIRE_REDIS=1 (.ci/run sets both).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import threading
import time
import uuid
from collections import Counter
from itertools import count
from pathlib import Path

import pytest
from api_helpers import SEEDS, add_article, manifest
from deploy_helpers import DEPLOY, Nginx
from redis_helpers import start_redis
from server_helpers import ROOT, SKIP_SERVER, SNIPPETS, BackgroundLoad, Server

from index.build import build

PROBLEM_JSON = "application/problem+json"
LIMIT = 25
MARKER = "suicidalJaneRoe" + uuid.uuid4().hex[:8]
VARIANT_TEXT = ("A quillwortian sleep diary helps people with fibromyalgia notice which evening "
                "habits come before a night of poor sleep.")


class Deployment:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.redis = start_redis(tmp)
        env = {"SNIPPETS_PROXY_COUNT": "1", "SNIPPETS_RATE_LIMIT_STORAGE": self.redis.url,
               "SNIPPETS_RATE_LIMIT": f"{LIMIT} per minute"}
        self.replicas: list[Server] = []
        self.nginx: Nginx | None = None
        try:
            for name in ("one", "two"):
                index_dir = tmp / f"index-{name}"
                build(SEEDS, index_dir)  # each replica its own copy of the same generation
                self.replicas.append(Server(index_dir, tmp / f"{name}.log", workers=1, env=env))
            for replica in self.replicas:
                replica.wait_until_up()
            self.nginx = Nginx(tmp / "nginx", [r.port for r in self.replicas])
            self.nginx.wait_until_up()
        except BaseException:
            self.stop()
            raise
        self.context = ssl.create_default_context(cafile=str(self.nginx.cert))

    def call(self, path: str, source: str = "127.0.0.1", method: str = "GET",
             headers: dict[str, str] | None = None,
             body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        """One request through nginx on a new TLS connection from `source`."""
        connection = http.client.HTTPSConnection("127.0.0.1", self.nginx.port, timeout=10,
                                                 context=self.context,
                                                 source_address=(source, 0))
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return (response.status, {k.lower(): v for k, v in response.getheaders()},
                    response.read())
        finally:
            connection.close()

    def logs(self) -> str:
        return "".join(r.log() for r in self.replicas) + self.nginx.logs_text()

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for replica in self.replicas:
            replica.stop()
        self.redis.stop()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    if SKIP_SERVER:
        pytest.skip("SNIPPETS_TEST_SKIP_SERVER=1")
    running = Deployment(tmp_path_factory.mktemp("deploy"))
    try:
        yield running
    finally:
        running.stop()


class Load(BackgroundLoad):
    """Threads asking through nginx from many client addresses until stopped."""

    def __init__(self, deployment: Deployment, network: int, threads: int = 3):
        self.deployment = deployment
        self.sources = (f"127.0.{network}.{n % 200 + 1}" for n in count())
        self.lock = threading.Lock()
        self.statuses: Counter = Counter()
        self.versions: Counter = Counter()
        super().__init__(threads)

    def ask_once(self) -> None:
        with self.lock:
            source = next(self.sources)
        try:
            status, _, body = self.deployment.call("/v1/snippets?q=sleep", source=source)
            version = json.loads(body)["index"]["version"] if status == 200 else None
        except (OSError, http.client.HTTPException) as exc:
            status, version = type(exc).__name__, None
        with self.lock:
            self.statuses[status] += 1
            self.versions[version] += 1


def served_by(deployment: Deployment, request_id: str) -> list[int]:
    """Which replicas (0, 1) logged this request id."""
    time.sleep(0.05)
    return [i for i, r in enumerate(deployment.replicas) if f'"{request_id}"' in r.log()]


def test_tls_both_replicas_and_the_same_index_version(deployment):
    ids = [f"deploy-{uuid.uuid4().hex[:12]}" for _ in range(6)]
    versions = set()
    for request_id in ids:
        status, headers, body = deployment.call("/readyz", headers={"X-Request-ID": request_id})
        assert status == 200 and headers["x-request-id"] == request_id
        assert "strict-transport-security" in headers
        assert not re.search(r"\d", headers.get("server", ""))  # no version banner
        versions.add(json.loads(body)["version"])
    direct = {r.get("/readyz").json()["version"] for r in deployment.replicas}
    assert versions == direct and len(direct) == 1
    assert direct == {manifest(r.index_dir)["version"] for r in deployment.replicas}
    # nginx spreads requests over both replicas.
    assert {i for request_id in ids for i in served_by(deployment, request_id)} == {0, 1}


def test_limits_hold_across_both_replicas_per_client_address(deployment):
    answers = [deployment.call("/v1/sources", source="127.0.3.1",
                               headers={"X-Request-ID": f"limit-{n}-{uuid.uuid4().hex[:8]}"})
               for n in range(LIMIT + 5)]
    statuses = [status for status, _, _ in answers]
    assert statuses == [200] * LIMIT + [429] * 5, statuses
    remaining = [int(h["x-ratelimit-remaining"]) for _, h, _ in answers[:LIMIT]]
    assert remaining == list(range(LIMIT - 1, -1, -1))  # one counter, whichever replica
    assert not any("retry-after" in h for _, h, _ in answers[:LIMIT])
    status, headers, body = answers[-1]
    assert headers["content-type"] == PROBLEM_JSON and int(headers["retry-after"]) > 0
    assert f"{LIMIT} requests per minute" in json.loads(body)["detail"]
    # A client's own X-Forwarded-For is replaced by nginx: another address has its own budget.
    status, _, _ = deployment.call("/v1/sources", source="127.0.3.2",
                                   headers={"X-Forwarded-For": "127.0.3.1"})
    assert status == 200


def test_nginx_refusals_are_problem_json_and_no_log_holds_the_query(deployment):
    refused = [
        (deployment.call(f"/v1/snippets?q={MARKER}{'a' * 9000}"), 414),
        (deployment.call("/healthz", headers={"X-Note": MARKER + "b" * 9000}), 431),
        (deployment.call("/cds-services/patient-education", method="POST",
                         headers={"Content-Type": "application/json"},
                         body=b" " * 1_100_000), 413),
    ]
    for (status, headers, body), expected in refused:
        assert status == expected, body
        assert headers["content-type"] == PROBLEM_JSON
        assert json.loads(body)["status"] == expected
    status, _, _ = deployment.call(f"/v1/snippets?q=sleep+{MARKER}", source="127.0.3.9")
    assert status == 200
    time.sleep(0.3)
    logs = deployment.logs()
    assert "/v1/snippets" in deployment.nginx.logs_text()  # the access log has the path
    assert MARKER not in logs


def variant_seeds(tmp: Path) -> Path:
    seeds = tmp / "variant-seeds"
    shutil.copytree(SEEDS, seeds)
    add_article(seeds, "deploy_sleep_diary", "Keeping a Sleep Diary", VARIANT_TEXT)
    return seeds


def test_a_rebuild_on_each_replica_in_turn_fails_no_request(deployment, tmp_path):
    seeds = variant_seeds(tmp_path)
    before = {r.get("/readyz").json()["version"] for r in deployment.replicas}
    with Load(deployment, network=4) as load:
        for replica in deployment.replicas:
            time.sleep(0.5)
            subprocess.run([str(SNIPPETS), "build", "--seeds", str(seeds), "--index",
                            str(replica.index_dir)], check=True, capture_output=True)
        time.sleep(1)
    assert set(load.statuses) == {200}, load.statuses
    after = {r.get("/readyz").json()["version"] for r in deployment.replicas}
    assert len(after) == 1 and after != before
    assert after <= set(load.versions)  # the new generation was served during the load


def test_a_killed_replica_is_routed_around(deployment):
    victim = deployment.replicas[0]
    with Load(deployment, network=5) as load:
        time.sleep(0.5)
        master = victim.process.pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        for pid in [master, *map(int, children)]:
            os.kill(pid, signal.SIGKILL)
        time.sleep(2.5)
    assert set(load.statuses) == {200}, load.statuses
    assert sum(load.statuses.values()) > 10
    status, _, body = deployment.call("/readyz")
    assert status == 200 and json.loads(body)["status"] == "ready"


# -- the systemd unit --------------------------------------------------------------------------

UNIT = DEPLOY / "snippets@.service"


def unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_unit_starts_what_the_readme_documents_and_restarts_on_failure():
    """What is checked without systemd running: the unit's command is `snippets serve` with
    the bind the nginx config's upstreams use, the restart policy, the proxy count."""
    settings = unit_settings(UNIT.read_text(encoding="utf-8"))
    (command,) = settings["ExecStart"]
    argv = shlex.split(command)
    assert Path(argv[0]).name == "snippets" and argv[1:] == ["serve", "--bind", "127.0.0.1:%i"]
    assert settings["Restart"] == ["on-failure"]
    assert "SNIPPETS_PROXY_COUNT=1" in settings["Environment"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "snippets serve --bind 127.0.0.1:<port>" in readme
    assert "systemctl enable --now snippets@8001 snippets@8002" in readme
    upstreams = re.findall(r"server 127\.0\.0\.1:(\d+) ", (DEPLOY / "snippets-nginx.conf")
                           .read_text(encoding="utf-8"))
    assert upstreams == ["8001", "8002"]


def test_systemd_analyze_verifies_the_unit(tmp_path):
    """systemd-analyze verify, where it exists, on the unit as installed: the same file with
    this checkout's venv as /opt/snippets (it checks the command is executable) and the
    current user (there is no `snippets` user here). Any warning fails the test."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (the unit is still parsed above)")
    text = UNIT.read_text(encoding="utf-8").replace("/opt/snippets", str(ROOT))
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True).stdout.strip()
    text = re.sub(r"^User=.*$", f"User={user}", text, flags=re.M)
    text = re.sub(r"^Group=.*$", f"Group={group}", text, flags=re.M)
    unit = tmp_path / "snippets@.service"
    unit.write_text(text, encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(tmp_path / "snippets@8001.service")],
                            capture_output=True, text=True, cwd=tmp_path)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "snippets@" in line or "Failed" in line or "Unknown" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr
