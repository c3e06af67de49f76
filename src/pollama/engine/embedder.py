"""Embeddings: one llama_context with embeddings on and the model's own pooling (from the GGUF).

A request's inputs become one sequence each and go through as few llama_decode calls as
fit: every decode takes as many whole inputs as its micro-batch (n_ubatch) and sequence
slots hold, so a typical batch of inputs is ONE decode. Non-causal models (BERT) need every
token of a decode in one micro-batch, which is why n_batch == n_ubatch here.

The context is used by one thread at a time (a lock); calls run in a worker thread so the
event loop stays free while llama.cpp computes. Vectors come back as pooled by llama.cpp,
not normalized: the server decides (Ollama's /api/embed normalizes, /api/embeddings not).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
from dataclasses import dataclass

import llama_cpp as L
import numpy as np

from pollama.engine.llama import Model
from pollama.engine.runner import EngineError, RunnerConfig

log = logging.getLogger("pollama.engine")

MAX_SEQS = 64  # sequences per decode
MAX_UBATCH = 2048  # tokens per decode: the attention scratch grows with its square


@dataclass
class Embeddings:
    vectors: list[np.ndarray]  # float32, one per input, as pooled by the model
    prompt_tokens: int
    decodes: int  # llama_decode calls it took (tests check batching)


def is_embedding_model(model: Model) -> bool:
    return model.meta(f"{model.architecture}.pooling_type") is not None


class Embedder:
    def __init__(self, model: Model, config: RunnerConfig):
        # config.num_ctx: the longest input in tokens; config.num_batch: tokens per decode
        self.model = model
        self.config = config
        cp = L.llama_context_default_params()
        cp.embeddings = True
        cp.n_ctx = config.num_batch
        cp.n_batch = cp.n_ubatch = config.num_batch
        cp.n_seq_max = MAX_SEQS
        cp.kv_unified = True  # otherwise every sequence gets only n_ctx / n_seq_max cells
        cp.n_threads = cp.n_threads_batch = config.num_threads
        cp.no_perf = True
        self.ctx = L.llama_init_from_model(model.ptr, cp)
        if not self.ctx:
            raise EngineError("failed to create the llama.cpp embedding context (out of memory?)")
        if L.llama_pooling_type(self.ctx) == L.LLAMA_POOLING_TYPE_NONE:
            L.llama_free(self.ctx)
            raise EngineError("the model has no pooling type: it cannot produce sentence embeddings")
        self.mem = L.llama_get_memory(self.ctx)
        self.n_embd = int(L.llama_model_n_embd_out(model.ptr)) or model.n_embd
        self._batch = L.llama_batch_init(config.num_batch, 0, 1)
        self._lock = threading.Lock()
        self._waiting = 0
        self._closed = False

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def memory_bytes(self) -> int:
        return self.model.size_bytes

    async def embed(self, inputs: list[list[int]]) -> Embeddings:
        """Pooled embeddings of already tokenized, already length-checked inputs."""
        for tokens in inputs:
            if not tokens or len(tokens) > self.config.num_batch:
                raise EngineError("input is empty or longer than the embedding batch")
        self._waiting += 1
        try:
            return await asyncio.to_thread(self._embed, inputs)
        finally:
            self._waiting -= 1

    def _embed(self, inputs: list[list[int]]) -> Embeddings:
        with self._lock:
            if self._closed:
                raise EngineError("model was unloaded")
            vectors: list[np.ndarray] = []
            decodes = 0
            for group in self._groups(inputs):
                vectors.extend(self._decode(group))
                decodes += 1
            return Embeddings(vectors, sum(len(t) for t in inputs), decodes)

    def _groups(self, inputs: list[list[int]]) -> list[list[list[int]]]:
        groups: list[list[list[int]]] = [[]]
        used = 0
        for tokens in inputs:
            if groups[-1] and (used + len(tokens) > self.config.num_batch or len(groups[-1]) >= MAX_SEQS):
                groups.append([])
                used = 0
            groups[-1].append(tokens)
            used += len(tokens)
        return groups

    def _decode(self, group: list[list[int]]) -> list[np.ndarray]:
        b = self._batch
        n = 0
        for seq, tokens in enumerate(group):
            for pos, tok in enumerate(tokens):
                b.token[n] = tok
                b.pos[n] = pos
                b.n_seq_id[n] = 1
                b.seq_id[n][0] = seq
                b.logits[n] = True
                n += 1
        b.n_tokens = n
        if self.mem:
            L.llama_memory_clear(self.mem, True)
        rc = L.llama_decode(self.ctx, b)
        if rc != 0:
            raise EngineError(f"llama_decode failed (rc={rc})")
        out = []
        for seq in range(len(group)):
            ptr = L.llama_get_embeddings_seq(self.ctx, seq)
            if not ptr:
                raise EngineError("no pooled embedding returned")
            arr = np.ctypeslib.as_array(
                ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self.n_embd,)
            )
            out.append(np.array(arr, dtype=np.float32))
        return out

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            L.llama_batch_free(self._batch)
            L.llama_free(self.ctx)
            self.ctx = None
            self.model.close()
