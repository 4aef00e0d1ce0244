"""Continuous batching over llama.cpp's low-level API: concurrent requests decode together in one `llama_decode`.

llama-cpp-python's `Llama` (and its server) decodes one sequence at a time, so on a 2-core AVX2 CPU it stays at
~60 tok/s however many clients wait. `LlamaBatcher` owns a second context on the same loaded model with one KV
sequence per request (`n_seq_max` of them, each with its own `n_ctx` cells: `kv_unified` off, so a token attends
over its own sequence's cells, not over every sequence's). One scheduler thread, as in `programs/lm/batching.py`:
between two steps it admits waiting requests onto free sequence ids, then builds one `llama_batch` with one token
for every decoding sequence and a chunk of the prompt of those still prefilling (at most `chunk` prompt tokens in
a step while others decode, so a long prompt does not stall them; the whole prompt at once when nothing else
decodes), runs `llama_decode`, and picks every sequence's next token from its own row of logits (greedy, or
temperature / top-k 40 / top-p / min-p 0.05 as llama-cpp-python's sampler chain does). A sequence leaves on an
end-of-generation token, a stop string, its `max_tokens` or a cancel; its id is then free for the next request,
and its cells are kept.

**Prefix reuse.** A new request starts where its prompt agrees with what a sequence already holds: a free sequence
whose kept cells begin with the same tokens (the previous turn of the same conversation, whose reply the new prompt
repeats) is taken and cut back to the common part (`llama_memory_seq_rm`); else, where another sequence (decoding
or free) shares at least MIN_COPY tokens (the system prompt every chat starts with), its stream is copied
(`llama_memory_seq_cp`, a whole-stream copy of a few MB at the next decode) and cut; else the least recently used
free sequence is emptied. Only the rest of the prompt is computed (at least its last token, whose logits pick the
first new token). Copied cells are the source's bytes, and a repeated prompt gets the tokens a fresh prefill gives
(tested). But cells a sequence computed while decoding (a reply the next prompt repeats) came from one-row batches,
which llama.cpp's kernels round slightly differently from a prefill, so at temperature 0 a continued conversation's
reply can differ from a fresh run's after a few dozen tokens, as with llama.cpp's own server's prompt cache.
`reuse=False` computes every prompt whole. `stats()` counts the prompt tokens reused and computed.

Every sequence's logits depend on its own tokens only (its own cells, its own positions), so at temperature 0 a
request gets the same tokens batched as alone (tested). llama-cpp-python builds a fresh sampler for every token,
so its repeat penalty never sees a history: the existing `llamacpp/` backend's greedy output is plain argmax,
which is what this gives too (tested).
"""

from __future__ import annotations

import ctypes
import logging
import queue
import threading
from dataclasses import dataclass, field

import numpy as np

from extes.errors import ModelError
from extes.programs.lm.stream import DONE, SchedulerThread, StreamedRequest

log = logging.getLogger(__name__)

MAX_BATCH = 16  # sequences decoding at once; issue 15's top level is 16 clients
CHUNK = 64  # prompt tokens a prefilling sequence adds to a step while others decode
MIN_COPY = 32  # shared prompt tokens worth copying another sequence's stream for (the copy moves every cell)
KEEP = 2  # prompt tokens always computed: the last one's logits pick the first new token, and measured on the
# embedded model, a 1-token rest rounds differently from a prefill (greedy replies changed at token ~18), 2 do not
PENALTY_WINDOW = 64  # llama-cpp-python's last_n_tokens_size


@dataclass
class Sampling:
    """How one request decodes: its longest reply, temperature (0: greedy), top-p, stop strings and seed."""

    max_tokens: int = 160
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    repeat_penalty: float = 1.0  # over the reply's last PENALTY_WINDOW tokens, as llama.cpp's penalties sampler

    def __post_init__(self):
        if self.max_tokens < 1:
            raise ModelError(f"max_tokens {self.max_tokens}: give at least 1")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ModelError(f"temperature {self.temperature} / top_p {self.top_p}: give temperature >= 0 and "
                             "0 < top_p <= 1")


