"""Registry auth: the server's ed25519 key and the bearer-token challenge (Ollama's server/auth.go).

On a 401 the registry names a token endpoint (`WWW-Authenticate: Bearer realm=...`). Ollama
asks that endpoint for a token with a request signed by `~/.ollama/id_ed25519`; ollama.com
checks the signature against the keys registered to an account, and a plain Docker token
server ignores the header and hands out its (anonymous or policy-based) token. One flow
serves both.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = logging.getLogger("pollama.registry")

KEY_NAME = "id_ed25519"
_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


class AuthError(Exception):
    """The registry asked for credentials pollama cannot provide."""


def ensure_keypair(home: Path) -> Path:
    """Create `home/id_ed25519` (OpenSSH format, 0600) and its `.pub` if missing, as `ollama serve` does."""
    key = home / KEY_NAME
    if key.exists():
        return key
    home.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = public_key_line(private)
    try:  # O_EXCL: two servers starting at once must not overwrite each other's key
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub = key.with_name(KEY_NAME + ".pub")
    pub.write_bytes(public + b"\n")
    os.chmod(pub, 0o644)
    log.info(
        "Couldn't find '%s'. Generated a new private key. Your new public key is: %s", key, public.decode()
    )
    return key


def public_key_line(private: Ed25519PrivateKey) -> bytes:
    """`ssh-ed25519 AAAA...`, the authorized_keys form (no comment)."""
    return private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )


def load_key(home: Path) -> Ed25519PrivateKey:
    path = ensure_keypair(home)
    key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise AuthError(f"{path} is not an ed25519 key")
    return key


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    """Ollama's auth.Sign: `<public key base64>:<base64 signature>`."""
    public_b64 = public_key_line(key).split()[1].decode()
    return f"{public_b64}:{base64.b64encode(key.sign(data)).decode()}"


@dataclass(frozen=True)
class Challenge:
    scheme: str
    realm: str
    service: str
    scope: str

    @classmethod
    def parse(cls, header: str) -> Challenge:
        scheme, _, rest = header.strip().partition(" ")
        params = {
            m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _PARAM.finditer(rest)
        }
        return cls(
            scheme.lower(), params.get("realm", ""), params.get("service", ""), params.get("scope", "")
        )

    def token_url(self) -> str:
        """The realm with service, scopes, a timestamp and a nonce, in Go's url.Values order (sorted)."""
        parts = urlsplit(self.realm)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query.append(("service", self.service))
        query.extend(("scope", s) for s in self.scope.split(" "))
        query.append(("ts", str(int(time.time()))))
        query.append(("nonce", base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()))
        query.sort(key=lambda kv: kv[0])  # stable: repeated keys keep their order, as url.Values does
        return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def signed_token_request(key: Ed25519PrivateKey, url: str) -> str:
    """The Authorization header for GET `url`: a signature of `GET,<url>,<b64(hex(sha256("")))>`."""
    empty = base64.b64encode(hashlib.sha256(b"").hexdigest().encode()).decode()
    return sign(key, f"GET,{url},{empty}".encode())
