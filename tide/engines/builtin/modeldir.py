"""Checking a model directory before the slow imports (no torch here)."""

from __future__ import annotations

import json
import pathlib


class ModelDirError(ValueError):
    """The model directory cannot be served; the message says what is missing."""


def check_model_dir(model_dir: pathlib.Path) -> None:
    """Fail fast, before the slow imports, on a directory that is obviously not a model."""
    if not model_dir.is_dir():
        raise ModelDirError(f"--model-dir {model_dir} is not a directory")
    if not (model_dir / "config.json").is_file():
        raise ModelDirError(f"--model-dir {model_dir} has no config.json; point it at a Hugging Face model directory")
    try:
        json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"{model_dir / 'config.json'} is not valid JSON: {exc}") from exc
