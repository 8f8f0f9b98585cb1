"""Loading a Hugging Face causal-LM directory (weights, tokenizer, generation config) for serving."""

from __future__ import annotations

import logging
import os
import pathlib
from dataclasses import dataclass
from typing import Any

import torch

from tide.engines.builtin.modeldir import ModelDirError, check_model_dir

log = logging.getLogger("tide.engines.builtin")

DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    device: torch.device
    eos_token_ids: set[int]
    pad_token_id: int
    max_model_len: int


def pick_device(requested: str | None) -> torch.device:
    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelDirError("--device cuda was given but torch sees no CUDA device; use --device cpu")
    return torch.device(requested)


def default_cpu_threads() -> int:
    """Half the cores (at least 1): replicas share a machine with each other and with the HTTP side, and
    torch's OpenMP threads collapse when oversubscribed (measured here on 2 busy cores: 2 threads gave
    21 tok/s, 1 thread 196 tok/s)."""
    return max(1, (os.cpu_count() or 2) // 2)


def set_cpu_threads(threads: int | None) -> int:
    if threads is None and "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()  # the operator chose already
    chosen = threads if threads is not None else default_cpu_threads()
    torch.set_num_threads(chosen)
    return chosen


def load_model(model_dir: pathlib.Path, *, dtype: str, device: str | None, threads: int | None = None) -> LoadedModel:
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a server logs lines, not progress bars

    check_model_dir(model_dir)
    target = pick_device(device)
    used_threads = set_cpu_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = load_weights(model_dir, dtype=dtype, device=target)

    eos: set[int] = set()
    for source in (model.generation_config.eos_token_id, model.config.eos_token_id, tokenizer.eos_token_id):
        if isinstance(source, int):
            eos.add(source)
        elif isinstance(source, list):
            eos.update(int(t) for t in source)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (min(eos) if eos else 0)
    max_len = int(getattr(model.config, "max_position_embeddings", 0) or 0) or 2048
    log.info("loaded %s on %s as %s (max length %d, %d CPU threads)", model_dir, target, dtype, max_len, used_threads)
    return LoadedModel(model, tokenizer, target, eos, int(pad), max_len)


def load_weights(model_dir: pathlib.Path, *, dtype: str, device: torch.device) -> Any:
    """The model's weights from its directory onto `device`, ready for inference (also a level-2 wake)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=DTYPES[dtype])
    model = model.to(device)  # type: ignore[arg-type]
    model.eval()
    return model


def warm_up(loaded: LoadedModel) -> None:
    """One tiny forward pass, so the first request does not pay for lazy kernel setup."""
    with torch.inference_mode():
        ids = torch.tensor([[loaded.pad_token_id, loaded.pad_token_id]], device=loaded.device)
        loaded.model(input_ids=ids, use_cache=False)
