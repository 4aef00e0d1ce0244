"""The HTTP side of `extes serve`: an OpenAI-compatible API and the web chat page, as a reusable app factory.

`create_app(engine)` gives a FastAPI app with `POST /v1/chat/completions` (plain, or `stream: true` as server-sent
events), `GET /v1/models`, `GET /health` and the chat page at `/` (assets/web/chat.html). Errors are OpenAI's shape,
`{"error": {"message", "type", "param", "code"}}`, with a 4xx status for every bad request (malformed JSON, a field
out of range, an unknown model, a bad key, a body too large) and 500 only for a fault of the server itself. Blocking
model calls run in worker threads; local models decode them together in their batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import signal
import time
import uuid

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from extes.corpus.assets import assets_dir, load_taxonomy
from extes.errors import ExtesError
from extes.programs.serve.engine import Answer, Engine, UnknownModel
from extes.programs.serve.schemas import ChatCompletionRequest

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000  # bytes; a request body beyond this is refused (413) before it is parsed


def error(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
          param: str | None = None) -> JSONResponse:
    """An OpenAI-style error response."""
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status)


def _validation_message(e: ValidationError) -> tuple[str, str | None]:
    first = e.errors()[0]
    where = ".".join(str(x) for x in first.get("loc", ()))
    return f"{where or 'body'}: {first.get('msg', 'invalid')}", where or None


def create_app(engine: Engine, *, api_key: str | None = None, title: str = "extes serve") -> FastAPI:
    """The server's app. `api_key`: when set, /v1/* needs `Authorization: Bearer <key>` (the key is only compared,
    never logged or stored elsewhere). Other projects can mount or extend the app (more routes, the page's assets)."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine
    app.state.started = time.time()
    page = (assets_dir() / "web" / "chat.html").read_text(encoding="utf-8")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if api_key and request.url.path.startswith("/v1/"):
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return error(401, "missing or wrong API key; send Authorization: Bearer <key>",
                             "authentication_error", "invalid_api_key")
        size = request.headers.get("content-length")
        if size and size.isdigit() and int(size) > MAX_BODY:
            return error(413, f"the request body has {size} bytes; the limit is {MAX_BODY}", code="body_too_large")
        try:
            return await call_next(request)
        except Exception:  # noqa: BLE001 - a fault becomes a JSON 500, the server keeps running
            log.exception("request to %s failed", request.url.path)
            return error(500, "internal error; see the server log", "server_error")

    @app.get("/", response_class=HTMLResponse)
    async def chat_page():
        return HTMLResponse(page)

    @app.get("/health")
    async def health():
        out = {"status": "ok", "models": list(engine.models), "uptime_s": round(time.time() - app.state.started, 1)}
        batchers = {n: lm.hf_model._extes_batcher.stats() for n, lm in engine.models.items()
                    if getattr(getattr(lm, "hf_model", None), "_extes_batcher", None) is not None}
        batchers.update({n: lm.batcher.stats() for n, lm in engine.models.items() if getattr(lm, "batched", False)})
        if batchers:
            out["batch"] = batchers
        return out

    @app.get("/v1/models")
    async def models():
        created = int(app.state.started)
        return {"object": "list", "data": [{"id": n, "object": "model", "created": created, "owned_by": "extes"}
                                           for n in engine.models]}

    @app.get("/v1/strategies")
    async def strategies():
        """The 16 strategies (for the page's "force strategy" menu)."""
        return {"data": [{"name": s.name, "abbreviation": s.abbreviation} for s in load_taxonomy().strategies]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return error(413, f"the request body has {len(raw)} bytes; the limit is {MAX_BODY}", code="body_too_large")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            return error(400, f"the body is not valid JSON ({e}); send a JSON object", code="invalid_json")
        try:
            req = ChatCompletionRequest.model_validate(body)
        except ValidationError as e:
            message, param = _validation_message(e)
            return error(400, message, param=param, code="invalid_value")
        t0 = time.perf_counter()
        try:
            answer = await run_in_threadpool(engine.answer, req)
        except UnknownModel as e:
            return error(404, str(e), code="model_not_found", param="model")
        except ExtesError as e:
            return error(400, str(e), code="invalid_value")
        rid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if req.stream:
            return StreamingResponse(_sse(request, answer, rid, t0), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        texts = getattr(answer, "texts", None) or ["".join(await run_in_threadpool(list, answer.pieces))]
        completion = answer.completion_tokens()
        finish = _finish(answer, completion)
        log.info("completion model=%s prompt_tokens=%d completion_tokens=%d %.2fs crisis=%s", answer.model,
                 answer.prompt_tokens, completion, time.perf_counter() - t0, answer.meta.get("crisis"))
        return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": answer.model,
                "choices": [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": finish}
                            for i, t in enumerate(texts)],
                "usage": {"prompt_tokens": answer.prompt_tokens, "completion_tokens": completion,
                          "total_tokens": answer.prompt_tokens + completion},
                "extes": answer.meta}

    return app


def _finish(answer: Answer, completion: int) -> str:
    return "length" if answer.max_tokens and completion >= answer.max_tokens else "stop"


def _chunk(rid: str, model: str, delta: dict, finish: str | None = None, **extra) -> str:
    obj = {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


_END = object()


async def _sse(request: Request, answer: Answer, rid: str, t0: float):
    """Server-sent events: the role and the `extes` meta first, then text deltas, then the finish and usage. A client
    that goes away cancels its sequence in the batch."""
    pieces = answer.pieces
    finished = False
    try:
        yield _chunk(rid, answer.model, {"role": "assistant", "content": ""}, extes=answer.meta)
        while True:
            piece = await run_in_threadpool(next, pieces, _END)
            if piece is _END:
                break
            if piece:
                yield _chunk(rid, answer.model, {"content": piece})
            if await request.is_disconnected():
                log.info("client went away mid-stream (model=%s)", answer.model)
                return
        completion = answer.completion_tokens()
        usage = {"prompt_tokens": answer.prompt_tokens, "completion_tokens": completion,
                 "total_tokens": answer.prompt_tokens + completion}
        yield _chunk(rid, answer.model, {}, _finish(answer, completion), usage=usage)
        yield "data: [DONE]\n\n"
        finished = True
        log.info("stream model=%s prompt_tokens=%d completion_tokens=%d %.2fs", answer.model, answer.prompt_tokens,
                 completion, time.perf_counter() - t0)
    except asyncio.CancelledError:
        log.info("stream cancelled (model=%s)", answer.model)
        raise
    finally:
        if not finished:
            answer.cancel()


class DrainingServer(uvicorn.Server):
    """SIGTERM/SIGINT: stop accepting, let the requests in flight finish, then return (exit 0). uvicorn's own handler
    re-raises the signal after the drain, so the process would end as killed (-15)."""

    @contextlib.contextmanager
    def capture_signals(self):
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run(app: FastAPI, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve `app` until SIGTERM/SIGINT, then drain (up to 60 s) and return."""
    DrainingServer(uvicorn.Config(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=60,
                                  access_log=False)).run()
