"""Loading a Hugging Face causal-LM directory (weights, tokenizer, generation config) for serving."""

from __future__ import annotations

import logging
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


def load_model(model_dir: pathlib.Path, *, dtype: str, device: str | None) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_model_dir(model_dir)
    target = pick_device(device)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=DTYPES[dtype])
    model = model.to(target)  # type: ignore[arg-type]
    model.eval()

    eos: set[int] = set()
    for source in (model.generation_config.eos_token_id, model.config.eos_token_id, tokenizer.eos_token_id):
        if isinstance(source, int):
            eos.add(source)
        elif isinstance(source, list):
            eos.update(int(t) for t in source)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (min(eos) if eos else 0)
    max_len = int(getattr(model.config, "max_position_embeddings", 0) or 0) or 2048
    log.info("loaded %s on %s as %s (max length %d)", model_dir, target, dtype, max_len)
    return LoadedModel(model, tokenizer, target, eos, int(pad), max_len)


def warm_up(loaded: LoadedModel) -> None:
    """One tiny forward pass, so the first request does not pay for lazy kernel setup."""
    with torch.inference_mode():
        ids = torch.tensor([[loaded.pad_token_id, loaded.pad_token_id]], device=loaded.device)
        loaded.model(input_ids=ids, use_cache=False)
