"""Model management against a real server: blobs, create (structured and Modelfile), quantize,
show, copy, delete, tags — with the official `ollama` client and raw HTTP, on real GGUFs.

Every bad request is checked twice: Ollama's status and message, and a store left exactly
as it was (same files, same manifests). Models these tests create are deleted again, and
generations use keep_alive 0, so the shared server looks untouched to later tests.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import ollama
import pytest

from tests.conftest import MODEL
from tests.ggufs import all_tensors, tiny_llama
from tests.serverproc import ServerProcess

ZERO = "0000000000000000000"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def snapshot(root: Path) -> dict[str, object]:
    """Every file in the store: manifests by content, blobs by size (hashing 250 MB each time
    would dominate the test), temp files by name — any leftover shows."""
    out: dict[str, object] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            out[rel] = p.read_bytes() if rel.startswith("manifests/") else p.stat().st_size
    return out


def upload(http: httpx.Client, data: bytes) -> str:
    d = digest_of(data)
    assert http.post(f"/api/blobs/{d}", content=data).status_code in (200, 201)
    return d


def manifest_of(server: ServerProcess, name: str) -> dict:
    model, _, tag = name.partition(":")
    path = server.models / "manifests" / "registry.ollama.ai" / "library" / model / (tag or "latest")
    return json.loads(path.read_bytes())


def blob(server: ServerProcess, digest: str) -> bytes:
    return (server.models / "blobs" / digest.replace(":", "-")).read_bytes()


def generate(http: httpx.Client, model: str, n: int = 4, exact: bool = True) -> dict:
    """Greedy decoding; the tiny models never pick EOS, so they give exactly n tokens."""
    r = http.post(
        "/api/generate",
        json={
            "model": model,
            "prompt": "hello",
            "stream": False,
            "keep_alive": 0,
            "options": {"num_predict": n, "temperature": 0},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["eval_count"] == n if exact else body["eval_count"] >= 1
    return body


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real llama-architecture GGUFs: F16 and F32 files, and a two-shard split F16 model."""
    d = tmp_path_factory.mktemp("ggufs")
    names = list(all_tensors())
    return {
        "f16": tiny_llama(d / "tiny-f16.gguf", dtype=np.float16),
        "f32": tiny_llama(d / "tiny-f32.gguf", seed=1),
        "shard1": tiny_llama(
            d / "tiny-00001-of-00002.gguf", dtype=np.float16, split=(0, 2), tensors=names[:9]
        ),
        "shard2": tiny_llama(
            d / "tiny-00002-of-00002.gguf", dtype=np.float16, split=(1, 2), tensors=names[9:]
        ),
    }


@pytest.fixture
def cleanup(http: httpx.Client) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        http.request("DELETE", "/api/delete", json={"model": name})


# -- blobs ---------------------------------------------------------------------------------------


def test_blob_upload_head_and_digest_checks(server: ServerProcess, http: httpx.Client) -> None:
    data = b"pollama blob test " * 1000
    d = digest_of(data)
    assert http.head(f"/api/blobs/{d}").status_code == 404
    r = http.post(f"/api/blobs/{d}", content=data)
    assert (r.status_code, r.content) == (201, b"")
    assert http.post(f"/api/blobs/{d}", content=data).status_code == 200  # already there
    assert http.head(f"/api/blobs/{d}").status_code == 200
    assert http.head(f"/api/blobs/{d.replace(':', '-')}").status_code == 200  # both spellings
    assert blob(server, d) == data

    before = snapshot(server.models)
    wrong = digest_of(b"something else")
    r = http.post(f"/api/blobs/{wrong}", content=data)
    assert r.status_code == 400
    assert r.json() == {"error": f'digest mismatch, expected "{wrong}", got "{digest_of(data)}"'}
    for bad in ["sha256:abc", "md5:" + "a" * 64, "sha256:" + "g" * 64]:
        assert http.post(f"/api/blobs/{bad}", content=data).json() == {"error": "invalid digest format"}
        assert http.head(f"/api/blobs/{bad}").status_code == 400
    assert http.get(f"/api/blobs/{d}").status_code == 405
    assert snapshot(server.models) == before


