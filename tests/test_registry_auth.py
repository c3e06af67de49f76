"""The registry auth pieces on their own: challenge parsing, the token URL, the signed request, the key."""

from __future__ import annotations

import base64
import hashlib
import shutil
import stat
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives import serialization

from pollama.store.registry.auth import Challenge, ensure_keypair, load_key, signed_token_request
from pollama.store.registry.download import MIN_PART, part_sizes


def test_challenge_keeps_commas_and_spaces_inside_quotes() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:ns/model:pull,push repository:other/model:pull"'
    )
    challenge = Challenge.parse(header)
    assert challenge == Challenge(
        "bearer",
        "https://auth.example/token",
        "registry.example",
        "repository:ns/model:pull,push repository:other/model:pull",
    )
    assert Challenge.parse('Basic realm="x"').scheme == "basic"
    assert Challenge.parse("").realm == ""


def test_token_url_is_sorted_like_go_url_values() -> None:
    challenge = Challenge(
        "bearer", "https://h.example/token?x=1", "svc", "repository:a/b:pull repository:c/d:pull"
    )
    url = challenge.token_url()
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "h.example", "/token")
    query = parse_qsl(parts.query)
    assert [k for k, _ in query] == sorted(k for k, _ in query)
    assert [v for k, v in query if k == "scope"] == ["repository:a/b:pull", "repository:c/d:pull"]
    values = dict(query)
    assert values["service"] == "svc" and values["x"] == "1" and values["ts"].isdigit()
    assert len(base64.urlsafe_b64decode(values["nonce"] + "==")) == 16
    assert "repository%3Aa%2Fb%3Apull" in parts.query  # escaped as Go's QueryEscape does


def test_keypair_is_openssh_and_private(tmp_path: Path) -> None:
    home = tmp_path / ".ollama"
    key = ensure_keypair(home)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = key.read_bytes()
    assert first.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    assert ensure_keypair(home) == key and key.read_bytes() == first  # never replaced
    public = (home / "id_ed25519.pub").read_text()
    assert public.startswith("ssh-ed25519 ") and public.endswith("\n") and len(public.split()) == 2
    if shutil.which("ssh-keygen"):
        derived = subprocess.run(
            ["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True, check=True
        )
        assert derived.stdout.split()[:2] == public.split()


def test_signed_token_request_is_ollamas_format(tmp_path: Path) -> None:
    key = load_key(tmp_path)
    url = "https://registry.example/v2/token?nonce=abc&scope=repository%3Aa%2Fb%3Apull&service=s&ts=1"
    header = signed_token_request(key, url)
    public_b64, _, signature = header.partition(":")
    assert public_b64 == (tmp_path / "id_ed25519.pub").read_text().split()[1]
    public = serialization.load_ssh_public_key(b"ssh-ed25519 " + public_b64.encode())
    empty = base64.b64encode(hashlib.sha256(b"").hexdigest().encode()).decode()
    public.verify(base64.b64decode(signature), f"GET,{url},{empty}".encode())  # raises when wrong


def test_part_sizes_cover_the_blob() -> None:
    assert part_sizes(0) == []
    assert part_sizes(10) == [(0, 10)]
    assert part_sizes(26 << 20) == [
        (0, 8 << 20),
        (8 << 20, 8 << 20),
        (16 << 20, 8 << 20),
        (24 << 20, 2 << 20),
    ]
    big = 253_113_024
    parts = part_sizes(big)
    assert len(parts) <= 17 and all(size >= MIN_PART for _, size in parts[:-1])
    assert sum(size for _, size in parts) == big
    assert all(parts[i][0] + parts[i][1] == parts[i + 1][0] for i in range(len(parts) - 1))
