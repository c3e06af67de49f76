"""The continuous-batching loop: one thread owns one llama_context and serves many sequences.

Each step builds one llama_batch with one token for every sequence that is generating,
then fills the remaining room with chunks of prompts waiting to be evaluated (chunked
prefill mixed with decode), runs ONE llama_decode and samples every sequence that got
logits. Requests arrive through a thread-safe inbox; results go back to the asyncio
loop once per step (not once per token), through `call_soon_threadsafe`.

Prefix reuse: a slot keeps its KV after a request ends. A new request takes the idle
slot whose cached tokens share the longest prefix with its prompt (or copies that prefix
from any other slot, which is cheap with a unified KV cache) and evaluates only the rest.

Images (a model loaded with a projector, see vision.py): the prompt holds placeholder ids
(negative) where an image goes and the request carries the encoded images. When a slot's
prefill reaches an image, its embeddings are decoded in a llama_decode of their own (never
mixed into the shared token batch), after the text before it and before the text after it.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import llama_cpp as L

from pollama.engine.grammar import check_grammar
from pollama.engine.llama import Model
from pollama.engine.sampling import Sampler, SamplingParams, TokenLogprob
from pollama.engine.textstream import TextStream

if TYPE_CHECKING:
    from pollama.engine.vision import EncodedImage, Projector

log = logging.getLogger("pollama.engine")


class ContextLengthExceeded(ValueError):
    """The prompt does not fit in the context and truncation was not allowed."""


class EngineError(RuntimeError):
    pass


class ImageError(ValueError):
    """An image, or a prompt with images, that the model cannot take (the client's fault)."""


@dataclass(frozen=True)
class RunnerConfig:
    num_ctx: int = 4096  # per sequence, as Ollama's num_ctx
    num_parallel: int = 1  # slots; the KV cache holds num_ctx * num_parallel tokens
    num_batch: int = 512
    num_threads: int = 2
    flash_attention: bool | None = None
    kv_cache_type: str = ""  # "", "f16", "q8_0", "q4_0"


@dataclass
class GenerationRequest:
    prompt: list[int]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    num_predict: int = -1  # -1: until EOG (bounded at 10 x num_ctx, as Ollama)
    stop: tuple[str, ...] = ()
    num_keep: int = 4
    shift: bool = True  # shift the context when it fills up, instead of stopping
    truncate: bool = True  # cut an overlong prompt to num_keep + most recent tokens
    logprobs: bool = False
    top_logprobs: int = 0
    grammar: str | None = None  # GBNF constraining the output (Ollama's `format`)
    images: tuple[EncodedImage, ...] = ()  # from Runner.tokenize_multimodal, with its prompt


@dataclass
class Chunk:
    text: str
    tokens: list[int]
    logprobs: list[tuple[TokenLogprob, list[TokenLogprob]]] | None = None


@dataclass
class Done:
    reason: str  # "stop" | "length" | "cancel"
    prompt_eval_count: int
    prompt_eval_duration: int  # ns
    eval_count: int
    eval_duration: int  # ns
    context: list[int]
    text: str = ""  # held-back text released at the end (no stop string matched)


@dataclass
class Failed:
    message: str


Event = Chunk | Done | Failed


class Generation:
    """The caller's handle: iterate it for events; cancel() frees the slot at the next step.

    Events arrive in the event loop's thread (see `_deliver`). The channel is a deque plus
    at most one waiting future: cheaper per token than an asyncio.Queue behind an async
    generator, and this runs once per streamed token.
    """

    def __init__(self, request: GenerationRequest, loop: asyncio.AbstractEventLoop):
        self.request = request
        self.loop = loop
        self._events: deque[Event] = deque()
        self._waiter: asyncio.Future | None = None
        self._ended = False  # the final event (Done/Failed) has been handed out
        self.cancelled = False
        self.finished = False
        self.submitted_ns = time.perf_counter_ns()

    def cancel(self) -> None:
        self.cancelled = True

    def push(self, event: Event) -> None:
        """Hand the iterator an event (event-loop thread only)."""
        self._events.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self):
        return self

    async def __anext__(self) -> Event:
        if self._ended:
            raise StopAsyncIteration
        while not self._events:
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        event = self._events.popleft()
        if not isinstance(event, Chunk):
            self._ended = True
        return event


