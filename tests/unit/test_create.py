"""The create pipeline on a real store without a server: failures in the build phase (after
blobs were written) leave the store exactly as it was; the plan phase writes nothing."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from pollama.api.errors import APIError
from pollama.api.manage import CreateRequest
from pollama.names import ModelName
from pollama.store import Store
from pollama.store.atomic import TEMP_PREFIX
from pollama.store.create import Cancelled, build, plan
from tests.ggufs import tiny_llama


def state(store: Store) -> dict[str, int]:
    return {
        p.relative_to(store.root).as_posix(): p.stat().st_size for p in store.root.rglob("*") if p.is_file()
    }


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "models", noprune=False)
    s.ensure_layout()
    return s


def upload(store: Store, path: Path) -> str:
    return store.import_file(path).digest


def request(**fields) -> CreateRequest:
    return CreateRequest.model_validate(fields)


def test_a_failing_build_removes_what_it_wrote(store: Store, tmp_path: Path) -> None:
    d = upload(store, tiny_llama(tmp_path / "m.gguf", dtype=np.float16))
    before = state(store)
    job = plan(
        store, request(model="m", files={"m.gguf": d}, system="s", license="L", parameters={"top_k": 3})
    )
    assert state(store) == before  # planning wrote nothing

    def emit(obj: dict) -> None:
        if obj["status"] == "writing manifest":
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        build(store, job, emit)
    assert state(store) == before
    assert store.resolve(ModelName.parse("m")) is None


def test_a_cancelled_quantization_leaves_nothing(store: Store, tmp_path: Path) -> None:
    d = upload(store, tiny_llama(tmp_path / "m.gguf", dtype=np.float16))
    before = state(store)
    job = plan(store, request(model="q", files={"m.gguf": d}, quantize="q8_0", template="{{ .Prompt }}"))
    seen: list[str] = []
    with pytest.raises(Cancelled):
        build(
            store,
            job,
            lambda obj: seen.append(obj["status"]),
            cancelled=lambda: "verifying conversion" in seen,
        )
    assert "quantizing F16 model to Q8_0" in seen
    assert state(store) == before  # the quantized weights were written, then removed
    assert not [p for p in store.root.rglob(f"{TEMP_PREFIX}*")]


def test_a_quantization_llama_cpp_refuses_is_an_error_and_leaves_nothing(
    store: Store, tmp_path: Path
) -> None:
    w = gguf.GGUFWriter(str(tmp_path / "b.gguf"), "nosucharch")  # an architecture llama.cpp lacks
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tensor("blk.0.ffn_up.weight", np.ones((256, 256), dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    d = upload(store, tmp_path / "b.gguf")
    before = state(store)
    job = plan(store, request(model="b", files={"b.gguf": d}, quantize="Q4_K_M"))
    with pytest.raises(APIError) as e:
        build(store, job, lambda obj: None)
    assert e.value.status == 500 and "could not quantize" in e.value.message
    assert state(store) == before


def test_replacing_a_model_keeps_blobs_another_model_uses(store: Store, tmp_path: Path) -> None:
    d = upload(store, tiny_llama(tmp_path / "m.gguf", dtype=np.float16))
    build(store, plan(store, request(model="a", files={"m.gguf": d}, system="one")), lambda obj: None)
    build(store, plan(store, request(model="b", from_="a")), lambda obj: None)
    build(store, plan(store, request(model="a", files={"m.gguf": d}, system="two")), lambda obj: None)
    b = store.resolve(ModelName.parse("b"))
    assert b is not None and b.system == "one"  # "one" is still b's, so replacing a kept it
    assert all(store.has_blob(x.digest) for x in b.manifest.all_layers())


def test_a_manifest_that_cannot_be_written_leaves_no_config_blob(store: Store, tmp_path: Path) -> None:
    d = upload(store, tiny_llama(tmp_path / "m.gguf", dtype=np.float16))
    blocker = store.manifests / "registry.ollama.ai" / "library" / "m"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the model's folder should be")
    before = state(store)
    job = plan(store, request(model="m", files={"m.gguf": d}, system="s"))
    with pytest.raises(OSError):
        build(store, job, lambda obj: None)
    assert state(store) == before  # the config blob written just before the manifest is gone too