def test_truncated_upload_keeps_nothing(server: ServerProcess, http: httpx.Client) -> None:
    data = b"x" * 200_000
    d = digest_of(data)
    before = snapshot(server.models)
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        head = f"POST /api/blobs/{d} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n"
        s.sendall(head.encode() + data[:50_000])
        time.sleep(0.3)
    deadline = time.monotonic() + 30
    while snapshot(server.models) != before and time.monotonic() < deadline:
        time.sleep(0.1)  # the server notices the disconnect and removes its temp file
    assert snapshot(server.models) == before
    assert http.head(f"/api/blobs/{d}").status_code == 404


# -- create --------------------------------------------------------------------------------------


def test_create_from_gguf_blob_with_every_layer(
    server: ServerProcess, http: httpx.Client, ollama_client: ollama.Client, tiny, cleanup
) -> None:
    cleanup.append("tiny-full")
    d = ollama_client.create_blob(tiny["f16"])
    assert d == digest_of(tiny["f16"].read_bytes())
    template = "{{ if .System }}<<{{ .System }}>>{{ end }}{{ .Prompt }}"
    progress = list(
        ollama_client.create(
            model="tiny-full",
            files={"tiny-f16.gguf": d},
            template=template,
            system="You are tiny.",
            license=["MIT", "Apache-2.0"],
            parameters={"temperature": 0.25, "stop": ["<a>", "b "], "num_ctx": 256, "use_mmap": True},
            messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            stream=True,
        )
    )
    statuses = [p.status for p in progress]
    manifest = manifest_of(server, "tiny-full")
    layers = manifest["layers"]
    assert statuses[:2] == ["parsing GGUF", f"using existing layer {d}"]
    assert statuses[2:-2] == [f"creating new layer {x['digest']}" for x in layers[1:]]
    assert statuses[-2:] == ["writing manifest", "success"]

    assert [x["mediaType"].rsplit(".", 1)[1] for x in layers] == [
        "model", "template", "system", "license", "license", "params", "messages",
    ]  # fmt: skip
    assert blob(server, layers[1]["digest"]).decode() == template
    assert blob(server, layers[5]["digest"]) == (
        b'{"num_ctx":256,"stop":["\\u003ca\\u003e","b "],"temperature":0.25,"use_mmap":true}\n'
    )
    assert blob(server, layers[6]["digest"]) == (
        b'[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]\n'
    )
    config = json.loads(blob(server, manifest["config"]["digest"]))
    assert config["model_format"] == "gguf" and config["model_family"] == "llama"
    assert config["file_type"] == "F16" and config["model_type"] == "1.38M"
    assert config["rootfs"] == {"type": "layers", "diff_ids": [x["digest"] for x in layers]}

    shown = ollama_client.show("tiny-full")
    path = server.models.resolve() / "blobs" / d.replace(":", "-")
    assert shown.modelfile == (
        '# Modelfile generated by "ollama show"\n'
        "# To build a new Modelfile based on this, replace FROM with:\n"
        "# FROM tiny-full:latest\n\n"
        f"FROM {path}\n"
        f"TEMPLATE {template}\n"
        "SYSTEM You are tiny.\n"
        "PARAMETER num_ctx 256\n"
        "PARAMETER stop <a>\n"
        'PARAMETER stop "b "\n'
        "PARAMETER temperature 0.25\n"
        "PARAMETER use_mmap true\n"
        "LICENSE MIT\n"
        "LICENSE Apache-2.0\n"
        "MESSAGE user hi\n"
        "MESSAGE assistant hello\n"
    )
    assert shown.parameters == (
        'num_ctx                        256\nstop                           "<a>"\nstop                           "b "\n'
        "temperature                    0.25\nuse_mmap                       true"
    )
    raw = http.post("/api/show", json={"model": "tiny-full"}).json()
    assert (raw["template"], raw["system"], raw["license"]) == (template, "You are tiny.", "MIT\nApache-2.0")
    assert shown.details.family == "llama" and shown.details.quantization_level == "F16"
    assert shown.capabilities == ["completion"]
    info = shown.modelinfo
    assert info["general.architecture"] == "llama" and info["llama.embedding_length"] == 256
    assert info["general.parameter_count"] == 1380352
    assert info["tokenizer.ggml.tokens"] == []  # long arrays are elided unless verbose
    assert "general.name" not in info
    assert "tensors" not in raw and raw["messages"][0] == {"role": "user", "content": "hi"}
    verbose = http.post("/api/show", json={"model": "tiny-full", "verbose": True}).json()
    assert len(verbose["model_info"]["tokenizer.ggml.tokens"]) == 267
    assert verbose["tensors"][0] == {"name": "token_embd.weight", "type": "F16", "shape": [256, 267]}

    tags = {m["name"]: m for m in http.get("/api/tags").json()["models"]}
    entry = tags["tiny-full:latest"]
    manifest_bytes = (server.models / "manifests/registry.ollama.ai/library/tiny-full/latest").read_bytes()
    assert entry["digest"] == hashlib.sha256(manifest_bytes).hexdigest()
    assert entry["size"] == sum(x["size"] for x in layers) + manifest["config"]["size"]
    assert next(iter(tags)) == "tiny-full:latest"  # newest first

    out = generate(http, "tiny-full")  # the created model loads and generates
    assert out["done"] is True