class Request(StreamedRequest):
    """One submitted prompt: new token ids arrive through `tokens()` (streaming) or all at once through `result()`;
    `finish` is "stop" (end token or stop string) or "length" once it is done."""

    def __init__(self, ids: list[int], sampling: Sampling):
        super().__init__()
        self.ids = list(ids)
        self.sampling = sampling
        self.new: list[int] = []
        self.finish: str | None = None
        self.seq: int | None = None
        self.fed = 0  # prompt tokens already in the KV cache
        self.in_kv = 0  # tokens of ids + new whose cells the sequence holds
        self.text = b""  # the reply's bytes so far, for stop strings
        self.rng = np.random.default_rng(sampling.seed)

    def result(self) -> list[int]:
        """All new token ids, once the request is finished."""
        return list(self.tokens())


class LlamaBatcher(SchedulerThread):
    """The scheduler thread over one llama.cpp model (see module docstring). Thread-safe; one per loaded model.

    `llm` is a loaded `llama_cpp.Llama` (its weights and vocabulary are shared, its context is not used);
    `n_ctx` is each sequence's window (prompt plus reply), `threads` llama.cpp's threads."""

    thread_name = "extes-llamacpp-batcher"

    def __init__(self, llm, *, max_batch: int = MAX_BATCH, n_ctx: int = 2048, chunk: int = CHUNK,
                 threads: int | None = None, reuse: bool = True):
        import llama_cpp  # lazy: the llamacpp extra is optional

        super().__init__()
        self.lib = llama_cpp
        self.llm = llm
        self.max_batch, self.n_ctx, self.chunk, self.reuse = max_batch, n_ctx, chunk, reuse
        self.capacity = max(512, max_batch + chunk)  # tokens one llama_decode may hold
        params = llama_cpp.llama_context_default_params()
        # The same kernels as the `Llama` context (it turns flash attention off; the default is "auto"), so a
        # request decodes here as it would there.
        params.flash_attn_type = llm.context_params.flash_attn_type
        params.n_ctx = n_ctx * max_batch
        params.n_batch = params.n_ubatch = self.capacity
        params.n_seq_max = max_batch
        params.kv_unified = False
        params.n_threads = params.n_threads_batch = threads or llm.n_threads
        params.no_perf = True
        self.ctx = llama_cpp.llama_init_from_model(llm.model, params)
        if not self.ctx:
            raise ModelError(f"llama.cpp could not make a context of {max_batch} x {n_ctx} tokens; lower them")
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(self.capacity, 0, 1)
        self.vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.free = list(range(max_batch))  # least recently used first
        self.held: dict[int, list[int]] = {}  # sequence id -> the tokens its cells hold
        self.reused = self.computed = 0  # prompt tokens taken from cells / prefilled

    # -- callers -----------------------------------------------------------------------------------------------
    def submit(self, ids: list[int], sampling: Sampling) -> Request:
        """Queue a prompt's token ids; returns at once. A prompt that leaves no room for a reply is an error on
        the request (raised by `tokens()`/`result()`)."""
        req = Request(ids, sampling)
        if not req.ids or len(req.ids) >= self.n_ctx:
            req.error = ModelError(f"the prompt has {len(req.ids)} tokens; this server's window is {self.n_ctx} "
                                   "per sequence: shorten the conversation")
            req.out.put(DONE)
            return req
        self._ensure_thread()
        self.incoming.put(req)
        return req

    def generate(self, ids: list[int], sampling: Sampling) -> list[int]:
        """New token ids for the prompt, decoded in the shared batch."""
        return self.submit(ids, sampling).result()

    def stats(self) -> dict[str, int | bool]:
        """Steps run, the largest batch seen, the sequences decoding now and those waiting, prompt tokens reused."""
        return {"prefix_reuse": self.reuse, "steps": self.steps, "peak_batch": self.peak_batch,
                "active": len(self.active), "queued": self.incoming.qsize(), "prompt_tokens_reused": self.reused,
                "prompt_tokens_computed": self.computed}

    def piece(self, token: int) -> bytes:
        """The bytes of one token (special tokens rendered as nothing)."""
        buf = (ctypes.c_char * 64)()
        n = self.lib.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        if n < 0:  # the piece is longer than the buffer: -n is its length
            buf = (ctypes.c_char * -n)()
            n = self.lib.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        return bytes(buf[:n]) if n > 0 else b""

    # -- the scheduler -----------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            if not self.active:
                self._admit(self.incoming.get())  # idle: sleep until work arrives
            while self.free:
                try:
                    self._admit(self.incoming.get_nowait())
                except queue.Empty:
                    break
            self._drop_cancelled()
            if self.active:
                try:
                    self._step()
                except Exception as e:  # noqa: BLE001 - fail this batch's requests, keep the scheduler alive
                    log.exception("llama.cpp batched decode step failed")
                    for req in list(self.active):
                        self._leave(req, error=e)

    def _admit(self, req: Request) -> None:
        if req.cancelled.is_set():
            req.out.put(DONE)
            return
        seq, start = self.free[0], 0  # the least recently used free sequence, emptied
        if self.reuse:
            limit = len(req.ids) - KEEP
            own = max(self.free, key=lambda q: _common(self.held.get(q, []), req.ids, limit))  # first of the best
            own_len = _common(self.held.get(own, []), req.ids, limit)
            holding = {**self.held, **{r.seq: (r.ids + r.new)[:r.in_kv] for r in self.active}}
            holding.pop(own, None)
            src = max(holding, key=lambda q: _common(holding[q], req.ids, limit), default=None)
            src_len = _common(holding[src], req.ids, limit) if src is not None else 0
            if own_len > 0 and own_len >= src_len - MIN_COPY:
                seq, start = own, own_len
            elif src_len >= MIN_COPY:
                seq = self.free[0] if self.free[0] != src else self.free[-1]
                self.lib.llama_memory_seq_rm(self.mem, seq, -1, -1)
                self.lib.llama_memory_seq_cp(self.mem, src, seq, -1, -1)
                start = src_len
        self.lib.llama_memory_seq_rm(self.mem, seq, start, -1)  # cells past the common part
        self.free.remove(seq)
        req.seq, req.fed, req.in_kv = seq, start, start
        self.held.pop(seq, None)  # an active sequence's tokens are its request's
        self.reused += start
        self.computed += len(req.ids) - start
        self.active.append(req)

    def _leave(self, req: Request, finish: str | None = None, error: BaseException | None = None) -> None:
        if error is None:  # its cells stay for a later prompt that starts the same way
            self.held[req.seq] = (req.ids + req.new)[:req.in_kv]
        else:  # the failed step may have left cells half written
            self.lib.llama_memory_seq_rm(self.mem, req.seq, -1, -1)  # the whole sequence: never fails
            self.held.pop(req.seq, None)
        self.free.append(req.seq)
        self.active.remove(req)
        req.finish, req.error = finish, error
        req.out.put(DONE)

    def _drop_cancelled(self) -> None:
        for req in [r for r in self.active if r.cancelled.is_set()]:
            self._leave(req, "stop")

    def _step(self) -> None:
        """One llama_decode: a token for every decoding sequence, prompt chunks for the prefilling ones; then
        every sequence whose last token was in the batch picks its next one."""
        b = self.batch
        n = 0
        outputs: list[tuple[Request, int]] = []
        decoding = [r for r in self.active if r.fed == len(r.ids)]
        for req in decoding:  # the last picked token goes in at the position after the ones before it
            n = self._put(n, req.new[-1], len(req.ids) + len(req.new) - 1, req.seq, True)
            req.in_kv = len(req.ids) + len(req.new)
            outputs.append((req, n - 1))
        budget = self.chunk if decoding else self.capacity
        for req in self.active:
            if req.fed == len(req.ids) or budget <= 0:
                continue
            take = min(budget, len(req.ids) - req.fed, self.capacity - n)
            for i in range(req.fed, req.fed + take):
                n = self._put(n, req.ids[i], i, req.seq, i == len(req.ids) - 1)
            req.fed += take
            req.in_kv = req.fed
            budget -= take
            if req.fed == len(req.ids):
                outputs.append((req, n - 1))
        if n == 0:
            return
        b.n_tokens = n
        rc = self.lib.llama_decode(self.ctx, b)
        if rc != 0:
            raise ModelError(f"llama_decode returned {rc} for a batch of {n} tokens (KV cache full?)")
        self.steps += 1
        self.peak_batch = max(self.peak_batch, len(outputs))
        for req, row in outputs:
            logits = np.ctypeslib.as_array(self.lib.llama_get_logits_ith(self.ctx, row), shape=(self.n_vocab,))
            self._take(req, _pick(logits, req.sampling, req.rng, req.new[-PENALTY_WINDOW:]))

    def _put(self, n: int, token: int, pos: int, seq: int, want_logits: bool) -> int:
        b = self.batch
        b.token[n], b.pos[n], b.n_seq_id[n], b.logits[n] = token, pos, 1, want_logits
        b.seq_id[n][0] = seq
        return n + 1

    def _take(self, req: Request, token: int) -> None:
        s = req.sampling
        if self.lib.llama_vocab_is_eog(self.vocab, token):
            self._leave(req, "stop")
            return
        req.new.append(token)
        req.out.put(token)
        req.text += self.piece(token)
        if s.stop and any(stop in req.text.decode("utf-8", "ignore") for stop in s.stop):
            self._leave(req, "stop")
        elif len(req.new) >= s.max_tokens or len(req.ids) + len(req.new) >= self.n_ctx:
            self._leave(req, "length")


