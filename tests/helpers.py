"""Builders shared by tests (importable as `helpers`)."""

import json
from pathlib import Path


def extes_record(content, scene="Academic Stress", description="A student named Ana fears her finals next week."):
    return {"scene": scene, "description": description, "content": content}


def good_content(n_pairs: int = 3):
    out = []
    for i in range(n_pairs):
        out.append({"User": f"User message number {i} about exams."})
        out.append({"AI Strategy": "Emotional Validation", "AI": f"That sounds hard, reply {i}."})
    return out


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


class JSONHandlerBase:
    """Mixin for the tests' local OpenAI-compatible servers: JSON replies, no Nagle delay, quiet logs."""

    def setup(self):
        import socket

        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_json(self, code: int, payload) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except BrokenPipeError:
            pass

    def log_message(self, *args):
        pass


def chat_completion(model: str, content: str, prompt_tokens: int = 30, completion_tokens: int = 8) -> dict:
    return {"id": "c", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def serve(handler):
    """Start a ThreadingHTTPServer on a free loopback port; returns (server, base URL)."""
    import threading
    from http.server import ThreadingHTTPServer

    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_port}/v1"


def tiny_llama(folder: Path, tok_src: Path, max_positions: int = 2048) -> Path:
    """A tiny random LLaMA saved as a Hugging Face folder, with the tokenizer (and chat template) of `tok_src`."""
    import shutil

    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tok_src / name).exists():
            shutil.copy(tok_src / name, folder / name)
    return folder
