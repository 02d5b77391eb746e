"""A CDS Client for the tests: RS384 and ES384 key pairs made here, their JWK Set, signed JWTs."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://ehr.example.org"


class Client:
    def __init__(self, issuer: str = ISSUER):
        self.issuer = issuer
        self.keys = {"rsa-1": ("RS384", rsa.generate_private_key(public_exponent=65537,
                                                                 key_size=2048)),
                     "ec-1": ("ES384", ec.generate_private_key(ec.SECP384R1()))}

    def jwks(self) -> dict:
        keys = []
        for kid, (alg, private) in self.keys.items():
            algorithm = RSAAlgorithm if alg == "RS384" else ECAlgorithm
            jwk = json.loads(algorithm.to_jwk(private.public_key()))
            keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        return {"keys": keys}

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self.jwks()), encoding="utf-8")
        return path

    def token(self, aud: str, kid: str = "rsa-1", lifetime: int = 240, **claims) -> str:
        alg, private = self.keys[kid]
        now = int(time.time())
        payload = {"iss": self.issuer, "sub": "client-1", "aud": aud, "iat": now,
                   "exp": now + lifetime, "jti": str(uuid.uuid4()), **claims}
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, private, algorithm=alg, headers={"kid": kid, "typ": "JWT"})

    def bearer(self, aud: str, **kwargs) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(aud, **kwargs)}"}