def test_create_from_a_model_inherits_and_merges(
    server: ServerProcess, http: httpx.Client, ollama_client: ollama.Client, cleanup
) -> None:
    cleanup.append("gemma-derived")
    base = manifest_of(server, MODEL)
    statuses = [
        p.status
        for p in ollama_client.create(
            model="gemma-derived",
            from_=MODEL,
            system="Answer in one word.",
            parameters={"temperature": 0.1},
            stream=True,
        )
    ]
    derived = manifest_of(server, "gemma-derived")
    assert statuses[-2:] == ["writing manifest", "success"]
    assert all(x["from"] == MODEL for x in derived["layers"][:3])  # model, template, license
    assert derived["layers"][0]["digest"] == base["layers"][0]["digest"]  # weights shared, not copied
    kinds = [x["mediaType"].rsplit(".", 1)[1] for x in derived["layers"]]
    assert kinds == ["model", "template", "license", "system", "params"]
    params = json.loads(blob(server, derived["layers"][-1]["digest"]))
    assert params == {"stop": ["<end_of_turn>"], "temperature": 0.1}  # merged over the base's

    shown = http.post("/api/show", json={"model": "gemma-derived"}).json()
    assert shown["details"]["parent_model"] == MODEL and shown["system"] == "Answer in one word."
    out = generate(http, "gemma-derived", n=3, exact=False)
    assert out["model"] == "gemma-derived"


def test_create_from_a_legacy_modelfile(server: ServerProcess, http: httpx.Client, tiny, cleanup) -> None:
    cleanup += ["legacy-name", "legacy-blob"]
    text = (
        f'# made by hand\nFROM {MODEL}\nPARAMETER temperature 0.3\nSYSTEM """Be\nbrief."""\nMESSAGE user hi\n'
    )
    r = http.post("/api/create", json={"name": "legacy-name", "modelfile": text, "stream": False})
    assert (r.status_code, r.json()) == (200, {"status": "success"})
    shown = http.post("/api/show", json={"name": "legacy-name"}).json()
    assert shown["system"] == "Be\nbrief." and "temperature                    0.3" in shown["parameters"]

    d = upload(http, tiny["f16"].read_bytes())
    r = http.post(
        "/api/create", json={"model": "legacy-blob", "modelfile": f"FROM @{d}\nTEMPLATE {{{{ .Prompt }}}}\n"}
    )
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert lines[0] == {"status": "parsing GGUF"} and lines[-1] == {"status": "success"}

    # What show renders is a Modelfile the server takes back: the same model again.
    rendered = http.post("/api/show", json={"model": "legacy-name"}).json()["modelfile"]
    cleanup.append("legacy-again")
    r = http.post("/api/create", json={"model": "legacy-again", "modelfile": rendered, "stream": False})
    assert r.status_code == 200, r.text
    again = {x["digest"] for x in manifest_of(server, "legacy-again")["layers"]}
    assert again == {x["digest"] for x in manifest_of(server, "legacy-name")["layers"]}


