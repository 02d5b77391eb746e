"""Debian's nginx on loopback with deploy/snippets-nginx.conf, and the replicas behind it.

The deploy file is used as it is, with only what must differ on a test machine replaced: its
listen port, the upstream servers, the certificate (a self-signed one made here with openssl)
and the log paths. nginx runs in the foreground (`daemon off`) with its own prefix, pid file,
temp and log directories. Without an nginx binary the tests are skipped, unless
SNIPPETS_REQUIRE_NGINX=1 (set by .ci/run), where that is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from server_helpers import ROOT, free_port, terminate, wait_until_ready

REQUIRE_ENV = "SNIPPETS_REQUIRE_NGINX"
DEPLOY = ROOT / "deploy"
NGINX_CONF = DEPLOY / "snippets-nginx.conf"
SERVER_NAME = "snippets.example.org"


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)
    if found is None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"nginx is not installed ({REQUIRE_ENV}=1: the deployment tests must "
                        "run here)", pytrace=False)
        pytest.skip("nginx is not installed; install Debian's nginx to run the deployment tests")
    return found


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and the server name, and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={SERVER_NAME}", "-addext",
                    f"subjectAltName=DNS:{SERVER_NAME},IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def templated(conf: str, *, port: int, upstreams: list[int], cert: Path, key: Path,
              logs: Path) -> str:
    """The deploy config with this machine's ports, certificate and log paths."""
    replaced = conf.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    servers = re.findall(r"^\s*server (127\.0\.0\.1:\d+) ", replaced, flags=re.M)
    assert len(servers) == len(upstreams), "the deploy config names one server per replica"
    for original, upstream in zip(servers, upstreams, strict=True):
        replaced = replaced.replace(f"server {original} ", f"server 127.0.0.1:{upstream} ")
    replaced = replaced.replace("/etc/ssl/snippets/fullchain.pem", str(cert))
    replaced = replaced.replace("/etc/ssl/snippets/privkey.pem", str(key))
    replaced = replaced.replace("/var/log/nginx/", f"{logs}/")
    for original in ("listen 443", "/etc/ssl/", "/var/log/", "127.0.0.1:8001", "127.0.0.1:8002"):
        assert original not in replaced, original
    return replaced


class Nginx:
    """nginx in the foreground on 127.0.0.1:<free port>, proxying to `upstreams`."""

    def __init__(self, workdir: Path, upstreams: list[int]):
        self.binary = nginx_binary()
        self.workdir = workdir
        self.port = free_port()
        self.base = f"https://127.0.0.1:{self.port}"
        self.logs = workdir / "logs"
        for sub in ("logs", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        self.cert, key = self_signed_certificate(workdir)
        site = workdir / "snippets-nginx.conf"
        site.write_text(templated(NGINX_CONF.read_text(encoding="utf-8"), port=self.port,
                                  upstreams=upstreams, cert=self.cert, key=key, logs=self.logs),
                        encoding="utf-8")
        # As root, nginx's workers would switch to `nobody`, who cannot read pytest's
        # private temporary directories.
        user = "user root root;\n" if os.geteuid() == 0 else ""
        tmp = workdir / "tmp"
        (workdir / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {workdir}/nginx.pid;\n"
            f"error_log {self.logs}/main-error.log crit;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            f"  client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n"
            f"  fastcgi_temp_path {tmp}/fastcgi;\n  uwsgi_temp_path {tmp}/uwsgi;\n"
            f"  scgi_temp_path {tmp}/scgi;\n  access_log off;\n"
            f"  include {site};\n}}\n", encoding="utf-8")
        self._out = (workdir / "nginx.out").open("wb")
        self.process = subprocess.Popen(
            [self.binary, "-p", str(workdir), "-c", str(workdir / "nginx.conf"),
             "-g", "daemon off;"], stdout=self._out, stderr=subprocess.STDOUT)
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = str(self.cert)

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.http.get(self.base + path, **kwargs)

    def wait_until_up(self, timeout: float = 10.0) -> None:
        def answers() -> bool:
            try:
                self.get("/healthz", timeout=1)
                return True
            except requests.ConnectionError:
                return False

        wait_until_ready(self.process, "nginx", "/healthz", answers, self.output, timeout)

    def output(self) -> str:
        return (self.workdir / "nginx.out").read_text(encoding="utf-8", errors="replace")

    def logs_text(self) -> str:
        return "".join(p.read_text(encoding="utf-8", errors="replace")
                       for p in sorted(self.logs.iterdir())) + self.output()

    def stop(self) -> int:
        self.http.close()
        code = terminate(self.process, timeout=10)
        self._out.close()
        return code
