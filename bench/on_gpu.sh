#!/usr/bin/env bash
# Everything this project checks on a lent GPU machine, in one command (a lease is short and
# each start costs minutes): the lecture Darknet benchmarks; `bench/on_gpu.sh all` adds the demo
# preset's ratio and the unit tests on CUDA.
# Logs go to $OUT (the device tool's folder) or ./gpu-logs. The machine's own python3 holds
# torch; packages it lacks travel as wheels in .whl/ (see /work/.library/device/README.md).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
logs=${OUT:-gpu-logs}
mkdir -p "$logs"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  python3 -c "import torch, torchvision, os; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.version.cuda, 'cpus', os.cpu_count(), 'bf16', torch.cuda.is_bf16_supported())"
} 2>&1 | tee "$logs/env.txt"
timeout 420 python3 bench/darknet_throughput.py --preset lecture --repeats 3 --lecture-run 2>&1 | tee "$logs/darknet_lecture.txt"
[ "${1:-}" = all ] && timeout 60 python3 bench/darknet_throughput.py --preset demo --epochs 2 --repeats 3 2>&1 | tee "$logs/darknet_demo.txt"
# test_i18n needs streamlit and test_ray_worker needs ray: neither is on the GPU image
[ "${1:-}" = all ] && timeout 170 python3 -m pytest tests/unit -q -p no:cacheprovider --timeout 120 \
  --ignore tests/unit/test_ray_worker.py --ignore tests/unit/test_i18n.py 2>&1 | tee "$logs/unit_tests.txt" | tail -40