BAD_CREATES = [
    ({"model": "bad/name/x/y", "from": MODEL}, 400, "invalid model name"),
    ({"model": "x"}, 400, "neither 'from' or 'files' was specified"),
    ({"model": "x", "from": "bad:name:x"}, 400, "invalid model name"),
    ({"model": "x", "files": {"m.gguf": "sha256:abc"}}, 400, "invalid digest for m.gguf: invalid digest format"),
    ({"model": "x", "files": {"m.gguf": ""}}, 400, "invalid digest format"),
    ({"model": "x", "files": {"m.gguf": "sha256:" + "0" * 64}}, 400, f'blob "sha256:{"0" * 64}" not found'),
    ({"model": "x", "files": {"../m.gguf": "sha256:" + "0" * 64}}, 400, "file path must be relative: ../m.gguf"),
    ({"model": "x", "files": {"/etc/m.gguf": "sha256:" + "0" * 64}}, 400, "file path must be relative"),
    ({"model": "x", "files": {"a\\..\\m.gguf": "sha256:" + "0" * 64}}, 400, "file path must be relative"),
    ({"model": "x", "from": MODEL, "parameters": {"temperature": "hot"}}, 400, 'parameter "temperature" must be of type float'),
    ({"model": "x", "from": MODEL, "parameters": {"num_gqa": 8}}, 400, "unknown parameter 'num_gqa'"),
    ({"model": "x", "from": MODEL, "template": "{{ .Prompt "}, 400, "template error: template: :1: unclosed action"),
    ({"model": "x", "from": MODEL, "quantize": "q5_0"}, 400, "unsupported quantization type Q5_0 - supported types are"),
    ({"model": "x", "from": MODEL, "quantize": "q8_0"}, 400, "quantization is only supported for F16, BF16 and F32 models"),
    ({"model": "x", "from": MODEL, "requires": "soon"}, 400, "requires must be a valid semver (e.g. 0.14.0)"),
    ({"model": "x", "from": MODEL, "messages": [{"role": "robot", "content": "x"}]}, 400, 'invalid message role "robot"'),
    ({"model": "x", "from": MODEL, "license": [1]}, 400, "json: cannot unmarshal"),
    ({"model": "x", "modelfile": "FROM x\nSYSTEM hi\nFORM y\n"}, 400, '(line 3): command must be one of "from"'),
    ({"model": "x", "modelfile": f"FROM {MODEL}\nPARAMETER top_k many\n"}, 400, "(line 2): invalid int value [many]"),
    ({"model": "x", "modelfile": "PARAMETER top_k 1\n"}, 400, "no FROM line"),
    ({"model": "x", "modelfile": "FROM /etc/passwd\n"}, 400, "(line 1): FROM /etc/passwd: local files must be uploaded"),
    ({"model": "x", "modelfile": "FROM ../../models/blobs/x\n"}, 400, "(line 1): FROM ../../models/blobs/x: local files"),
    ({"model": "x", "modelfile": f"FROM {MODEL}\nADAPTER @sha256:xyz\n"}, 400, "(line 2): ADAPTER @sha256:xyz: invalid digest"),
    ({"model": "x", "path": "relative/Modelfile"}, 400, "path must be absolute"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "message"), BAD_CREATES)
