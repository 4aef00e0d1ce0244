"""The backend table: each model string has one backend, its options are checked, its capabilities asked."""

import socket

import pytest

from extes.errors import ModelError
from extes.programs.lm import DEFAULT_MODEL, backend_for, backends, capabilities, get_model
from extes.programs.lm.registry import Backend, Capabilities, Option, register


def test_every_model_string_has_one_backend():
    assert backend_for(DEFAULT_MODEL).prefix == "local/"
    assert backend_for("local/runs/merged").argument("local/runs/merged") == "runs/merged"
    assert backend_for("openai/gpt-4o-mini").argument("openai/gpt-4o-mini") == "gpt-4o-mini"
    for spec in ("scripted", "scripted:r.json", "scripted@0.1"):
        assert backend_for(spec).prefix == "scripted" and backend_for(spec).argument(spec) == spec
    for bad in ("gpt5", "local/", "scriptedx", "openai"):
        with pytest.raises(ModelError, match="unknown model"):
            backend_for(bad)
    assert [b.prefix for b in backends()][:3] == ["local/", "openai/", "scripted"]


def test_capabilities_come_from_the_table():
    assert capabilities(DEFAULT_MODEL) == Capabilities(can_score=True, can_stream=True, trainable=True,
                                                       in_process=True)
    assert not capabilities("openai/x").can_score and capabilities("openai/x").batched
    lm = get_model("scripted")
    assert capabilities(lm) == backend_for("scripted").capabilities
    assert capabilities(object()) == Capabilities()  # a test double no backend owns can do nothing special


@pytest.mark.parametrize("model, options, needle", [
    (DEFAULT_MODEL, {"api_base": "http://127.0.0.1:1/v1"}, "--api-base does not apply to local/smollm2"),
    ("openai/gpt-4o-mini", {"adapter": "runs/lora"}, "--adapter does not apply to openai/gpt-4o-mini"),
    ("openai/gpt-4o-mini", {"precision": "bf16"}, "--precision does not apply"),
    (DEFAULT_MODEL, {"max_tokens": 0}, "--max-tokens 0 for local/smollm2-135m-instruct: give a value in 1 .. 32768"),
    (DEFAULT_MODEL, {"temperature": 3}, "--temperature 3"),
    (DEFAULT_MODEL, {"precision": "int8"}, "use one of auto, q4, bf16, fp32"),
    ("scripted", {"max_tokens": "many"}, "give an integer"),
    ("scripted", {"cache": "no"}, "give true or false"),
])
def test_options_are_checked_before_anything_loads(model, options, needle):
    with pytest.raises(ModelError) as e:
        get_model(model, **options)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_given_options_reach_the_openai_client_and_none_means_not_given():
    # Something must listen at --api-base (the backend checks before any run); a bare socket is enough.
    with socket.create_server(("127.0.0.1", 0)) as server:
        base = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
        lm = get_model("openai/gpt-4o-mini", api_base=base, max_tokens=7, temperature=None)
    assert lm.kwargs["max_tokens"] == 7 and lm.num_retries == 2 and lm.cache is True
    assert get_model("scripted", max_tokens=None, cache=None).model == "scripted"


def test_a_backend_is_one_registration():
    class Echo:
        def __init__(self, model, text, **kw):
            self.model, self.text, self.kw = model, text, kw

    echo = register(Backend(prefix="echo/", usage="echo/<text>", build=Echo,
                            options=(Option("max_tokens", int, "Cut.", default=5, min=1),),
                            capabilities=Capabilities(batched=True)))
    try:
        lm = get_model("echo/hello", max_tokens=3)
        assert (lm.model, lm.text, lm.kw) == ("echo/hello", "hello", {"max_tokens": 3})
        assert get_model("echo/x").kw == {"max_tokens": 5} and capabilities(lm).batched
    finally:
        from extes.programs.lm import registry

        registry._BACKENDS.pop(echo.prefix)
