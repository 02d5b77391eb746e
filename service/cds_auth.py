"""CDS Hooks 2.0 "Trusting CDS Clients": every service and feedback call carries
`Authorization: Bearer <JWT>` signed by the CDS Client.

With SNIPPETS_CDS_ISSUERS set, a call is accepted only when its JWT is signed by a key of the
JWK Set in SNIPPETS_CDS_JWKS (chosen by `kid`; RS384 or ES384), its `iss` is trusted, its `aud`
is the URL of the endpoint called under SNIPPETS_PUBLIC_URL, `exp` is in the future and at
most five minutes after `iat`, and its `jti` has not been seen within the token's lifetime
(in Redis, shared by every worker and replica, when rate limits are kept there). Anything else
is a 401 problem with `WWW-Authenticate`. Tokens and claims are never logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Flask, current_app, request

from .errors import problem_response
from .links import public_base

if TYPE_CHECKING:
    import jwt  # PyJWT (and cryptography, 9 MB a worker) load only when issuers are configured

log = logging.getLogger("service")
ALGORITHMS = ("RS384", "ES384")
MAX_LIFETIME = 300  # seconds between iat and exp
LEEWAY = 30  # clock skew allowed, seconds
FETCH_TIMEOUT = 5.0  # seconds for one JWKS download
JWKS_LIFESPAN = 300.0  # seconds a downloaded JWKS is kept
CHALLENGE = 'Bearer realm="cds-services"'


class Refused(Exception):
    """The call is not from a trusted CDS Client; the message says why (no token content)."""


class FileKeys:
    """A JWK Set in a file, read again when the file changes."""

    def __init__(self, path: str):
        self.path = Path(path)
        self._stamp: float | None = None
        self._keys: jwt.PyJWKSet | None = None
        self._lock = threading.Lock()
        self.key("")  # a missing or malformed file fails at start-up, not on the first call

    def _set(self) -> jwt.PyJWKSet:
        import jwt

        with self._lock:
            stamp = self.path.stat().st_mtime_ns
            if self._keys is None or stamp != self._stamp:
                self._keys = jwt.PyJWKSet.from_dict(json.loads(self.path.read_text("utf-8")))
                self._stamp = stamp
            return self._keys

    def key(self, kid: str) -> jwt.PyJWK | None:
        keys = self._set()
        return next((k for k in keys.keys if k.key_id == kid), None) if kid else None


class UrlKeys:
    """A JWK Set at an https URL: fetched with a timeout, kept for JWKS_LIFESPAN seconds, and
    fetched again (at most every 30 s) when a token names a key it does not hold."""

    def __init__(self, url: str):
        import jwt

        self.client = jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=JWKS_LIFESPAN,
                                      timeout=FETCH_TIMEOUT)

    def key(self, kid: str) -> jwt.PyJWK | None:
        import jwt

        try:
            return self.client.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as exc:
            raise Refused("the JWK Set could not be fetched") from exc
        except jwt.PyJWKClientError:
            return None


def _keys(source: str) -> FileKeys | UrlKeys:
    parts = urlsplit(source)
    if parts.scheme == "https" or (parts.scheme == "http"
                                   and parts.hostname in ("127.0.0.1", "localhost", "::1")):
        return UrlKeys(source)  # plain http only on the loopback interface (tests, a sidecar)
    if parts.scheme:
        raise ValueError("SNIPPETS_CDS_JWKS must be a file path or an https URL")
    if not os.path.isfile(source):
        raise ValueError(f"SNIPPETS_CDS_JWKS: no such file {source!r}")
    return FileKeys(source)


class MemorySeen:
    """jti values seen by this process, until their token expires."""

    def __init__(self):
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, key: str, ttl: int) -> bool:
        now = time.time()
        with self._lock:
            if len(self._until) > 10_000:
                self._until = {k: t for k, t in self._until.items() if t > now}
            if self._until.get(key, 0) > now:
                return False
            self._until[key] = now + ttl
            return True


class RedisSeen:
    """jti values seen by any worker or replica sharing the rate-limit Redis."""

    def __init__(self, url: str):
        import redis  # only when replays are shared (the CLI never needs the client)

        self._errors = redis.RedisError
        self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def first_time(self, key: str, ttl: int) -> bool:
        try:
            return bool(self.redis.set(f"snippets:cds-jti:{key}", b"1", nx=True, ex=ttl))
        except self._errors as exc:
            raise Refused("the token's jti cannot be checked for replay just now") from exc


class Verifier:
    def __init__(self, issuers: tuple[str, ...], jwks: str, storage: str):
        self.issuers = issuers
        self.keys = _keys(jwks)
        self.seen = RedisSeen(storage) if storage.startswith(("redis://", "rediss://")) \
            else MemorySeen()

    def verify(self, header: str, audience: str) -> dict[str, Any]:
        import jwt

        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Refused("a CDS Client JWT is required: send Authorization: Bearer <JWT>")
        try:
            head = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Refused("the bearer token is not a JWT") from exc
        if head.get("alg") not in ALGORITHMS:
            raise Refused(f"the JWT must be signed with {' or '.join(ALGORITHMS)}")
        if head.get("typ", "JWT") != "JWT":
            raise Refused("the JWT header's typ must be JWT")
        kid = head.get("kid")
        key = self.keys.key(kid) if isinstance(kid, str) else None
        if key is None:
            raise Refused("the JWT's kid names no key of the trusted JWK Set")
        try:
            claims = jwt.decode(token, key, algorithms=[head["alg"]], audience=audience,
                                issuer=self.issuers, leeway=LEEWAY, options={
                                    "require": ["iss", "aud", "exp", "iat", "jti"]})
        except jwt.ExpiredSignatureError as exc:
            raise Refused("the JWT has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise Refused(f"the JWT's aud must be {audience}") from exc
        except jwt.InvalidIssuerError as exc:
            raise Refused("the JWT's iss is not a trusted CDS Client") from exc
        except jwt.InvalidSignatureError as exc:
            raise Refused("the JWT's signature does not verify") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Refused(f"the JWT has no {exc.claim} claim") from exc
        except jwt.PyJWTError as exc:
            raise Refused("the JWT is not valid") from exc
        now = time.time()
        if not isinstance(claims["jti"], str) or not claims["jti"]:
            raise Refused("the JWT's jti must be a non-empty string")
        if claims["exp"] - claims["iat"] > MAX_LIFETIME or claims["iat"] > now + LEEWAY:
            raise Refused(f"the JWT must expire at most {MAX_LIFETIME} s after it was issued")
        ttl = max(int(claims["exp"] - now + LEEWAY), 1)
        key_of = hashlib.sha256(f"{claims['iss']}\n{claims['jti']}".encode()).hexdigest()
        if not self.seen.first_time(key_of, ttl):
            raise Refused("the JWT has been used before (jti replayed)")
        return claims


def init_app(app: Flask) -> None:
    issuers = tuple(i.strip() for i in app.config["CDS_ISSUERS"].split(",") if i.strip())
    if not issuers:
        app.extensions["snippets_cds_auth"] = None
        log.warning("SNIPPETS_CDS_ISSUERS is not set: the CDS Hooks services are open to "
                    "any caller (no CDS Client JWT is checked)")
        return
    if not app.config["CDS_JWKS"].strip():
        raise ValueError("SNIPPETS_CDS_ISSUERS needs SNIPPETS_CDS_JWKS (a JWK Set file or URL)")
    app.extensions["snippets_cds_auth"] = Verifier(issuers, app.config["CDS_JWKS"].strip(),
                                                   app.config["RATE_LIMIT_STORAGE"])
    log.info("CDS Hooks calls need a CDS Client JWT: %d trusted issuer(s)", len(issuers))


def check():
    """Before a CDS service or feedback call: None, or the 401 problem to answer with."""
    verifier: Verifier | None = current_app.extensions.get("snippets_cds_auth")
    if verifier is None or request.method == "OPTIONS":
        return None
    audience = public_base() + request.path
    try:
        verifier.verify(request.headers.get("Authorization", ""), audience)
    except Refused as refused:
        return problem_response(401, str(refused), headers={
            "WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'})
    return None