def _common(held: list[int], ids: list[int], limit: int) -> int:
    """How many tokens `held` and `ids` agree on from the start, at most `limit`."""
    n = max(0, min(len(held), len(ids), limit))
    for i in range(n):
        if held[i] != ids[i]:
            return i
    return n


def _pick(logits: np.ndarray, s: Sampling, rng: np.random.Generator, recent: list[int]) -> int:
    """The next token from one row of logits, as llama-cpp-python's sampler chain picks it: the repeat penalty on
    the `recent` tokens, then argmax at temperature 0, else top-k 40, top-p, min-p 0.05, temperature and a draw."""
    if s.repeat_penalty != 1.0 and recent:
        logits = logits.copy()
        seen = np.unique(np.asarray(recent))
        row = logits[seen]
        logits[seen] = np.where(row <= 0, row * s.repeat_penalty, row / s.repeat_penalty)
    if s.temperature == 0:
        return int(np.argmax(logits))
    top = np.argpartition(logits, -40)[-40:]
    top = top[np.argsort(-logits[top])]
    z = logits[top].astype(np.float64)
    p = np.exp(z - z[0])
    p /= p.sum()
    keep = int(np.searchsorted(np.cumsum(p), s.top_p) + 1)  # the smallest prefix whose mass reaches top_p
    keep = max(1, min(keep, int((p >= 0.05 * p[0]).sum())))
    z = z[:keep] / s.temperature
    q = np.exp(z - z.max())
    return int(top[rng.choice(keep, p=q / q.sum())])


_MAKE = threading.Lock()


def batcher_for(llm, **options) -> LlamaBatcher:
    """The `LlamaBatcher` of a loaded `llama_cpp.Llama` (built once, kept on it)."""
    with _MAKE:
        b = getattr(llm, "_extes_batcher", None)
        if b is None:
            b = LlamaBatcher(llm, **options)
            llm._extes_batcher = b
    return b
