import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from extes.corpus.seeds import seeds_dir
from extes.errors import InputError, ModelError
from extes.tuning.toxicity import OfflineBackend, backend

TOXIC = ["You are a worthless idiot and everyone hates you.", "Shut the fuck up, you stupid bitch.",
         "Go to hell, you pathetic loser.", "What a dumb piece of shit you are."]
BENIGN = ["I'm sorry you had such a hard week.", "That sounds really painful; I'm here for you.",
          "Maybe a short walk after dinner would help.", "You handled that conversation with a lot of care."]


def test_offline_backend_scores_toxic_above_benign():
    scores = OfflineBackend().score(TOXIC + BENIGN)
    toxic = [s["toxicity"] for s in scores[:4]]
    benign = [s["toxicity"] for s in scores[4:]]
    assert min(toxic) > max(benign)
    assert sum(toxic) / 4 > 0.8 and sum(benign) / 4 < 0.2


def test_toxicity_cli_on_the_seed_set(cli):
    code, out, err = cli("toxicity", seeds_dir(), "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["backend"] == "offline" and r["utterances"] == 2008
    means = r["means"]
    assert set(means) == {"user", "assistant", "all"}
    assert 0 <= means["assistant"]["toxicity"] < 0.2 and means["assistant"]["threat"] is None


def test_backend_errors(monkeypatch):
    with pytest.raises(InputError, match="not a toxicity backend"):
        backend("vibes")
    with pytest.raises(ModelError, match="--checkpoint"):
        backend("detoxify")
    monkeypatch.delenv("PERSPECTIVE_API_KEY", raising=False)
    with pytest.raises(ModelError, match="PERSPECTIVE_API_KEY"):
        backend("perspective")


class Refuse(BaseHTTPRequestHandler):
    def setup(self):
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"error": {"code": 403, "message": "API key not valid"}}'
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_refused_perspective_key_is_a_one_line_error(cli, monkeypatch, tmp_path):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    monkeypatch.setenv("PERSPECTIVE_API_KEY", "bad-key")
    monkeypatch.setenv("EXTES_PERSPECTIVE_URL", f"http://127.0.0.1:{srv.server_port}/analyze")
    code, out, err = cli("toxicity", seeds_dir(), "--backend", "perspective")
    srv.shutdown()
    assert code == 2 and out == "" and "refused" in err and "HTTP 403" in err and "bad-key" not in err
