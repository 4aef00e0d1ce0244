#!/usr/bin/env bash
# teacher quality measurements, alone on the machine (the synthesis is paused)
set -u
cd "$(dirname "$0")/../../.."
OUT=runs/teacher-quality
mkdir -p $OUT
export EXTES_LLAMACPP_THREADS=2
date -u > $OUT/times.txt; uptime >> $OUT/times.txt
.venv/bin/extes rate export runs/recipe-whole/synth assets/seeds --n 16 --seed 0 --out $OUT/sheet.csv --json > $OUT/export.json 2>$OUT/export.err
cat $OUT/export.json
/usr/bin/time -v .venv/bin/extes rate judge $OUT/sheet.csv -m local/qwen2.5-coder-1.5b-instruct --out $OUT/judge-teacher.csv --json > $OUT/judge.json 2>$OUT/judge.err
date -u >> $OUT/times.txt
.venv/bin/extes rate import $OUT/judge-teacher.csv --key $OUT/sheet.key.json --json > $OUT/import.json
cat $OUT/import.json
/usr/bin/time -v .venv/bin/python benchmarks/teacher_quality.py -m local/qwen2.5-coder-1.5b-instruct --n 32 --tasks classify > $OUT/classify-teacher.json 2>$OUT/classify-teacher.err
date -u >> $OUT/times.txt
.venv/bin/python benchmarks/teacher_quality.py -m local/smollm2-135m-instruct --n 32 --tasks classify > $OUT/classify-student.json 2>$OUT/classify-student.err
date -u >> $OUT/times.txt
