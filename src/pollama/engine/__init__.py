"""llama.cpp inference: model loading, the continuous-batching runner, sampling.

The engine knows nothing of HTTP, model names or manifests: it gets a file path, token
ids and options, and yields tokens. `load_engine` is the one entry point the scheduler
uses; it decides the context shape (slots, context length) from the model and memory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from pollama.engine.embedder import MAX_UBATCH, Embedder, Embeddings, is_embedding_model
from pollama.engine.grammar import GrammarError, grammar_after_prefix, grammar_for_format
from pollama.engine.llama import Model, ModelLoadError
from pollama.engine.runner import (
    Chunk,
    ContextLengthExceeded,
    Done,
    EngineError,
    Failed,
    Generation,
    GenerationRequest,
    ImageError,
    Runner,
    RunnerConfig,
)
from pollama.engine.sampling import SamplingParams, TokenLogprob

log = logging.getLogger("pollama.engine")

__all__ = [
    "Chunk",
    "ContextLengthExceeded",
    "Done",
    "Embedder",
    "Embeddings",
    "EngineError",
    "Failed",
    "Generation",
    "GenerationRequest",
    "GrammarError",
    "ImageError",
    "LoadedEngine",
    "Model",
    "ModelLoadError",
    "Runner",
    "RunnerConfig",
    "SamplingParams",
    "TokenLogprob",
    "grammar_after_prefix",
    "grammar_for_format",
    "load_engine",
]


class LoadedEngine(Protocol):
    model: Model
    config: RunnerConfig

    @property
    def waiting(self) -> int: ...

    @property
    def memory_bytes(self) -> int: ...

    def close(self) -> None: ...


def choose_parallel(requested: int, auto: int, model: Model, num_ctx: int, mem_available: int) -> int:
    """OLLAMA_NUM_PARALLEL if set; otherwise `auto` slots when their KV cache fits in memory, else 1."""
    if requested > 0:
        return min(requested, 256)
    need = model.size_bytes + model.kv_bytes_per_token() * num_ctx * auto
    return auto if need <= mem_available else 1


def load_engine(
    path: Path,
    *,
    num_ctx: int,
    num_batch: int,
    num_threads: int,
    num_parallel: int,
    auto_parallel: int,
    mem_available: int,
    num_gpu: int = -1,
    use_mmap: bool = True,
    flash_attention: bool | None = None,
    kv_cache_type: str = "",
    projector_paths: list[Path] | None = None,
    adapter_paths: list[Path] | None = None,
    shards: list[Path] | None = None,
) -> tuple[LoadedEngine, RunnerConfig]:
    """Load the model file and build the runner for it (blocking; call from a worker thread)."""
    if adapter_paths:
        raise ModelLoadError("LoRA adapters are not supported yet")
    model = Model(path, n_gpu_layers=num_gpu, use_mmap=use_mmap, shards=shards)
    try:
        num_ctx = max(4, min(num_ctx, model.n_ctx_train or num_ctx))
        if is_embedding_model(model):
            # One context batches every input of a request; an input may use all of num_ctx.
            # (num_batch is not used: like Ollama, embedding models take their own batch size.)
            batch = max(num_ctx, MAX_UBATCH)
            config = RunnerConfig(num_ctx=num_ctx, num_parallel=1, num_batch=batch, num_threads=num_threads)
            return Embedder(model, config), config
        parallel = choose_parallel(num_parallel, auto_parallel, model, num_ctx, mem_available)
        kv_need = model.kv_bytes_per_token() * num_ctx * parallel
        if model.size_bytes + kv_need > mem_available:
            raise ModelLoadError(
                f"model requires more system memory ({_gib(model.size_bytes + kv_need)}) "
                f"than is available ({_gib(max(mem_available, 0))})"
            )
        config = RunnerConfig(
            num_ctx=num_ctx,
            num_parallel=parallel,
            num_batch=max(1, min(num_batch, num_ctx * parallel)),
            num_threads=num_threads,
            flash_attention=flash_attention,
            kv_cache_type=kv_cache_type,
        )
        projector = None
        if projector_paths:  # like Ollama, the first projector layer (a model has at most one)
            from pollama.engine.vision import Projector  # loads libmtmd: only for models that need it

            projector = Projector(projector_paths[0], model, n_threads=num_threads, n_batch=config.num_batch)
        try:
            return Runner(model, config, projector), config
        except BaseException:
            if projector is not None:
                projector.close()
            raise
    except BaseException:
        model.close()
        raise


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"