def test_bad_creates_change_nothing(server: ServerProcess, http: httpx.Client, body, status, message) -> None:
    before = snapshot(server.models)
    r = http.post("/api/create", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert snapshot(server.models) == before


def test_bad_files_change_nothing(server: ServerProcess, http: httpx.Client, tiny, tmp_path: Path) -> None:
    not_gguf = upload(http, b"this is not a model " * 10)
    gguf = upload(http, tiny["f16"].read_bytes())
    shard = upload(http, tiny["shard1"].read_bytes())
    before = snapshot(server.models)
    cases = [
        ({"m.gguf": not_gguf}, "m.gguf: supplied file was not in GGUF format"),
        ({"notes.txt": not_gguf}, "unknown type"),
        ({"m.gguf": gguf, "w.safetensors": not_gguf}, "mixed model file types"),
        (
            {"tiny-00001-of-00002.gguf": shard},
            'split GGUF "tiny-00001-of-00002.gguf" is missing shard 2 of 2',
        ),
        ({"tiny-00002-of-00003.gguf": shard}, "does not match its split.no/split.count"),
    ]
    for files, message in cases:
        r = http.post("/api/create", json={"model": "x", "files": files})
        assert r.status_code == 400 and message in r.json()["error"], (files, r.text)
    # A Modelfile read from the server's disk may not reach outside its folder.
    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / "Modelfile").write_text("FROM ../tiny.gguf\n")
    (tmp_path / "tiny.gguf").write_bytes(tiny["f16"].read_bytes())
    r = http.post("/api/create", json={"model": "x", "path": str(inside / "Modelfile")})
    assert r.status_code == 400 and "the path leaves the Modelfile's folder" in r.json()["error"]
    assert snapshot(server.models) == before


def test_bad_safetensors_change_nothing(server: ServerProcess, http: httpx.Client, tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    save_file({"wte.weight": np.zeros((4, 4), dtype=np.float16)}, tmp_path / "model.safetensors")
    weights = upload(http, (tmp_path / "model.safetensors").read_bytes())
    gpt2 = upload(http, json.dumps({"architectures": ["GPT2LMHeadModel"]}).encode())
    before = snapshot(server.models)
    for files, status, message in [
        (
            {"model.safetensors": weights, "config.json": gpt2},
            400,
            "unsupported architecture 'GPT2LMHeadModel'",
        ),
        ({"model.safetensors": weights}, 400, "config.json is missing"),
    ]:
        r = http.post("/api/create", json={"model": "x", "files": files})
        assert r.status_code == status and message in r.json()["error"], r.text
    assert snapshot(server.models) == before


def test_split_gguf_shards(server: ServerProcess, http: httpx.Client, tiny, cleanup) -> None:
    cleanup.append("tiny-split")
    files = {p.name: upload(http, p.read_bytes()) for p in (tiny["shard2"], tiny["shard1"])}
    r = http.post("/api/create", json={"model": "tiny-split", "files": files, "stream": False})
    assert r.json() == {"status": "success"}
    layers = manifest_of(server, "tiny-split")["layers"]
    assert [(x["mediaType"], x["digest"], x.get("from")) for x in layers] == [
        ("application/vnd.ollama.image.model", files["tiny-00001-of-00002.gguf"], "tiny-00001-of-00002.gguf"),
        ("application/vnd.ollama.image.model", files["tiny-00002-of-00002.gguf"], "tiny-00002-of-00002.gguf"),
    ]
    shown = http.post("/api/show", json={"model": "tiny-split"}).json()
    assert shown["modelfile"].count("\nFROM ") == 2
    assert shown["details"]["parameter_size"] == "1.38M"  # both shards counted
    generate(http, "tiny-split")  # llama.cpp loads the shards from their blob paths


# -- quantize ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "level"),
    [("f16", "q4_K_M", "Q4_K_M"), ("f32", "q8_0", "Q8_0"), ("f32", "F16", "F16")],
)
def test_quantize_on_create(
    server: ServerProcess,
    http: httpx.Client,
    ollama_client: ollama.Client,
    tiny,
    cleanup,
    source,
    target,
    level,
) -> None:
    name = f"tiny-{level.lower()}"
    cleanup.append(name)
    d = upload(http, tiny[source].read_bytes())
    progress = list(ollama_client.create(model=name, files={"m.gguf": d}, quantize=target, stream=True))
    have = "F16" if source == "f16" else "F32"
    bars = [p for p in progress if p.status == f"quantizing {have} model to {level}"]
    assert bars and all(p.digest == ZERO and p.total == tiny[source].stat().st_size for p in bars)
    done = [p.completed for p in bars]
    assert done == sorted(done) and done[0] == 0 and done[-1] == bars[-1].total and len(set(done)) > 3
    statuses = [p.status for p in progress]
    model_layer = manifest_of(server, name)["layers"][0]
    assert statuses[statuses.index(bars[-1].status) + len(bars) :][:2] == [
        "verifying conversion",
        f"creating new layer {model_layer['digest']}",
    ]
    assert statuses[-2:] == ["writing manifest", "success"]
    shown = ollama_client.show(name)
    assert shown.details.quantization_level == level
    assert model_layer["size"] < tiny[source].stat().st_size
    generate(http, name)


