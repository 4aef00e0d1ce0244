"""A lean decode loop for LLaMA-architecture models: the same modules and arithmetic as transformers' forward, without
its per-token overhead.

Decoding one token of SmolLM2-135M with q4 weights needs ~9 ms of matmuls and attention on 2 cores, while
transformers' forward took ~19 ms: the rest is per-call machinery (mask construction, cache objects, rotary tables
recomputed each step, attention dispatch, output dataclasses). `LlamaDecoder` keeps the model's own modules (the
norms, projections, MLP and head are called as they are, so q4/bf16/fp32 weights all work) and replaces only the
glue: rotary cos/sin computed once by the model's own rotary module, a preallocated KV cache written in place, and
`scaled_dot_product_attention` called directly (causal for the prompt; for one new token, the query heads sharing a
key/value head attend as that head's rows, 4x faster than `enable_gqa` here). Logits processors are transformers'
own classes (repetition penalty, no-repeat n-gram, temperature, top-k, top-p), so sampling behaves as `generate`
does. In fp32 greedy output is token-identical to `generate`; with bf16 activations the kernels round differently,
so near-ties can go either way (step logits agree within 3% of their scale; tested). Batch size 1, a fresh prompt
per call; anything else uses `generate`.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from extes.programs.lm import prefix_cache


def supports(model) -> bool:
    """Whether `model` has the LLaMA layout this loop implements (plain decoder layers, RoPE, no sliding window)."""
    cfg = getattr(model, "config", None)
    inner = getattr(model, "model", None)
    # RoPE tables are computed once for all positions: types whose frequencies follow the sequence length
    # (dynamic NTK, longrope) are left to `generate`
    rope = (getattr(cfg, "rope_parameters", None) or {}).get("rope_type", "default")
    return (getattr(cfg, "model_type", None) == "llama" and inner is not None and hasattr(inner, "layers")
            and hasattr(inner, "rotary_emb") and not getattr(cfg, "sliding_window", None)
            and rope not in ("dynamic", "longrope"))


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LlamaDecoder:
    """Prefill and one-token steps over a LLaMA model's own modules with a static KV cache."""

    def __init__(self, model, max_len: int = 4096):
        cfg = model.config
        inner = model.model
        self.layers, self.norm = inner.layers, inner.norm
        self.embed, self.head = inner.embed_tokens, model.get_output_embeddings()
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.max_len = min(max_len, cfg.max_position_embeddings)
        self.dtype = self.embed.weight.dtype
        positions = torch.arange(self.max_len)[None]
        with torch.inference_mode():
            cos, sin = inner.rotary_emb(torch.zeros(1, dtype=self.dtype), positions)
        self.cos, self.sin = cos[:, None], sin[:, None]  # [1, 1, L, head_dim]
        self.k = self.v = None
        self.adapter = None  # the LoRA this slot's sequence decodes with (programs/lm/multi_lora.py), None: the base
        budget = prefix_cache.budget_bytes()
        marks = getattr(model, "_extes_turn_marks", frozenset())  # set by LocalLM from its tokenizer
        self.prefix = prefix_cache.PrefixCache(budget, model.parameters(), marks) if budget else None

    def slot(self, length: int | None = None, adapter: str | None = None) -> LlamaDecoder:
        """A decoder for one more sequence: the same modules, rotary tables and prefix cache, its own KV cache
        (allocated for `length` positions now, or on first use), decoding with the LoRA `adapter` attached to the
        model (programs/lm/multi_lora.py) or the base."""
        other = copy.copy(self)
        other.k = other.v = None
        other.adapter = adapter
        if length is not None:
            other._cache(length)
        return other

    def _cache(self, length: int):
        if self.k is None or self.k[0].shape[2] < length:
            shape = (1, self.n_kv, length, self.head_dim)
            self.k = [torch.zeros(shape, dtype=self.dtype) for _ in self.layers]
            self.v = [torch.zeros(shape, dtype=self.dtype) for _ in self.layers]

    def forward(self, ids: torch.Tensor, start: int) -> torch.Tensor:
        """Logits (fp32, [vocab]) after `ids` ([1, T]) placed at positions start..start+T-1."""
        return self.head(self.norm(self._run(ids, start)[:, -1:]))[0, -1].float()

    def _run(self, ids: torch.Tensor, start: int) -> torch.Tensor:
        """Hidden states ([1, T, D], before the final norm) of `ids` at positions start..start+T-1, their keys and
        values written into the cache; attention covers the cache's positions 0..start+T-1."""
        if self.adapter is not None:
            from extes.programs.lm.multi_lora import routed

            with routed(self.adapter):
                return self._layers(ids, start)
        return self._layers(ids, start)

    def _layers(self, ids: torch.Tensor, start: int) -> torch.Tensor:
        t = ids.shape[1]
        end = start + t
        cos, sin = self.cos[:, :, start:end], self.sin[:, :, start:end]
        # a chunk after cached positions: query i (at start+i) sees keys 0..start+i (is_causal would align at 0)
        mask = None if t == 1 or start == 0 else \
            torch.arange(end)[None, :] <= (torch.arange(t)[:, None] + start)
        h = self.embed(ids)
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            x = layer.input_layernorm(h)
            q = attn.q_proj(x).view(1, t, -1, self.head_dim).transpose(1, 2)
            k = attn.k_proj(x).view(1, t, -1, self.head_dim).transpose(1, 2)
            v = attn.v_proj(x).view(1, t, -1, self.head_dim).transpose(1, 2)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            self.k[i][:, :, start:end] = k
            self.v[i][:, :, start:end] = v
            kk, vv = self.k[i][:, :, :end], self.v[i][:, :, :end]
            if t == 1:  # one query: its heads that share a key/value head become that head's rows (4x faster here)
                o = F.scaled_dot_product_attention(q.reshape(1, self.n_kv, -1, self.head_dim), kk, vv,
                                                   scale=attn.scaling).reshape(1, 1, 1, -1)
            elif mask is None:
                o = F.scaled_dot_product_attention(q, kk, vv, is_causal=True, scale=attn.scaling, enable_gqa=True)
                o = o.transpose(1, 2).reshape(1, t, -1)
            else:
                o = F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask, scale=attn.scaling, enable_gqa=True)
                o = o.transpose(1, 2).reshape(1, t, -1)
            h = h + attn.o_proj(o.reshape(1, t, -1))
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        return h

    def hidden(self, ids: torch.Tensor, first: int) -> torch.Tensor:
        """Hidden states (before the final norm) of positions first..T-1 of `ids` ([1, T]) run from position 0,
        through the prefix cache (programs/lm/prefix_cache.py): the leading chunks it holds are copied, the rest is
        computed chunk by chunk and every chunk but the last kept. Positions from `first` on are always computed."""
        t = ids.shape[1]
        self._cache(t)
        pc = self.prefix
        if pc is None:
            return self._run(ids, 0)[:, first:]
        pc.check_weights()
        tokens = ids[0].tolist()
        ends = prefix_cache.chunk_ends(tokens, pc.marks)
        keys = prefix_cache.chunk_keys(tokens, ends, self.adapter)
        usable = sum(e <= first for e in ends)
        s = pc.restore(keys[:usable], ends, self.k, self.v)
        outs = []
        for j, e in enumerate(ends):
            if e <= s:
                continue
            h = self._run(ids[:, s:e], s)
            if j < len(ends) - 1:
                pc.store(keys[j], self.k, self.v, s, e)
            else:
                pc.count(e - s)
            if e > first:
                outs.append(h[:, max(first - s, 0):])
            s = e
        return torch.cat(outs, dim=1)

    def continuations(self, rows: torch.Tensor, start: int) -> torch.Tensor:
        """Logits (fp32, [C, w, vocab]) of C continuations `rows` ([C, w]) that all follow the `start` positions
        already in this slot's cache (a prompt's `hidden`/`prefill`): each row attends to those and to its own
        earlier tokens, and nothing is written into the cache, so the rows are independent of each other. Padding
        at a row's end changes none of the logits before it."""
        c, w = rows.shape
        if self.adapter is not None:
            from extes.programs.lm.multi_lora import routed

            with routed(self.adapter):
                return self._continuations(rows, start, c, w)
        return self._continuations(rows, start, c, w)

    def _continuations(self, rows, start: int, c: int, w: int) -> torch.Tensor:
        end = start + w
        cos, sin = self.cos[:, :, start:end], self.sin[:, :, start:end]
        mask = torch.arange(end)[None, :] <= (torch.arange(w)[:, None] + start)  # [w, start + w]
        h = self.embed(rows)
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            x = layer.input_layernorm(h)
            q = attn.q_proj(x).view(c, w, -1, self.head_dim).transpose(1, 2)
            k = attn.k_proj(x).view(c, w, -1, self.head_dim).transpose(1, 2)
            v = attn.v_proj(x).view(c, w, -1, self.head_dim).transpose(1, 2)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            kk = torch.cat([self.k[i][:, :, :start].expand(c, -1, -1, -1), k], dim=2)
            vv = torch.cat([self.v[i][:, :, :start].expand(c, -1, -1, -1), v], dim=2)
            o = F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask, scale=attn.scaling, enable_gqa=True)
            h = h + attn.o_proj(o.transpose(1, 2).reshape(c, w, -1))
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        return self.head(self.norm(h)).float()

    def prefill(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits (fp32, [vocab]) after the prompt `ids` ([1, T]) from position 0, its KV in the cache; blocks the
        prefix cache holds are copied instead of computed."""
        t = ids.shape[1]
        return self.head(self.norm(self.hidden(ids, t - 1)[:, -1:]))[0, -1].float()

    def tokens(self, input_ids: torch.Tensor, *, max_new_tokens: int, processors, eos: set[int],
               do_sample: bool = False, stop=None):
        """Yield new token ids one by one after the prompt `input_ids` ([1, T]). `processors`: a transformers
        LogitsProcessorList; `stop(new_ids) -> bool` ends generation early (stop strings)."""
        length = input_ids.shape[1] + max_new_tokens
        if length > self.max_len:
            raise ValueError(f"prompt plus {max_new_tokens} new tokens exceed {self.max_len} positions")
        self._cache(length)
        ids = input_ids
        logits = self.prefill(input_ids)
        new: list[int] = []
        for _ in range(max_new_tokens):
            scores = processors(ids, logits[None])
            if do_sample:
                token = int(torch.multinomial(F.softmax(scores, dim=-1), num_samples=1)[0, 0])
            else:
                token = int(scores[0].argmax())
            new.append(token)
            yield token
            if token in eos or (stop is not None and stop(new)):
                return
            nxt = torch.tensor([[token]])
            ids = torch.cat([ids, nxt], dim=1)
            logits = self.forward(nxt, ids.shape[1] - 1)

    def generate(self, input_ids: torch.Tensor, **kwargs) -> torch.Tensor:
        """All new token ids ([n]) of `tokens`."""
        return torch.tensor(list(self.tokens(input_ids, **kwargs)), dtype=torch.long)


def processors_for(model, gen: dict):
    """transformers' own logits processors for `generate` keyword arguments, in `generate`'s order."""
    from transformers import (
        LogitsProcessorList,
        NoRepeatNGramLogitsProcessor,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    procs = LogitsProcessorList()
    if gen.get("repetition_penalty") not in (None, 1.0):
        procs.append(RepetitionPenaltyLogitsProcessor(float(gen["repetition_penalty"])))
    if gen.get("no_repeat_ngram_size"):
        procs.append(NoRepeatNGramLogitsProcessor(int(gen["no_repeat_ngram_size"])))
    if gen.get("do_sample"):
        if gen.get("temperature") not in (None, 1.0):
            procs.append(TemperatureLogitsWarper(float(gen["temperature"])))
        top_k = gen.get("top_k", model.generation_config.top_k)
        if top_k:
            procs.append(TopKLogitsWarper(int(top_k)))
        if gen.get("top_p") not in (None, 1.0):
            procs.append(TopPLogitsWarper(float(gen["top_p"])))
    return procs


def decoder_for(model) -> LlamaDecoder | None:
    """The model's `LlamaDecoder` (built once, kept on the model, with a lock), or None for other architectures."""
    import threading

    if not supports(model):
        return None
    dec = getattr(model, "_extes_decoder", None)
    if dec is None:
        dec = LlamaDecoder(model)
        dec.lock = threading.Lock()
        model._extes_decoder = dec
    return dec


def _plan(model, tokenizer, input_ids: torch.Tensor, gen: dict):
    """(decoder, tokens() keyword arguments), or (None, None) where `generate` must be used."""
    dec = decoder_for(model)
    if dec is None or input_ids.shape[0] != 1 or input_ids.shape[1] + gen["max_new_tokens"] > dec.max_len:
        return None, None
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos] if eos is not None else []) | {tokenizer.eos_token_id}
    strings = gen.get("stop_strings") or []
    stop = (lambda new: any(s in tokenizer.decode(new) for s in strings)) if strings else None
    return dec, {"max_new_tokens": gen["max_new_tokens"], "processors": processors_for(model, gen),
                 "eos": eos - {None}, "do_sample": bool(gen.get("do_sample")), "stop": stop}


def new_tokens(model, tokenizer, input_ids: torch.Tensor, gen: dict) -> torch.Tensor:
    """What `model.generate(input_ids, **gen)[0, T:]` returns, through the lean loop where it applies."""
    dec, kwargs = _plan(model, tokenizer, input_ids, gen)
    if dec is None:
        out = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), **gen)
        return out[0, input_ids.shape[1]:]
    with dec.lock:
        return dec.generate(input_ids, **kwargs)


def stream_text(model, tokenizer, input_ids: torch.Tensor, gen: dict):
    """Yield the reply's text piece by piece through the lean loop (None first if it does not apply)."""
    dec, kwargs = _plan(model, tokenizer, input_ids, gen)
    if dec is None:
        yield None
        return
    with dec.lock:
        new: list[int] = []
        shown = ""
        for token in dec.tokens(input_ids, **kwargs):
            new.append(token)
            text = tokenizer.decode(new, skip_special_tokens=True)
            if text.endswith("\ufffd"):  # half of a multi-byte character: wait for the rest
                continue
            if len(text) > len(shown):
                yield text[len(shown):]
                shown = text