class _Slot:
    __slots__ = (
        "cached",
        "eval_start",
        "gen",
        "i_batch",
        "id",
        "images",
        "last_used",
        "n_decoded",
        "n_evaluated",
        "next_token",
        "prompt",
        "prompt_pos",
        "prompt_start",
        "sampler",
        "stream",
    )

    def __init__(self, slot_id: int):
        self.id = slot_id
        self.cached: list[int] = []  # tokens whose KV this sequence holds, positions 0..n-1
        self.gen: Generation | None = None
        self.last_used = 0.0
        self._reset()

    def _reset(self) -> None:
        self.prompt: list[int] = []
        self.images: list[EncodedImage] = []  # not yet decoded, in prompt order
        self.prompt_pos = 0  # next prompt index to evaluate; == len(prompt) once generating
        self.next_token = -1  # sampled, not yet in the KV cache
        self.i_batch = -1  # row of this step's batch whose logits belong to this slot
        self.sampler: Sampler | None = None
        self.stream: TextStream | None = None
        self.n_decoded = 0
        self.n_evaluated = 0
        self.prompt_start = 0
        self.eval_start = 0

    @property
    def generating(self) -> bool:
        return self.gen is not None and self.prompt_pos >= len(self.prompt)


def _image_floor(images: Sequence[EncodedImage], n: int) -> int:
    """`n` reused prompt positions, moved back to an image's start if that cuts through it."""
    for image in images:
        if image.start < n < image.start + image.n_tokens:
            return image.start
    return n


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class Runner:
    """One loaded model with one context and `num_parallel` sequence slots."""

    def __init__(self, model: Model, config: RunnerConfig, projector: Projector | None = None):
        self.model = model
        self.config = config
        self.projector = projector
        cp = L.llama_context_default_params()
        cp.n_ctx = config.num_ctx * config.num_parallel
        cp.n_batch = config.num_batch
        cp.n_ubatch = config.num_batch
        cp.n_seq_max = config.num_parallel
        cp.n_threads = config.num_threads
        cp.n_threads_batch = config.num_threads
        cp.kv_unified = True
        cp.swa_full = True  # partial seq_rm (prefix reuse) needs the full SWA cache
        cp.no_perf = True
        if config.flash_attention is not None:
            cp.flash_attn_type = 1 if config.flash_attention else 0
        kv_types = {"q8_0": L.GGML_TYPE_Q8_0, "q4_0": L.GGML_TYPE_Q4_0, "f16": L.GGML_TYPE_F16}
        if config.kv_cache_type in kv_types:
            cp.type_k = cp.type_v = kv_types[config.kv_cache_type]
        self.ctx = L.llama_init_from_model(model.ptr, cp)
        if not self.ctx:
            raise EngineError("failed to create the llama.cpp context (out of memory?)")
        self.mem = L.llama_get_memory(self.ctx)
        self.can_shift = bool(L.llama_memory_can_shift(self.mem))
        self.n_batch = L.llama_n_batch(self.ctx)
        self._batch = L.llama_batch_init(self.n_batch, 0, 1)
        self._slots = [_Slot(i) for i in range(config.num_parallel)]
        self._pending: deque[Generation] = deque()
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._closing = False
        self._outbox: list[tuple[Generation, Event]] = []
        self._rr = 0  # round-robin start for prefill chunks
        self.kv_bytes = model.kv_bytes_per_token() * config.num_ctx * config.num_parallel
        self._thread = threading.Thread(target=self._run, name=f"runner-{model.path.name[:19]}", daemon=True)
        self._thread.start()

    # -- API for the event loop -------------------------------------------------------

    def submit(self, request: GenerationRequest) -> Generation:
        """Queue a request; truncation errors are raised here, before anything is queued."""
        request.prompt = self._fit_prompt(request)
        if request.grammar:
            check_grammar(self.model, request.grammar)  # a bad grammar fails here, not in the loop
        gen = Generation(request, asyncio.get_running_loop())
        self._inbox.put(gen)
        return gen

    @property
    def waiting(self) -> int:
        """Requests accepted but not yet in a slot."""
        return self._inbox.qsize() + len(self._pending)

    @property
    def memory_bytes(self) -> int:
        """Weights plus the KV cache: what /api/ps reports as the model's size."""
        return self.model.size_bytes + self.kv_bytes + (self.projector.size_bytes if self.projector else 0)

    @property
    def busy_slots(self) -> int:
        return sum(1 for s in self._slots if s.gen is not None)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the loop (failing what is left), then free the context and model."""
        self._closing = True
        self._inbox.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("runner thread did not stop in %.0fs; leaking its context", timeout)
            return
        L.llama_batch_free(self._batch)
        L.llama_free(self.ctx)
        self.ctx = None
        if self.projector is not None:
            self.projector.close()
        self.model.close()

    def tokenize_multimodal(
        self, parts: Sequence[str | bytes], *, add_special: bool = True, prefix: Sequence[int] = ()
    ) -> tuple[list[int], tuple[EncodedImage, ...]]:
        """A prompt given as text and image-file parts: tokens and encoded images for a
        GenerationRequest. Blocking (runs the image encoder); raises ImageError."""
        if self.projector is None:
            raise ImageError("this model was loaded without a vision projector")
        return self.projector.tokenize(parts, add_special=add_special, prefix=prefix)

    def _fit_prompt(self, request: GenerationRequest) -> list[int]:
        tokens, n_ctx = request.prompt, self.config.num_ctx
        if not tokens:
            raise ContextLengthExceeded("prompt is empty")
        if len(tokens) < n_ctx:
            return tokens
        if not request.truncate or request.images:  # never cut through an image
            raise ContextLengthExceeded("the input length exceeds the context length")
        keep = max(0, min(request.num_keep, n_ctx // 2))
        tail = n_ctx - 1 - keep  # leave room for the first generated token
        log.warning("truncating input prompt: limit=%d prompt=%d keep=%d", n_ctx, len(tokens), keep)
        return tokens[:keep] + tokens[len(tokens) - tail :]

    # -- the loop (runner thread only below this line) ----------------------------------

    def _run(self) -> None:
        try:
            while not self._closing:
                self._drain_inbox(block=not self._has_work())
                if self._closing:
                    break
                if self._has_work():
                    self._step()
                    self._flush_outbox()
        except Exception as exc:  # a bug here must not leave clients hanging forever
            log.exception("runner loop crashed")
            self._fail_all(f"model runner has unexpectedly stopped: {exc}")
        finally:
            self._fail_all("server is shutting down")
            self._flush_outbox()

    def _has_work(self) -> bool:
        return bool(self._pending) or any(s.gen is not None for s in self._slots)

    def _drain_inbox(self, block: bool) -> None:
        try:
            item = self._inbox.get() if block else self._inbox.get_nowait()
            while True:
                if item is not None:
                    self._pending.append(item)
                item = self._inbox.get_nowait()
        except queue.Empty:
            pass

    def _emit(self, gen: Generation, event: Event) -> None:
        self._outbox.append((gen, event))

    def _flush_outbox(self) -> None:
        if not self._outbox:
            return
        out, self._outbox = self._outbox, []
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for gen, event in out:
            by_loop.setdefault(gen.loop, []).append((gen, event))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, items)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                pass

    def _fail_all(self, message: str) -> None:
        for slot in self._slots:
            if slot.gen is not None:
                self._release(slot, Failed(message))
        while self._pending:
            gen = self._pending.popleft()
            gen.finished = True
            self._emit(gen, Failed(message))

    # -- admission and prefix reuse ------------------------------------------------------

    def _admit(self) -> None:
        while self._pending:
            gen = self._pending[0]
            if gen.cancelled:
                self._pending.popleft()
                gen.finished = True
                self._emit(gen, Done("cancel", 0, 0, 0, 0, []))
                continue
            idle = [s for s in self._slots if s.gen is None]
            if not idle:
                return
            self._pending.popleft()
            self._start(gen, idle)

    def _start(self, gen: Generation, idle: list[_Slot]) -> None:
        prompt, images = gen.request.prompt, gen.request.images
        slot = max(idle, key=lambda s: (_common_prefix(s.cached, prompt), -s.last_used))
        reuse = _common_prefix(slot.cached, prompt)
        # A longer prefix may sit in another (even busy) slot: copy it, metadata-only with a unified cache.
        donor = max(self._slots, key=lambda s: _common_prefix(s.cached, prompt))
        donor_len = _common_prefix(donor.cached, prompt)
        reuse_cap = len(prompt) - 1  # always evaluate >= 1 token so there are logits to sample
        if donor is not slot and donor_len > reuse:
            L.llama_memory_seq_rm(self.mem, slot.id, -1, -1)
            n = _image_floor(images, min(donor_len, reuse_cap))
            L.llama_memory_seq_cp(self.mem, donor.id, slot.id, 0, n)
            slot.cached = prompt[:n]
            reuse = n
        reuse = _image_floor(images, min(reuse, reuse_cap))
        if not L.llama_memory_seq_rm(self.mem, slot.id, reuse, -1):
            L.llama_memory_seq_rm(self.mem, slot.id, -1, -1)
            reuse = 0
        del slot.cached[reuse:]
        slot._reset()
        slot.gen = gen
        slot.prompt = prompt
        slot.prompt_pos = reuse
        slot.images = [image for image in images if image.start >= reuse]
        slot.sampler = Sampler(gen.request.sampling, self.model, self.config.num_ctx, gen.request.grammar)
        slot.sampler.accept_prompt([t for t in prompt if t >= 0] if images else prompt)
        slot.stream = TextStream(gen.request.stop)
        slot.prompt_start = time.perf_counter_ns()

    # -- one step ---------------------------------------------------------------------

    def _step(self) -> None:
        for slot in self._slots:
            if slot.gen is not None and slot.gen.cancelled:
                self._finish(slot, "cancel")
        self._admit()
        batch = self._batch
        n = 0
        # 1) one token for every generating sequence: latency first.
        for slot in self._slots:
            if slot.gen is None or not slot.generating:
                continue
            if len(slot.cached) + 1 > self.config.num_ctx and not self._shift(slot):
                self._finish(slot, "length")
                continue
            n = self._put(n, slot.next_token, len(slot.cached), slot.id, True)
            slot.i_batch = n - 1
            slot.cached.append(slot.next_token)
        # 2) fill the rest with prompt chunks, round-robin so long prompts share the room.
        prefilling = [s for s in self._slots if s.gen is not None and not s.generating]
        if prefilling:
            self._rr = (self._rr + 1) % len(prefilling)
            prefilling = prefilling[self._rr :] + prefilling[: self._rr]
        for slot in prefilling:
            room = self.n_batch - n
            if room <= 0:
                break
            end = slot.prompt_pos + room
            if slot.images:
                if not self._decode_images(slot):
                    continue
                if slot.images:
                    end = min(end, slot.images[0].start)  # the text before an image goes first
            start = slot.prompt_pos
            chunk = slot.prompt[start:end]
            for j, tok in enumerate(chunk):
                n = self._put(n, tok, start + j, slot.id, False)
            slot.cached.extend(chunk)
            slot.prompt_pos += len(chunk)
            slot.n_evaluated += len(chunk)
            if slot.prompt_pos >= len(slot.prompt):
                batch.logits[n - 1] = 1
                slot.i_batch = n - 1
        if n == 0:
            return
        batch.n_tokens = n
        rc = L.llama_decode(self.ctx, batch)
        if rc != 0:
            self._recover(rc)
            return
        # 3) sample every sequence that has logits in this batch.
        now = time.perf_counter_ns()
        for slot in self._slots:
            if slot.gen is None or slot.i_batch < 0:
                continue
            index, slot.i_batch = slot.i_batch, -1
            self._sample(slot, index, now)

    def _decode_images(self, slot: _Slot) -> bool:
        """Decode the images that start where the slot's prefill stands (its earlier text
        is in the KV cache already). False if that failed and the request ended."""
        while slot.images and slot.images[0].start == slot.prompt_pos:
            image = slot.images.pop(0)
            rc = self._decode_embeddings(image, slot.prompt_pos, slot.id)
            if rc != 0:
                log.error("image decode failed (rc=%d)", rc)
                L.llama_memory_seq_rm(self.mem, slot.id, -1, -1)
                slot.cached = []
                self._release(slot, Failed(f"failed to decode the image (llama_decode rc={rc})"))
                return False
            end = slot.prompt_pos + image.n_tokens
            slot.cached.extend(slot.prompt[slot.prompt_pos : end])
            slot.prompt_pos = end
            slot.n_evaluated += image.n_tokens
        return True

    def _decode_embeddings(self, image: EncodedImage, pos: int, seq: int) -> int:
        n_embd = image.embd.size // image.n_tokens
        step = image.n_tokens if image.non_causal else self.n_batch  # non-causal: one ubatch
        batch = L.llama_batch_init(step, n_embd, 1)
        if image.non_causal:
            L.llama_set_causal_attn(self.ctx, False)
        try:
            for first in range(0, image.n_tokens, step):
                n = min(step, image.n_tokens - first)
                rows = image.embd[first * n_embd : (first + n) * n_embd]
                ctypes.memmove(batch.embd, rows.ctypes.data, rows.nbytes)
                for i in range(n):
                    batch.pos[i] = pos + first + i
                    batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = seq
                    batch.logits[i] = False
                batch.n_tokens = n
                rc = L.llama_decode(self.ctx, batch)
                if rc != 0:
                    return rc
            return 0
        finally:
            if image.non_causal:
                L.llama_set_causal_attn(self.ctx, True)
            L.llama_batch_free(batch)

    def _put(self, n: int, token: int, pos: int, seq: int, logits: bool) -> int:
        b = self._batch
        b.token[n] = token
        b.pos[n] = pos
        b.n_seq_id[n] = 1
        b.seq_id[n][0] = seq
        b.logits[n] = logits
        return n + 1

    def _sample(self, slot: _Slot, index: int, now: int) -> None:
        gen = slot.gen
        req = gen.request
        assert slot.sampler is not None and slot.stream is not None
        if slot.n_decoded == 0:
            slot.eval_start = now
        token = slot.sampler.sample(self.ctx, index)
        logprobs = None
        if req.logprobs:
            logprobs = [slot.sampler.logprobs(self.ctx, index, token, req.top_logprobs)]
        if self.model.is_eog(token):
            slot.next_token = -1
            self._finish(slot, "stop")
            return
        slot.n_decoded += 1
        slot.next_token = token
        text = slot.stream.feed(self.model.piece(token))
        if text or logprobs:
            self._emit(gen, Chunk(text, [token], logprobs))
        if slot.stream.stopped:
            self._finish(slot, "stop")
        elif slot.n_decoded >= self._max_tokens(req):
            self._finish(slot, "length")

    def _max_tokens(self, req: GenerationRequest) -> int:
        bound = 10 * self.config.num_ctx
        return bound if req.num_predict < 0 else min(req.num_predict, bound)

    def _shift(self, slot: _Slot) -> bool:
        """Context full: drop the oldest half after num_keep tokens (Ollama's context shift)."""
        req = slot.gen.request
        if not req.shift or not self.can_shift or req.images:  # shifting could cut through an image
            return False
        keep = max(0, min(req.num_keep, len(slot.cached) // 2))
        discard = (self.config.num_ctx - keep) // 2
        if discard <= 0:
            return False
        L.llama_memory_seq_rm(self.mem, slot.id, keep, keep + discard)
        L.llama_memory_seq_add(self.mem, slot.id, keep + discard, -1, -discard)
        del slot.cached[keep : keep + discard]
        log.debug("context shift: slot=%d keep=%d discard=%d", slot.id, keep, discard)
        return True

    def _finish(self, slot: _Slot, reason: str) -> None:
        now = time.perf_counter_ns()
        tail = slot.stream.flush() if slot.stream is not None else ""
        generated = slot.cached[len(slot.prompt) :] if slot.generating else []
        if slot.next_token >= 0:
            generated = [*generated, slot.next_token]
        prompt = slot.prompt
        if slot.gen.request.images:  # image placeholders are not tokens a client could send back
            prompt = [t for t in prompt if t >= 0]
        eval_start = slot.eval_start or now
        done = Done(
            reason=reason,
            prompt_eval_count=slot.n_evaluated,
            prompt_eval_duration=max(0, eval_start - slot.prompt_start),
            eval_count=slot.n_decoded,
            eval_duration=max(0, now - eval_start),
            context=prompt + generated,
            text=tail,
        )
        self._release(slot, done)

    def _release(self, slot: _Slot, event: Event | None) -> None:
        gen = slot.gen
        if slot.sampler is not None:
            slot.sampler.close()
        slot.gen = None
        slot.last_used = time.monotonic()
        slot._reset()
        if gen is not None:
            gen.finished = True
            if event is not None:
                self._emit(gen, event)

    def _recover(self, rc: int) -> None:
        """llama_decode failed. rc=1 (no KV room): drop idle caches and retry next step."""
        for slot in self._slots:  # undo what this step appended to our bookkeeping
            if slot.gen is None:
                continue
            pos_max = L.llama_memory_seq_pos_max(self.mem, slot.id)
            del slot.cached[pos_max + 1 :]
            slot.i_batch = -1
            if slot.prompt_pos > len(slot.cached):  # part of its prompt chunk did not land
                slot.n_evaluated -= slot.prompt_pos - len(slot.cached)
                slot.prompt_pos = len(slot.cached)
        if rc == 1:
            freed = False
            for slot in self._slots:
                if slot.gen is None and slot.cached:
                    L.llama_memory_seq_rm(self.mem, slot.id, -1, -1)
                    slot.cached = []
                    freed = True
            if freed:
                return
        message = f"llama_decode failed (rc={rc})"
        log.error(message)
        for slot in self._slots:
            if slot.gen is not None:
                L.llama_memory_seq_rm(self.mem, slot.id, -1, -1)
                slot.cached = []
                self._release(slot, Failed(message))


def _deliver(items: list[tuple[Generation, Event]]) -> None:
    for gen, event in items:
        gen.push(event)
