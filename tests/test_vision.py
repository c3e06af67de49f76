"""Images through a projector layer: llama.cpp's mtmd path, end to end on the real server.

No real vision model is installable here, so the model is the bundled Gemma 3 270M GGUF
plus a random-weight, tiny Gemma 3 projector (tests/ggufs.py `tiny_projector`) that mtmd
loads and runs for real: every image becomes 16 embeddings between <start_of_image> and
<end_of_image>. The answers mean nothing; what is checked is that the image tokens are
encoded, decoded and counted, and that different images change what the model computes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import ollama
import pytest

from tests.conftest import MODEL
from tests.ggufs import png, tiny_projector
from tests.serverproc import ServerProcess

VISION = "vision-test:latest"
IMAGE_TOKENS = 16 + 2  # the projector's 16 embeddings plus <start_of_image> and <end_of_image>
GREEDY = {"temperature": 0, "num_predict": 4}


def solid(rgb: tuple[int, int, int]) -> bytes:
    return png(np.tile(np.array(rgb, np.uint8), (32, 32, 1)))


# Each test uses its own images: a repeated image after the same prefix comes from the cache.
BLACK, WHITE, RED, BLUE, GREEN = (
    solid(c) for c in ((0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 0, 255), (0, 255, 0))
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def model_blob(server: ServerProcess) -> str:
    manifest = server.models / "manifests/registry.ollama.ai/library/gemma3/270m-text"
    layers = json.loads(manifest.read_text())["layers"]
    return next(x["digest"] for x in layers if x["mediaType"] == "application/vnd.ollama.image.model")


def create(http: httpx.Client, server: ServerProcess, name: str, projector: Path) -> None:
    """A model from the bundled GGUF blob plus a projector file, as `ollama create` sends it."""
    data = projector.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert http.post(f"/api/blobs/{digest}", content=data).status_code in (200, 201)
    base = http.post("/api/show", json={"model": MODEL}).json()
    body = {
        "model": name,
        "files": {"gemma3.gguf": model_blob(server), "mmproj.gguf": digest},
        "template": base["template"],
        "parameters": {"stop": ["<end_of_turn>"]},
        "stream": False,
    }
    r = http.post("/api/create", json=body)
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def vision(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with httpx.Client(base_url=server.base_url, timeout=120.0) as http:
        create(http, server, VISION, tiny_projector(tmp_path_factory.mktemp("vision") / "mmproj.gguf"))
        # Load it and leave the cache warm, so every test sees the same prefix reuse.
        r = http.post(
            "/api/generate", json={"model": VISION, "prompt": "Hi", "options": GREEDY, "stream": False}
        )
        assert r.status_code == 200, r.text
        yield VISION
        http.post("/api/generate", json={"model": VISION, "keep_alive": 0})
        http.request("DELETE", "/api/delete", json={"model": VISION})


def test_projector_model_lists_vision(http: httpx.Client, vision: str) -> None:
    show = http.post("/api/show", json={"model": vision}).json()
    assert "vision" in show["capabilities"] and "completion" in show["capabilities"]
    assert show["projector_info"]["clip.projector_type"] == "gemma3"
    assert "vision" not in http.post("/api/show", json={"model": MODEL}).json()["capabilities"]


def chat(http: httpx.Client, model: str, content: str, images: list[bytes]) -> dict:
    message = {"role": "user", "content": content, **({"images": [b64(i) for i in images]} if images else {})}
    r = http.post(
        "/api/chat", json={"model": model, "messages": [message], "options": GREEDY, "stream": False}
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_chat_counts_the_image_tokens(http: httpx.Client, vision: str) -> None:
    # Same text each time; only the images differ, so the evaluated counts differ by the image
    # tokens. Prefix reuse: each request reuses "<bos><start_of_turn>user\n" from the one
    # before it, and `two` also reuses `one`'s <start_of_image> (its first image differs).
    text = chat(http, vision, "What is in this picture?", [])
    one = chat(http, vision, "What is in this picture?", [BLACK])
    two = chat(http, vision, "What is in this picture?", [WHITE, BLACK])
    assert one["prompt_eval_count"] - text["prompt_eval_count"] == IMAGE_TOKENS
    assert two["prompt_eval_count"] - text["prompt_eval_count"] == 2 * IMAGE_TOKENS - 1
    assert one["eval_count"] > 0 and two["eval_count"] > 0


def test_different_images_change_the_output(ollama_client: ollama.Client, vision: str) -> None:
    def run(image: bytes):
        return ollama_client.generate(
            model=vision, prompt="Describe.", images=[image], options=GREEDY, logprobs=True, top_logprobs=3
        )

    red, red_again, blue = run(RED), run(RED), run(BLUE)
    assert red.prompt_eval_count >= IMAGE_TOKENS and blue.prompt_eval_count >= IMAGE_TOKENS

    def dist(r) -> list:
        return [[(t.token, round(t.logprob, 3)) for t in lp.top_logprobs] for lp in r.logprobs]

    assert dist(red) != dist(blue)
    # Deterministic, and the repeated image came from the prefix cache (only the last token ran).
    assert [lp.token for lp in red_again.logprobs] == [lp.token for lp in red.logprobs]
    assert red_again.prompt_eval_count == 1
    assert all(t >= 0 for t in red.context)  # no image placeholders leak into `context`


def test_openai_image_url(http: httpx.Client, vision: str) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64(GREEN)}},
    ]
    body = {
        "model": vision,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 3,
        "temperature": 0,
    }
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens"] >= IMAGE_TOKENS


@pytest.mark.parametrize(
    ("image", "error"),
    [
        ("%%%", "illegal base64 data at input byte 0"),
        (b64(b"GIF89a but not really a gif"), "image 0: the image data could not be decoded"),
        (
            b64(b"plain text, not an image"),
            "image 0: unsupported image format (expected JPEG, PNG, GIF or BMP)",
        ),
    ],
)
def test_bad_images_are_400(http: httpx.Client, vision: str, image: str, error: str) -> None:
    for path, body in (
        ("/api/generate", {"prompt": "x", "images": [image]}),
        ("/api/chat", {"messages": [{"role": "user", "content": "x", "images": [image]}]}),
    ):
        r = http.post(path, json={"model": vision, "stream": False, **body})
        assert r.status_code == 400, r.text
        assert r.json() == {"error": error}


def test_text_model_refuses_images(http: httpx.Client) -> None:
    r = http.post("/api/generate", json={"model": MODEL, "prompt": "x", "images": [b64(BLACK)]})
    assert r.status_code == 400
    assert r.json() == {"error": f"registry.ollama.ai/library/{MODEL} does not support vision"}


def test_wrong_projector_fails_to_load(
    http: httpx.Client, server: ServerProcess, tmp_path: Path, vision: str
) -> None:
    name = "vision-broken:latest"
    create(http, server, name, tiny_projector(tmp_path / "mmproj.gguf", n_embd_text=512))
    try:
        r = http.post("/api/generate", json={"model": name, "prompt": "x", "images": [b64(BLACK)]})
        assert r.status_code == 500
        assert r.json()["error"] == (
            f"failed to load model {name}: unable to load vision projector "
            f"{model_projector(http, name)}: mismatch between text model (n_embd = 640) and mmproj (n_embd = 512)"
        )
        # The server keeps serving, images included.
        assert chat(http, vision, "Still there?", [BLACK])["done"]
    finally:
        http.request("DELETE", "/api/delete", json={"model": name})


def model_projector(http: httpx.Client, name: str) -> str:
    """The projector blob's file name (the store names blobs by digest)."""
    modelfile = http.post("/api/show", json={"model": name}).json()["modelfile"]
    froms = [line.split(" ", 1)[1] for line in modelfile.splitlines() if line.startswith("FROM ")]
    return Path(froms[-1]).name


def test_debug_render_shows_the_image_markers(http: httpx.Client, vision: str) -> None:
    messages = [{"role": "user", "content": "Compare [img] with this.", "images": [b64(RED), b64(BLUE)]}]
    r = http.post("/api/chat", json={"model": vision, "messages": messages, "_debug_render_only": True})
    assert r.status_code == 200, r.text
    info = r.json()["_debug_info"]
    assert info["image_count"] == 2
    assert "<start_of_turn>user\n[img-1]Compare [img-0] with this.<end_of_turn>" in info["rendered_template"]
