"""A real OCI registry on loopback, a fault-injecting proxy in front of it, and small real models.

- `docker_registry()`: Debian's `docker-registry` (the CNCF distribution registry), installed
  with apt-get when missing; the tests skip, saying why, only when apt itself fails.
- `RegistryProcess`: one registry with a temporary storage folder, optionally with Docker
  token auth (JWTs checked against a certificate the test made) or serving https with a
  certificate from a test CA (`TestCA`; a server trusts it through SSL_CERT_FILE).
- `FaultProxy`: an HTTP reverse proxy on loopback (uvicorn in a thread) that forwards to the
  registry, counts the blob bytes it serves, and on request drops a connection mid-blob,
  flips a byte, stalls, or throttles. It also serves the token endpoint: it checks Ollama's
  signed challenge against the keys it trusts and issues the JWT the registry wants.
- `write_gguf()`: a small real GGUF (random f32 weights) written with the `gguf` package.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import NameOID

from tests.serverproc import free_port

# -- the registry binary ---------------------------------------------------------------------


def docker_registry() -> str:
    """Path of `docker-registry`, installing the Debian package when it is missing."""
    found = shutil.which("docker-registry")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [
        "apt-get",
        "install",
        "-y",
        "--no-install-recommends",
        "-o",
        "DPkg::Lock::Timeout=300",
        "docker-registry",
    ]
    errors = []
    for step in (install, ["apt-get", "update", "-o", "DPkg::Lock::Timeout=300"], install):
        try:
            done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            errors.append(f"{' '.join(step[:2])}: {exc}")
            continue
        if done.returncode != 0:
            errors.append(f"{' '.join(step[:2])} exited {done.returncode}: {done.stderr.strip()[-400:]}")
        found = shutil.which("docker-registry")
        if found:
            return found
    pytest.skip("the docker-registry package could not be installed with apt-get: " + " | ".join(errors))


# -- token auth: a certificate, JWTs, Ollama's signature ---------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenIssuer:
    """Signs registry JWTs with a self-signed RSA certificate the registry trusts."""

    service: str = "pollama-test"
    issuer: str = "pollama-test-issuer"
    trusted_keys: set[str] = field(default_factory=set)  # base64 ed25519 public keys (authorized_keys form)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pollama test token issuer")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def write_cert(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def token(self, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": self.issuer,
            "sub": "pollama",
            "aud": self.service,
            "exp": now + 600,
            "nbf": now - 60,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def check(self, url: str, authorization: str) -> str | None:
        """Why the signed token request is refused, or None when it is good."""
        pub, _, sig = authorization.partition(":")
        if not pub or not sig:
            return "no signature"
        if pub not in self.trusted_keys:
            return "unknown key"
        empty = base64.b64encode(hashlib.sha256(b"").hexdigest().encode()).decode()
        try:
            key = serialization.load_ssh_public_key(b"ssh-ed25519 " + pub.encode())
            assert isinstance(key, Ed25519PublicKey)
            key.verify(base64.b64decode(sig), f"GET,{url},{empty}".encode())
        except Exception as exc:
            return f"bad signature: {exc!r}"
        query = dict(parse_qsl(url.partition("?")[2]))
        if abs(int(query.get("ts", "0")) - time.time()) > 300 or not query.get("nonce"):
            return "stale or missing ts/nonce"
        return None


# -- https: a test CA and a certificate for 127.0.0.1 ---------------------------------------------


class TestCA:
    """A CA (written to `ca.pem`, what SSL_CERT_FILE names) and a server certificate for
    127.0.0.1 and localhost signed by it (`server.pem`, `server.key`)."""

    __test__ = False  # not a pytest test class

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pollama test CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        self.ca = folder / "ca.pem"
        self.ca.write_bytes(ca.public_bytes(pem))
        self.cert = folder / "server.pem"
        self.cert.write_bytes(leaf.public_bytes(pem))
        self.key = folder / "server.key"
        self.key.write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


# -- the registry process ----------------------------------------------------------------------


class RegistryProcess:
    def __init__(
        self, root: Path, *, token: TokenIssuer | None = None, realm: str = "", tls: TestCA | None = None
    ):
        self.root = root
        self.port = free_port()
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        config = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {root / 'data'}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            f"  secret: {secrets.token_hex(16)}",
        ]
        if tls is not None:
            config += ["  tls:", f"    certificate: {tls.cert}", f"    key: {tls.key}"]
        if token is not None:
            config += [
                "auth:",
                "  token:",
                f"    realm: {realm}",
                f"    service: {token.service}",
                f"    issuer: {token.issuer}",
                f"    rootcertbundle: {token.write_cert(root / 'issuer.pem')}",
            ]
        (root / "config.yml").write_text("\n".join(config) + "\n")
        self.log_path = root / "registry.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> RegistryProcess:
        binary = docker_registry()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [binary, "serve", str(self.root / "config.yml")], stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"registry exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                verify = self.tls.context() if self.tls else True
                if httpx.get(self.url + "/v2/", timeout=1, verify=verify).status_code in (200, 401):
                    return self
            time.sleep(0.1)
        raise RuntimeError("registry did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._log.close()


# -- the fault proxy ---------------------------------------------------------------------------


@dataclass
class Fault:
    """What to do to the responses of GET .../blobs/<digest>."""

    digest: str
    drop_after: int = 0  # close the connection after this many bytes of a response...
    drops: int = 0  # ...this many times
    corrupt_at: int = -1  # flip the byte at this offset of the blob (every time it passes)
    stall_after: int = 0  # stop sending after this many bytes of a response...
    stalls: int = 0  # ...this many times...
    stall_for: float = 8.0  # ...for this long


@dataclass
class BlobHit:
    digest: str
    start: int  # first byte asked for (Range), 0 without one
    sent: int = 0  # bytes of body the proxy sent
    fault: str = ""


class _Drop(Exception):
    pass


_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade", b"host"}


class FaultProxy:
    def __init__(self, token: TokenIssuer | None = None):
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.upstream = ""
        self.token = token
        self.faults: dict[str, Fault] = {}
        self.rate = 0.0  # bytes/s for blob downloads; 0 = as fast as possible
        self.hits: list[BlobHit] = []
        self.requests: list[tuple[str, str, int]] = []  # (method, path?query, status)
        self.upload_bytes = 0  # request body bytes of PATCH/PUT to blob uploads
        self.forwarded = 0  # requests that came as a forward proxy's (absolute URL)
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> FaultProxy:
        import uvicorn

        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="critical",  # a dropped connection is on purpose
            lifespan="off",
            interface="asgi3",
            http="h11",  # a forward proxy needs the absolute-form target in scope["path"]; httptools strips it
            proxy_headers=False,
            server_header=False,
            date_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fault-proxy", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fault proxy did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._server:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread:
            self._thread.join(15)

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self.hits.clear()
            self.requests.clear()
            self.rate = 0.0
            self.upload_bytes = 0
            self.forwarded = 0

    def served(self, digest: str) -> int:
        with self._lock:
            return sum(h.sent for h in self.hits if h.digest == digest)

    def blob_hits(self, digest: str) -> list[BlobHit]:
        with self._lock:
            return [h for h in self.hits if h.digest == digest]

    # -- ASGI
    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        query = scope["query_string"].decode()
        if path == "/token" and self.token is not None:
            await self._token(scope, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP]
        if path.startswith("http://"):  # used as a forward proxy (HTTP_PROXY): keep the client's Host
            path = "/" + path.split("/", 3)[3]
            with self._lock:
                self.forwarded += 1
            headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP - {b"host"}]
        else:
            headers.append((b"host", self.host.encode()))  # the registry builds Location URLs from it
        digest = ""
        if scope["method"] == "GET" and "/blobs/sha256:" in path:
            digest = path.rsplit("/", 1)[1]
        upload = "/blobs/uploads/" in path and scope["method"] in ("PATCH", "PUT")

        async def body():
            while True:
                message = await receive()
                chunk = message.get("body", b"")
                if upload:
                    with self._lock:
                        self.upload_bytes += len(chunk)
                if chunk:
                    yield chunk
                if not message.get("more_body"):
                    return

        client = httpx.AsyncClient(timeout=httpx.Timeout(120.0), trust_env=False)
        try:
            has_body = any(
                k.lower() in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"]
            )
            url = f"{self.upstream}{path}" + (f"?{query}" if query else "")
            request = client.build_request(
                scope["method"], url, headers=headers, content=body() if has_body else None
            )
            response = await client.send(request, stream=True)
            with self._lock:
                self.requests.append(
                    (scope["method"], path + (f"?{query}" if query else ""), response.status_code)
                )
            out_headers = [
                (k.encode(), v.encode())
                for k, v in response.headers.multi_items()
                if k.lower().encode() not in _HOP
            ]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": out_headers}
            )
            if digest and response.status_code in (200, 206):
                await self._blob_body(scope, response, digest, send)
            else:
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            await response.aclose()
        finally:
            await client.aclose()

    async def _blob_body(
        self, scope: dict[str, Any], response: httpx.Response, digest: str, send: Any
    ) -> None:
        start = 0
        for k, v in scope["headers"]:
            if k.lower() == b"range":
                start = int(v.decode().split("=")[1].split("-")[0])
        hit = BlobHit(digest, start)
        with self._lock:
            self.hits.append(hit)
            fault = self.faults.get(digest)
        began = time.monotonic()
        async for chunk in response.aiter_raw():
            if fault and fault.drops > 0 and hit.sent + len(chunk) >= fault.drop_after:
                chunk = chunk[: max(0, fault.drop_after - hit.sent)]
                with self._lock:
                    fault.drops -= 1
                hit.fault = "drop"
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                hit.sent += len(chunk)
                raise _Drop("dropped by the test")  # uvicorn closes the connection
            if fault and fault.stalls > 0 and hit.sent + len(chunk) >= fault.stall_after:
                with self._lock:
                    fault.stalls -= 1
                hit.fault = "stall"
                await asyncio.sleep(fault.stall_for)
            if fault and fault.corrupt_at >= 0:
                offset = start + hit.sent
                if offset <= fault.corrupt_at < offset + len(chunk):
                    i = fault.corrupt_at - offset
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1 :]
                    hit.fault = "corrupt"
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            hit.sent += len(chunk)
            if self.rate:
                ahead = hit.sent / self.rate - (time.monotonic() - began)
                if ahead > 0:
                    await asyncio.sleep(ahead)

    async def _token(self, scope: dict[str, Any], send: Any) -> None:
        assert self.token is not None
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = scope["query_string"].decode()
        url = f"http://{headers.get('host', '')}{scope['path']}?{query}"
        refused = self.token.check(url, headers.get("authorization", ""))
        params = parse_qsl(query)
        self.token.requests.append({"url": url, "refused": refused, "params": params})
        if refused:
            body, status = (
                json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": refused}]}).encode(),
                401,
            )
        else:
            scopes = [v for k, v in params if k == "scope" and v]
            body, status = json.dumps({"token": self.token.token(scopes)}).encode(), 200
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


# -- small real models -------------------------------------------------------------------------


def write_gguf(path: Path, n_bytes: int, seed: int) -> Path:
    """A valid GGUF (llama architecture, one f32 tensor of random weights) of about n_bytes."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(f"tiny-{seed}")
    writer.add_file_type(0)  # ALL_F32
    writer.add_block_count(1)
    writer.add_context_length(128)
    writer.add_embedding_length(64)
    weights = np.random.default_rng(seed).standard_normal(max(64, n_bytes // 256 * 64), dtype=np.float32)
    writer.add_tensor("token_embd.weight", weights.reshape(-1, 64))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