def test_quantize_from_a_model_and_from_shards(
    server: ServerProcess, http: httpx.Client, tiny, cleanup
) -> None:
    cleanup += ["tiny-f16-base", "tiny-from-q", "tiny-split-q"]
    d = upload(http, tiny["f16"].read_bytes())
    for body in (
        {"model": "tiny-f16-base", "files": {"m.gguf": d}, "system": "base system"},
        {"model": "tiny-from-q", "from": "tiny-f16-base", "quantize": "Q4_K_S"},
        {
            "model": "tiny-split-q",
            "files": {p.name: upload(http, p.read_bytes()) for p in (tiny["shard1"], tiny["shard2"])},
            "quantize": "q8_0",
        },
    ):
        r = http.post("/api/create", json={**body, "stream": False})
        assert r.json() == {"status": "success"}, r.text
    shown = http.post("/api/show", json={"model": "tiny-from-q"}).json()
    assert shown["details"]["quantization_level"] == "Q4_K_S" and shown["system"] == "base system"
    layers = manifest_of(server, "tiny-split-q")["layers"]
    assert (
        len(layers) == 1
        and json.loads(blob(server, manifest_of(server, "tiny-split-q")["config"]["digest"]))["file_type"]
        == "Q8_0"
    )
    generate(http, "tiny-split-q")


# -- copy, delete, tags ---------------------------------------------------------------------------


def test_copy_and_delete(server: ServerProcess, http: httpx.Client, ollama_client: ollama.Client) -> None:
    base = manifest_of(server, MODEL)
    assert (
        http.post("/api/copy", json={"source": MODEL, "destination": "Copied/Gemma:Backup"}).status_code
        == 200
    )
    copied = server.models / "manifests/registry.ollama.ai/Copied/Gemma/Backup"
    assert json.loads(copied.read_bytes()) == base  # the manifest file, blobs shared
    tags = {m["name"]: m for m in http.get("/api/tags").json()["models"]}
    assert tags["Copied/Gemma:Backup"]["digest"] == tags[MODEL]["digest"]
    assert ollama_client.show("copied/gemma:backup").details.family == "gemma3"  # case-insensitive

    assert http.post("/api/copy", json={"source": "nope", "destination": "x"}).json() == {
        "error": 'model "nope" not found'
    }
    assert http.post("/api/copy", json={"source": "a:b:c", "destination": "x"}).json() == {
        "error": 'source "a:b:c" is invalid'
    }
    assert http.post("/api/copy", json={"source": MODEL, "destination": ""}).json() == {
        "error": 'destination "" is invalid'
    }

    r = http.request("DELETE", "/api/delete", json={"model": "COPIED/gemma:backup"})
    assert (r.status_code, r.content) == (200, b"")
    assert not copied.exists() and not copied.parent.parent.exists()  # empty folders pruned
    assert all((server.models / "blobs" / x["digest"].replace(":", "-")).exists() for x in base["layers"])
    r = http.request("DELETE", "/api/delete", json={"model": "copied/gemma:backup"})
    assert (r.status_code, r.json()) == (404, {"error": "model 'copied/gemma:backup' not found"})
    r = http.request("DELETE", "/api/delete", json={"name": ""})
    assert (r.status_code, r.json()) == (400, {"error": 'name "" is invalid'})
    assert http.post("/api/show", json={}).json() == {"error": "model is required"}
    assert http.post("/api/show", json={"model": "nope"}).json() == {"error": "model 'nope' not found"}
    assert http.get("/api/show").status_code == 405


