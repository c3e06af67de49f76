"""Building a model from a create request (Ollama's server/create.go), in two phases.

`plan()` checks everything the request can get wrong — names, file paths, digests, file
kinds, GGUF headers, split shards, the base model, the quantization type, the template,
parameter types, a legacy Modelfile — and writes nothing, so a bad request is an HTTP
error and the store is exactly as it was. A base model that is not installed is
`MissingBase`: the server pulls it (registry traffic is not the store's job) and plans again.

`build()` then writes what is new (quantized or converted weights, template / system /
params / messages / license blobs), the config blob and, last, the manifest. It reports
progress with Ollama's status lines. If it fails or is cancelled, every blob it created
that no manifest uses is removed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pollama.api.errors import APIError, invalid_model_name
from pollama.api.manage import CreateRequest
from pollama.modelfile import Command, ModelfileError, parse, to_request
from pollama.modelfile import params as P
from pollama.names import InvalidName, ModelName
from pollama.store import gojson
from pollama.store.blobs import Blob
from pollama.store.config import describe_gguf, new_config
from pollama.store.digest import blob_filename, canonical, is_digest
from pollama.store.gguf_meta import GGUF_MAGIC, GGUFError, GGUFInfo, read_gguf
from pollama.store.manifest import (
    MEDIA_ADAPTER,
    MEDIA_LICENSE,
    MEDIA_MESSAGES,
    MEDIA_MODEL,
    MEDIA_PARAMS,
    MEDIA_PROJECTOR,
    MEDIA_PROMPT,
    MEDIA_SYSTEM,
    MEDIA_TEMPLATE,
    Layer,
)
from pollama.store.store import Store

log = logging.getLogger("pollama.create")

Emit = Callable[[dict[str, Any]], None]

QUANTIZE_SOURCES = ("F16", "BF16", "F32")
_SPLIT_NAME = re.compile(r"^(.*)-(\d{5})-of-(\d{5})\.gguf$")
_MAX_FILES = 1024
_MAX_MODELFILE = 16 << 20


class Cancelled(Exception):
    """The client went away; the build stopped between steps."""


class MissingBase(APIError):
    """The model named by `from` / FROM is not installed. The server pulls it and plans again
    (Ollama pulls a missing base); anyone else gets Ollama's 404 for a missing model."""

    def __init__(self, name: ModelName, text: str):
        super().__init__(404, f'model "{text}" not found, try pulling it first')
        self.name = name


def bad(message: str) -> APIError:
    return APIError(400, message)


# -- the plan ---------------------------------------------------------------------------


