#!/usr/bin/env bash
# The GPU figures of the course: run once on a GPU machine from the repo root, with the release
# models of data/release/ present (committed). It rewrites every committed results/*_gpu*.json
# (or writes them to $OUT):
#   bench_rerank_gpu_qb16.json   Fast + Slow(10) against Slow on everything, N = 10^3, 10^4, 10^5,
#                                Slow re-scoring the candidates of 16 queries per decoder call
#   bench_rerank_gpu_qb200.json  the same, 200 queries per call (notebook 04, section 9: launch
#                                overhead, and batching queries together)
#   bench_slow_gpu.json          Slow's batched scorer against a per-pair loop
#   bench_train_gpu.json         the cpu preset's Fast and Slow training time on the GPU
# The arguments match the committed files' fields (threads 8, queries 200, base_queries 200,
# query_block, the sizes of their rows; texts 200 x 1,000 images for bench_slow).
set -o pipefail
OUT=${OUT:-results}
export PYTHONPATH=$PWD HF_HUB_OFFLINE=1 FASTSLOW_PROGRESS=0 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python -c "import torch,timm;print('torch',torch.__version__,'timm',timm.__version__)"; python -c "import faiss" 2>&1 | tail -1
for QB in 16 200; do
  date; timeout 300 python benchmarks/bench_rerank.py --device cuda --threads 8 --queries 200 --base-queries 200 \
    --sizes 1000 10000 100000 --k 10 --query-block $QB --out $OUT/bench_rerank_gpu_qb$QB.json 2>&1 | grep -v Warn
done
date; timeout 90 python benchmarks/bench_slow.py --device cuda --threads 8 --texts 200 --out $OUT/bench_slow_gpu.json
date; timeout 200 python benchmarks/bench_train.py --device cuda --threads 8 --out $OUT/bench_train_gpu.json
date
