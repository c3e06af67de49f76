"""Per-sequence token sampling: a llama.cpp sampler chain, with cheap paths where possible.

The C chain builds a candidate array over the whole vocabulary on every call (262k
entries for Gemma 3: ~0.8 ms). When decoding is greedy and no penalty is active we skip
it and take the argmax of the logits row with numpy, which is an order of magnitude
cheaper and gives the same token.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass

import llama_cpp as L
import numpy as np

from pollama.engine.grammar import Candidates, new_grammar_sampler
from pollama.engine.llama import Model

CANDIDATE_POOL = 64  # tokens checked one by one against a grammar before the full-vocabulary pass


@dataclass(frozen=True)
class SamplingParams:
    """Ollama's sampling options (ollama-reference §1.2), already merged and typed."""

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.0
    typical_p: float = 1.0
    repeat_last_n: int = 64
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int = -1

    @property
    def penalties_active(self) -> bool:
        return self.repeat_last_n != 0 and (
            self.repeat_penalty != 1.0 or self.presence_penalty != 0.0 or self.frequency_penalty != 0.0
        )

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass(frozen=True)
class TokenLogprob:
    token: int
    logprob: float


class Sampler:
    """Owned by the runner thread; one per active sequence.

    With a grammar (Ollama's `format`), sampling follows llama.cpp's common_sampler: pick a
    token without the grammar, check only that token against it, and run the (costly)
    grammar over the whole vocabulary only when it was rejected.
    """

    def __init__(self, params: SamplingParams, model: Model, n_ctx: int, grammar: str | None = None):
        self.params = params
        self.n_vocab = model.n_vocab
        self._argmax_only = params.greedy and not params.penalties_active
        self._chain = None if self._argmax_only else self._build_chain(params, n_ctx)
        self._grammar = new_grammar_sampler(model, grammar) if grammar else None
        self._candidates = Candidates(self.n_vocab) if grammar else None

    def _build_chain(self, p: SamplingParams, n_ctx: int):
        chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())

        def add(sampler) -> None:
            L.llama_sampler_chain_add(chain, sampler)

        if p.penalties_active:
            last_n = n_ctx if p.repeat_last_n < 0 else p.repeat_last_n
            add(
                L.llama_sampler_init_penalties(
                    self.n_vocab, last_n, p.repeat_penalty, p.frequency_penalty, p.presence_penalty
                )
            )
        if p.greedy:
            add(L.llama_sampler_init_greedy())
            return chain
        # llama.cpp's default order: top_k -> typical -> top_p -> min_p -> temperature -> dist.
        if p.top_k > 0:
            add(L.llama_sampler_init_top_k(p.top_k))
        if 0.0 < p.typical_p < 1.0:
            add(L.llama_sampler_init_typical(p.typical_p, 1))
        if 0.0 < p.top_p < 1.0:
            add(L.llama_sampler_init_top_p(p.top_p, 1))
        if p.min_p > 0.0:
            add(L.llama_sampler_init_min_p(p.min_p, 1))
        add(L.llama_sampler_init_temp(p.temperature))
        seed = L.LLAMA_DEFAULT_SEED if p.seed < 0 else p.seed & 0xFFFFFFFF
        add(L.llama_sampler_init_dist(seed))
        return chain

    def accept_prompt(self, tokens: list[int]) -> None:
        """Feed prompt tokens to the penalties, as llama-server does (penalties see the prompt)."""
        if self._chain is not None and self.params.penalties_active:
            for t in tokens:
                L.llama_sampler_accept(self._chain, t)

    def sample(self, ctx, batch_index: int) -> int:
        if self._grammar is not None:
            return self._sample_constrained(self.logits(ctx, batch_index))
        if self._argmax_only:
            return int(self.logits(ctx, batch_index).argmax())
        return L.llama_sampler_sample(self._chain, ctx, batch_index)  # samples AND accepts

    def _pick(self, logits: np.ndarray, ids: np.ndarray | None = None, grammar: bool = False) -> int:
        """Sample from `logits` (restricted to `ids` if given) with the chain; greedy if none."""
        cands = self._candidates
        cands.load(logits, ids)
        if grammar:
            L.llama_sampler_apply(self._grammar, cands.pointer)
        if self._chain is None:
            size = cands.array.size
            return int(cands.data["id"][int(cands.data["logit"][:size].argmax())])
        L.llama_sampler_apply(self._chain, cands.pointer)
        return cands.selected()

    def _sample_constrained(self, logits: np.ndarray) -> int:
        """Grammar-constrained sampling in three tiers, cheapest first.

        1. Sample as if unconstrained and check that one token (~10 us).
        2. Otherwise keep the grammar-allowed tokens among the best CANDIDATE_POOL by logit
           and sample among them: exact for greedy, and for top_k <= CANDIDATE_POOL it only
           differs from llama.cpp when fewer than top_k of the pool are allowed.
        3. Otherwise run the grammar over the whole vocabulary (~70 ms on Gemma 3's 262k).
        """
        allows = self._candidates.allows
        token = int(logits.argmax()) if self._chain is None else self._pick(logits)
        if not allows(self._grammar, token):
            pool = np.argpartition(-logits, CANDIDATE_POOL)[:CANDIDATE_POOL]
            pool = pool[np.argsort(-logits[pool])]
            if self._chain is None:
                token = next((int(t) for t in pool if allows(self._grammar, int(t))), -1)
            else:
                allowed = np.array([t for t in pool if allows(self._grammar, int(t))], dtype=np.int32)
                token = self._pick(logits, allowed) if len(allowed) else -1
            if token < 0:
                token = self._pick(logits, grammar=True)
        if self._chain is not None:
            L.llama_sampler_accept(self._chain, token)
        L.llama_sampler_accept(self._grammar, token)
        return token

    def logits(self, ctx, batch_index: int) -> np.ndarray:
        ptr = L.llama_get_logits_ith(ctx, batch_index)
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,))

    def logprobs(
        self, ctx, batch_index: int, token: int, top: int
    ) -> tuple[TokenLogprob, list[TokenLogprob]]:
        """Log-probability of `token` and the `top` most likely alternatives, from raw logits."""
        row = self.logits(ctx, batch_index).astype(np.float64)
        peak = row.max()
        log_z = peak + math.log(float(np.exp(row - peak).sum()))
        chosen = TokenLogprob(token, float(row[token] - log_z))
        alternatives: list[TokenLogprob] = []
        if top > 0:
            idx = np.argpartition(row, -top)[-top:]
            idx = idx[np.argsort(row[idx])[::-1]]
            alternatives = [TokenLogprob(int(i), float(row[i] - log_z)) for i in idx]
        return chosen, alternatives

    def close(self) -> None:
        if self._chain is not None:
            L.llama_sampler_free(self._chain)
            self._chain = None
        if self._grammar is not None:
            L.llama_sampler_free(self._grammar)
            self._grammar = None