@dataclass
class Plan:
    name: ModelName
    layers: list[Layer]  # base layers in manifest order (from the base model, or the files)
    infos: dict[str, GGUFInfo]  # digest -> GGUF header, for every GGUF layer
    config: dict[str, Any]  # fields inherited from the base model's config
    quantize: str = ""  # target file type, "" for none
    safetensors: dict[str, str] = field(default_factory=dict)  # files to convert: name -> digest
    template: str = ""
    system: str = ""
    licenses: list[str] = field(default_factory=list)
    params: dict[str, Any] | None = None  # merged over the base's params; None keeps the base layer
    messages: list[dict[str, str]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # blobs written while planning (legacy `path`)
    warnings: list[str] = field(default_factory=list)
    gguf_files: int = 0  # uploaded GGUF files parsed (one "parsing GGUF" line each)


def plan(store: Store, req: CreateRequest) -> Plan:
    """Check a create request against the store; APIError (400/404) for anything wrong."""
    created: list[str] = []
    try:
        return _plan(store, req, created)
    except BaseException:
        store.discard(created)  # files a legacy `path` Modelfile named, imported for nothing
        raise


def _plan(store: Store, req: CreateRequest, created: list[str]) -> Plan:
    warnings: list[str] = []
    if req.modelfile or req.path:
        req, warnings = _from_modelfile(store, req, created)
    try:
        name = ModelName.parse(req.target)
    except InvalidName:
        raise invalid_model_name() from None
    if not req.from_ and not req.files:
        raise bad("neither 'from' or 'files' was specified")
    quantize = _quantize_type(req.quantize_type)
    template = req.template
    if template:
        _check_template(template)
    try:
        new_params = P.check(req.parameters)
    except P.ParameterError as e:
        raise bad(str(e)) from None
    requires = req.requires
    if requires:
        from pollama.modelfile import check_requires

        try:
            requires = check_requires(requires)
        except ValueError as e:
            raise bad(str(e)) from None

    infos: dict[str, GGUFInfo] = {}
    config: dict[str, Any] = {}
    safetensors: dict[str, str] = {}
    if req.from_:
        if req.files:
            raise bad("'from' and 'files' cannot be used together: name a model or upload files")
        layers, config, base_params = _base_model(store, req.from_, infos)
    else:
        layers, safetensors = _files(store, req.files or {}, infos)
        base_params = {}
    for layer in _adapters(store, req.adapters or {}, infos):
        layers.append(layer)

    for key in ("renderer", "parser"):
        if getattr(req, key):
            config[key] = getattr(req, key)
    if requires:
        config["requires"] = requires
    models = [x for x in layers if x.media_type == MEDIA_MODEL]
    if quantize and models and source_type(infos[models[0].digest]) not in QUANTIZE_SOURCES:
        # the first shard decides: later shards of a split model carry no general.file_type
        raise bad("quantization is only supported for F16, BF16 and F32 models")

    params = None
    if new_params:
        params = {k: v for k, v in base_params.items() if k not in new_params} | new_params
    messages = [m.model_dump() for m in req.messages or []]
    for m in messages:
        if m["role"] not in ("system", "user", "assistant", "tool"):
            raise bad(f'invalid message role "{m["role"]}"')
    return Plan(
        name=name,
        layers=layers,
        infos=infos,
        config=config,
        quantize=quantize,
        safetensors=safetensors,
        template=template,
        system=req.system,
        licenses=req.licenses,
        params=params,
        messages=messages,
        created=created,
        warnings=warnings,
        gguf_files=0 if req.from_ else sum(1 for x in layers if x.digest in infos),
    )


def _quantize_type(text: str) -> str:
    if not text:
        return ""
    from pollama.engine.quantize import ALIASES, FILE_TYPES

    want = ALIASES.get(text.upper(), text.upper())
    if want not in FILE_TYPES:
        raise bad(
            f"unsupported quantization type {text.upper()} - supported types are F32, F16, BF16, Q4_K_S, Q4_K_M, Q8_0"
        )
    return want


def _check_template(text: str) -> None:
    from pollama.prompt.errors import TemplateError
    from pollama.prompt.gotemplate import Template

    try:
        Template.parse(text)
    except TemplateError as e:
        raise bad(f"template error: {e.message}") from None


def source_type(info: GGUFInfo) -> str:
    """The file type of a GGUF: general.file_type, or — where that is 0 or missing, as
    converters write for all-F32 files — the one float type all its matrices share."""
    if info.file_type != "unknown":
        return info.file_type
    kinds = {t.type for t in info.tensors if len([d for d in t.shape if d > 1]) >= 2}
    if len(kinds) == 1 and (kind := kinds.pop()) in QUANTIZE_SOURCES:
        return kind
    return "unknown"


def _base_model(
    store: Store, text: str, infos: dict[str, GGUFInfo]
) -> tuple[list[Layer], dict[str, Any], dict[str, Any]]:
    try:
        name = ModelName.parse(text)
    except InvalidName:
        raise invalid_model_name() from None
    model = store.resolve(name)
    if model is None:
        raise MissingBase(name, text)
    if not model.manifest.config.digest:
        raise APIError(500, f"model {model.name.display} is missing its config")
    base = model.name.display
    layers = []
    for layer in model.manifest.layers:
        if layer.media_type in (MEDIA_MODEL, MEDIA_PROJECTOR, MEDIA_ADAPTER):
            infos[layer.digest] = _read_header(store, layer.digest, base)
        layers.append(layer.with_from(base))
    inherited = {
        k: model.config[k] for k in ("renderer", "parser", "requires", "capabilities") if model.config.get(k)
    }
    return layers, inherited, dict(model.params)


def _read_header(store: Store, digest: str, what: str) -> GGUFInfo:
    try:
        return read_gguf(store.blob_path(digest), max_array=0)
    except GGUFError as e:
        raise bad(f"{what}: not a valid GGUF file ({e})") from None


def check_file_name(name: str) -> str:
    """A `files` key: a relative, normalized path (Go's fs.ValidPath, no `\\` or `:`)."""
    parts = name.split("/")
    if (
        not name
        or name == "."
        or any(p in ("", ".", "..") for p in parts)
        or "\\" in name
        or ":" in name
        or "\x00" in name
    ):
        raise bad(f"file path must be relative: {name}")
    return name


def _kind(store: Store, name: str, digest: str) -> str:
    """gguf, safetensors, or "" (a side file: config.json, tokenizer files, ...)."""
    if name.endswith(".safetensors"):
        return "safetensors"
    try:
        with open(store.blob_path(digest), "rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise bad(f'blob "{canonical(digest)}" not found (upload {name} to /api/blobs first)') from None
    if head == GGUF_MAGIC:
        return "gguf"
    if name.endswith(".gguf"):
        raise bad(f"{name}: supplied file was not in GGUF format")
    return ""


def _files(
    store: Store, files: dict[str, str], infos: dict[str, GGUFInfo]
) -> tuple[list[Layer], dict[str, str]]:
    if len(files) > _MAX_FILES:
        raise bad(f"too many files: {len(files)} exceeds maximum {_MAX_FILES}")
    checked: dict[str, str] = {}
    for name, digest in files.items():
        check_file_name(name)
        if not digest:
            raise bad("invalid digest format")
        if not is_digest(digest):
            raise bad(f"invalid digest for {name}: invalid digest format")
        checked[name] = canonical(digest)
    kinds = {name: _kind(store, name, d) for name, d in sorted(checked.items())}
    found = {k for k in kinds.values() if k}
    if found == {"gguf", "safetensors"}:
        raise bad("mixed model file types: found both gguf and safetensors inputs")
    if not found:
        raise bad("unknown type: no GGUF or safetensors file among the files")
    if found == {"safetensors"}:
        return [], checked

    layers: list[Layer] = []
    splits: dict[str, list[tuple[int, int, str, str]]] = {}
    for name in sorted(checked):
        if kinds[name] != "gguf":
            continue  # Ollama ignores side files next to GGUFs
        digest = checked[name]
        info = _read_header(store, digest, name)
        infos[digest] = info
        media = _gguf_media(info)
        count = info.kv.get("split.count")
        if isinstance(count, int) and count > 1:
            no = info.kv.get("split.no")
            if not isinstance(no, int) or not 0 <= no < count:
                raise bad(f'split GGUF "{name}" has no valid split.no')
            prefix = ""
            m = _SPLIT_NAME.match(PurePosixPath(name).name)
            if m:  # llama.cpp's names must agree with the metadata; other names (blob names) go by it
                if int(m.group(3)) != count or int(m.group(2)) != no + 1:
                    raise bad(
                        f'split GGUF "{name}": its name does not match its split.no/split.count metadata'
                    )
                prefix = str(PurePosixPath(name).parent / m.group(1))
            splits.setdefault(f"{media}:{prefix}:{count}", []).append((no, count, name, digest))
            continue
        layers.append(store.existing_layer(digest, media))
    for shards in splits.values():
        shards.sort()
        count = shards[0][1]
        have = [s[0] for s in shards]
        twice = sorted({i for i in have if have.count(i) > 1})
        if twice:
            raise bad(f'split GGUF "{shards[0][2]}": shard {twice[0] + 1} of {count} was given twice')
        if have != list(range(count)):
            missing = sorted(set(range(count)) - set(have))
            raise bad(f'split GGUF "{shards[0][2]}" is missing shard {missing[0] + 1} of {count}')
        media = _gguf_media(infos[shards[0][3]])
        layers.extend(store.existing_layer(d, media, from_=PurePosixPath(n).name) for _, _, n, d in shards)
    layers.sort(key=lambda layer: layer.media_type != MEDIA_MODEL)  # the model first, then projectors
    if not any(layer.media_type == MEDIA_MODEL for layer in layers):
        raise bad("no model among the files: only projectors or adapters were given")
    return layers, {}


def _gguf_media(info: GGUFInfo) -> str:
    """Model, vision projector or LoRA adapter, as Ollama tells them apart."""
    kind = info.kv.get("general.type")
    if kind == "adapter":
        return MEDIA_ADAPTER
    if kind in ("projector", "mmproj"):
        return MEDIA_PROJECTOR
    arch = info.architecture
    blocks = info.kv.get(f"{arch}.block_count", 0)
    if not blocks and info.kv.get(f"{arch}.vision.block_count"):
        return MEDIA_PROJECTOR
    if arch == "clip" and not blocks:
        return MEDIA_PROJECTOR
    return MEDIA_MODEL


def _adapters(store: Store, adapters: dict[str, str], infos: dict[str, GGUFInfo]) -> list[Layer]:
    if not adapters:
        return []
    if len(adapters) > 1:
        raise bad("only one adapter is currently supported")
    ((name, digest),) = adapters.items()
    check_file_name(name)
    if not digest or not is_digest(digest):
        raise bad("invalid digest format")
    if _kind(store, name, digest) != "gguf":
        raise bad(f"{name}: only GGUF adapters are supported (convert safetensors adapters to GGUF first)")
    infos[canonical(digest)] = _read_header(store, digest, name)
    return [store.existing_layer(digest, MEDIA_ADAPTER)]


# -- the legacy form: a Modelfile parsed on the server ----------------------------------------


def _from_modelfile(store: Store, req: CreateRequest, created: list[str]) -> tuple[CreateRequest, list[str]]:
    base_dir: Path | None = None
    text = req.modelfile
    if not text:
        path = Path(req.path)
        if not path.is_absolute():
            raise bad(f"path must be absolute: {req.path}")
        try:
            if path.stat().st_size > _MAX_MODELFILE:
                raise bad(f"{req.path} is too large to be a Modelfile")
            raw = path.read_bytes()
        except OSError as e:
            raise bad(f"error reading modelfile: {e.strerror or e}") from None
        base_dir = path.parent
        text = raw  # type: ignore[assignment]
    try:
        fields, warnings = to_request(parse(text), _resolver(store, base_dir, created))
    except ModelfileError as e:
        raise bad(str(e)) from None
    for w in warnings:
        log.warning("%s", w)
    update: dict[str, Any] = {"modelfile": "", "path": ""}
    for key in (
        "from",
        "files",
        "adapters",
        "template",
        "system",
        "parameters",
        "renderer",
        "parser",
        "requires",
    ):
        if key in fields:
            update["from_" if key == "from" else key] = fields[key]
    if "license" in fields:
        update["license"] = fields["license"]
    if "messages" in fields:
        update["messages"] = [{"role": m["role"], "content": m["content"]} for m in fields["messages"]]
    merged = req.model_dump(by_alias=False) | update
    merged["from"] = merged.pop("from_")
    return CreateRequest.model_validate(merged), warnings


def _resolver(store: Store, base_dir: Path | None, created: list[str]):
    """FROM/ADAPTER arguments of a server-side Modelfile: `@sha256:<hex>` blob references, a
    blob path inside this store (what `show --modelfile` prints), or — with `path` — a file
    next to that Modelfile (never one outside its folder). Anything else is a model name."""
    blobs = store.blobs.resolve()

    def resolve(cmd: Command) -> dict[str, str] | None:
        value = cmd.value
        if value.startswith("@"):
            try:
                digest = canonical(value[1:])
            except APIError:
                raise ModelfileError(
                    f"{cmd.instruction.upper()} {value}: invalid digest format", cmd.line
                ) from None
            return {blob_filename(digest): digest}
        candidate = Path(value)
        if candidate.is_absolute() and is_digest(candidate.name) and candidate.resolve().parent == blobs:
            return {candidate.name: canonical(candidate.name)}
        if base_dir is not None:
            local = (base_dir / value).resolve() if not candidate.is_absolute() else candidate.resolve()
            if local.exists():
                root = base_dir.resolve()
                if not local.is_relative_to(root):
                    raise ModelfileError(
                        f"{cmd.instruction.upper()} {value}: the path leaves the Modelfile's folder", cmd.line
                    )
                return _import_local(store, local, created, cmd)
        if cmd.instruction == "from" and ModelName.is_valid(value):
            return None
        raise ModelfileError(
            f"{cmd.instruction.upper()} {value}: local files must be uploaded to /api/blobs and named "
            "@sha256:<digest> in a Modelfile sent as text",
            cmd.line,
        )

    return resolve


def _import_local(store: Store, path: Path, created: list[str], cmd: Command) -> dict[str, str]:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    out: dict[str, str] = {}
    for f in files:
        blob = store.import_file(f)
        if blob.created:
            created.append(blob.digest)
        out[f.relative_to(path).as_posix() if path.is_dir() else f.name] = blob.digest
    if not out:
        raise ModelfileError(f"{cmd.instruction.upper()} {cmd.value}: no files found", cmd.line)
    return out


# -- the build ---------------------------------------------------------------------------


class _Build:
    def __init__(self, store: Store, plan: Plan, emit: Emit, cancelled: Callable[[], bool]):
        self.store = store
        self.plan = plan
        self.emit = emit
        self.cancelled = cancelled
        self.created: list[str] = list(plan.created)
        self.pins: list[str] = []
        self.statuses: dict[str, str] = {}  # digest -> "creating new layer ..." / "using existing ..."

    def check(self) -> None:
        if self.cancelled():
            raise Cancelled()

    def put(self, data: bytes) -> Blob:
        return self.keep(self.store.write_blob(data))

    def adopt(self, tmp: Path, digest: str) -> Blob:
        return self.keep(self.store.adopt_temp(tmp, digest))

    def keep(self, blob: Blob) -> Blob:
        """Pin a blob this build made until the manifest names it; remember it for cleanup."""
        self.store.pin(blob.digest)
        self.pins.append(blob.digest)
        if blob.created:
            self.created.append(blob.digest)
        self.statuses.setdefault(blob.digest, blob.status)
        return blob

    def run(self) -> None:
        plan, store = self.plan, self.store
        layers = list(plan.layers)
        for _ in range(plan.gguf_files):
            self.emit({"status": "parsing GGUF"})
        if plan.safetensors:
            layers = self.convert() + layers
        layers = self.quantize(layers)
        self.check()
        if plan.template:
            layers = [x for x in layers if x.media_type not in (MEDIA_TEMPLATE, MEDIA_PROMPT)]
            layers.append(self.put(plan.template.encode()).layer(MEDIA_TEMPLATE))
        if plan.system:
            layers = [x for x in layers if x.media_type != MEDIA_SYSTEM]
            layers.append(self.put(plan.system.encode()).layer(MEDIA_SYSTEM))
        for text in plan.licenses:
            layers.append(self.put(text.encode()).layer(MEDIA_LICENSE))
        if plan.params is not None:
            layers = [x for x in layers if x.media_type != MEDIA_PARAMS]
            layers.append(self.put(P.layer_bytes(plan.params)).layer(MEDIA_PARAMS))
        if plan.messages:
            layers = [x for x in layers if x.media_type != MEDIA_MESSAGES]
            layers.append(self.put(gojson.dumps(plan.messages, newline=True)).layer(MEDIA_MESSAGES))
        config = new_config(self.config_fields(layers), [x.digest for x in layers])
        for layer in layers:
            self.emit({"status": self.statuses.get(layer.digest, f"using existing layer {layer.digest}")})
        self.check()
        self.emit({"status": "writing manifest"})
        config_digest = "sha256:" + hashlib.sha256(gojson.dumps(config, newline=True)).hexdigest()
        if not store.has_blob(config_digest):
            self.created.append(config_digest)  # write_manifest writes it; gone again if that fails
        store.write_manifest(plan.name, config, layers)

    def config_fields(self, layers: list[Layer]) -> dict[str, Any]:
        infos = self.plan.infos
        models = [infos[x.digest] for x in layers if x.media_type == MEDIA_MODEL and x.digest in infos]
        fields = describe_gguf(models)
        if models:
            fields["file_type"] = source_type(models[0])
        for x in layers:
            arch = infos[x.digest].architecture if x.digest in infos else ""
            if x.media_type == MEDIA_PROJECTOR and arch and arch not in fields.get("model_families", []):
                fields.setdefault("model_families", []).append(arch)
        return fields | self.plan.config

    # -- quantize ----------------------------------------------------------------------

    def quantize(self, layers: list[Layer]) -> list[Layer]:
        want = self.plan.quantize
        models = [x for x in layers if x.media_type == MEDIA_MODEL]
        if not want or not models:
            return layers
        first = self.plan.infos[models[0].digest]
        have = source_type(first)
        if have == want:
            return layers
        from pollama.engine.quantize import QuantizeError, quantize

        total = sum(x.size for x in models)
        weights = {t.name: t.n_elements for x in models for t in self.plan.infos[x.digest].tensors}
        all_elements = sum(weights.values()) or 1
        done = 0
        status = f"quantizing {have} model to {want}"

        def report(completed: int) -> None:
            self.emit(
                {"status": status, "digest": "0000000000000000000", "total": total, "completed": completed}
            )

        def on_tensor(name: str) -> None:  # a tensor starts: the ones before it are done
            nonlocal done
            if done:
                report(min(total, int(done / all_elements * total)))
            done += weights.get(name, 0)

        report(0)
        tmp = self.store.new_temp()
        staging = None
        try:
            src = self.store.blob_path(models[0].digest)
            if len(models) > 1:  # llama.cpp finds the other shards by their file names
                staging, src = self.stage_split(models)
            from pollama.config import settings

            try:
                quantize(src, tmp, want, threads=settings().num_threads, on_tensor=on_tensor)
            except QuantizeError as e:
                raise APIError(500, str(e)) from None
            self.emit({"status": status, "digest": "0000000000000000000", "total": total, "completed": total})
            self.emit({"status": "verifying conversion"})
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            try:
                info = read_gguf(tmp, max_array=0)
            except GGUFError as e:
                raise APIError(500, f"the quantized model is not readable: {e}") from None
            blob = self.adopt(tmp, _hash_file(tmp))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
        self.plan.infos[blob.digest] = info
        new = blob.layer(MEDIA_MODEL)
        out, placed = [], False
        for x in layers:
            if x.media_type == MEDIA_MODEL:
                if not placed:
                    out.append(new)
                    placed = True
            else:
                out.append(x)
        return out

    def stage_split(self, models: list[Layer]) -> tuple[Path, Path]:
        staging = self.store.new_temp()
        staging.mkdir()
        count = len(models)
        first = None
        for i, x in enumerate(models, start=1):
            link = staging / f"model-{i:05d}-of-{count:05d}.gguf"
            os.link(self.store.blob_path(x.digest), link)
            first = first or link
        assert first is not None
        return staging, first

    # -- safetensors ---------------------------------------------------------------------

    def convert(self) -> list[Layer]:
        try:
            from pollama.convert import ConvertError, convert_safetensors
        except ImportError:
            raise bad("creating a model from safetensors is not available in this build") from None
        staging = self.store.new_temp()
        out = self.store.new_temp()
        try:
            staging.mkdir()
            for name, digest in self.plan.safetensors.items():
                dest = staging / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.link(self.store.blob_path(digest), dest)
            self.check()
            try:
                convert_safetensors(staging, out, progress=lambda s: self.emit({"status": s}))
            except ConvertError as e:
                raise bad(str(e)) from None
            with open(out, "rb+") as f:
                os.fsync(f.fileno())
            try:
                info = read_gguf(out, max_array=0)
            except GGUFError as e:
                raise APIError(500, f"the converted model is not readable: {e}") from None
            blob = self.adopt(out, _hash_file(out))
        finally:
            with contextlib.suppress(FileNotFoundError):
                out.unlink()
            shutil.rmtree(staging, ignore_errors=True)
        self.plan.infos[blob.digest] = info
        return [blob.layer(MEDIA_MODEL)]


def _hash_file(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            sha.update(block)
    return "sha256:" + sha.hexdigest()


def build(store: Store, plan: Plan, emit: Emit, cancelled: Callable[[], bool] = lambda: False) -> None:
    """Write the planned model. On any failure the blobs this build created are removed
    (unless something else references them) and the error propagates."""
    job = _Build(store, plan, emit, cancelled)
    with store.pinned(x.digest for x in plan.layers):
        try:
            job.run()
        except BaseException:
            _unpin(store, job)
            store.discard(job.created)
            raise
        _unpin(store, job)


def _unpin(store: Store, job: _Build) -> None:
    for digest in job.pins:
        store.unpin(digest)


__all__ = ["Cancelled", "Plan", "build", "check_file_name", "plan", "source_type"]
