#!/usr/bin/env bash
# The GPU figures of the course (issue 5): run once on a GPU machine from the repo root, with
# the release models of data/release/ present (committed); writes results/*_gpu*.json (or to $OUT).
OUT=${OUT:-results}
export PYTHONPATH=$PWD HF_HUB_OFFLINE=1 FASTSLOW_PROGRESS=0 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python -c "import torch,timm;print('torch',torch.__version__,'timm',timm.__version__)"; python -c "import faiss" 2>&1 | tail -1
date; timeout 200 python benchmarks/bench_rerank.py --device cuda --threads 8 --queries 200 --out $OUT/bench_rerank_gpu.json 2>&1 | grep -v Warn
date; timeout 90 python benchmarks/bench_slow.py --device cuda --threads 8 --texts 200 --out $OUT/bench_slow_gpu.json
date; timeout 200 python benchmarks/bench_train.py --device cuda --threads 8 --out $OUT/bench_train_gpu.json
date; timeout 180 python benchmarks/bench_rerank.py --device cuda --threads 8 --queries 200 --sizes 1000 10000 100000 --out $OUT/bench_rerank_gpu_1e5.json 2>&1 | grep -v Warn; date