def test_delete_removes_only_unshared_blobs(server: ServerProcess, http: httpx.Client, tiny) -> None:
    d = upload(http, tiny["f16"].read_bytes())
    for name, system in (("tiny-a", "a"), ("tiny-b", "b")):
        r = http.post(
            "/api/create", json={"model": name, "files": {"m.gguf": d}, "system": system, "stream": False}
        )
        assert r.status_code == 200
    a, b = manifest_of(server, "tiny-a"), manifest_of(server, "tiny-b")
    assert http.request("DELETE", "/api/delete", json={"model": "tiny-a"}).status_code == 200
    gone = {x["digest"] for x in [*a["layers"], a["config"]]} - {
        x["digest"] for x in [*b["layers"], b["config"]]
    }
    assert gone and not any((server.models / "blobs" / g.replace(":", "-")).exists() for g in gone)
    assert (server.models / "blobs" / d.replace(":", "-")).exists()  # tiny-b still uses it
    assert http.request("DELETE", "/api/delete", json={"model": "tiny-b"}).status_code == 200
    assert not (server.models / "blobs" / d.replace(":", "-")).exists()


def test_a_store_written_by_ollama(spawn_server, tmp_path: Path) -> None:
    """Ollama's layout (old blob names, `.prompt` layer, indented manifest) is served as is,
    and a model created from it is one Ollama could read back."""
    from tests.unit.test_store import ollama_store

    models = tmp_path / "models0"  # where spawn_server's first server keeps its store
    fx = ollama_store(models, tmp_path)
    srv = spawn_server({"OLLAMA_NOPRUNE": "1"}, clone=False)
    with httpx.Client(base_url=srv.base_url, timeout=60) as c:
        names = {m["name"] for m in c.get("/api/tags").json()["models"]}
        assert {"Legacy:7b", "someone/legacy:latest"} <= names
        shown = c.post("/api/show", json={"model": "legacy:7b"}).json()
        assert shown["template"] == "[INST] {{ .System }} {{ .Prompt }} [/INST]"
        assert shown["details"]["parent_model"] == "llama2:7b"
        assert (
            "PARAMETER stop [INST]\nPARAMETER stop [/INST]\nPARAMETER temperature 0.5\n" in shown["modelfile"]
        )
        assert shown["parameters"].splitlines()[0] == "num_ctx                        4096"
        r = c.post(
            "/api/create", json={"model": "derived", "from": "Legacy:7b", "system": "x", "stream": False}
        )
        assert r.status_code == 200, r.text
        assert (
            c.post("/api/copy", json={"source": "someone/legacy", "destination": "mine"}).status_code == 200
        )
        assert c.request("DELETE", "/api/delete", json={"model": "someone/legacy"}).status_code == 200
    raw = (models / "manifests/registry.ollama.ai/library/derived/latest").read_bytes()
    manifest = json.loads(raw)
    assert raw == json.dumps(manifest, separators=(",", ":")).encode()  # compact, as Go writes it
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert [x["mediaType"].rsplit(".", 1)[1] for x in manifest["layers"]] == [
        "model", "prompt", "params", "messages", "license", "system",
    ]  # fmt: skip
    assert all(x["from"] == "Legacy:7b" for x in manifest["layers"][:-1])
    for x in [*manifest["layers"], manifest["config"]]:
        assert (models / "blobs" / x["digest"].replace(":", "-")).stat().st_size == x["size"]
    assert (models / "manifests/registry.ollama.ai/library/Legacy/7b").read_bytes() == fx["raw"]
