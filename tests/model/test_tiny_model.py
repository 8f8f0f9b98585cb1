"""The tiny demo model: built locally, loadable offline by transformers, deterministic per seed."""

from __future__ import annotations

import hashlib
import json
import pathlib
import subprocess
import sys

import pytest

from tide.model.tiny import ModelShape, make_tiny_model

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    lines: list[str] = []
    out = make_tiny_model(tmp_path_factory.mktemp("tiny"), seed=0, log=lines.append)
    assert any("tokenizer" in line for line in lines)  # progress was reported
    return out


def digests(directory: pathlib.Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_directory_holds_a_standard_hf_model(model_dir: pathlib.Path) -> None:
    names = {p.name for p in model_dir.iterdir()}
    assert {
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
    } <= names


def test_loads_offline_and_generates(model_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    assert model.config.model_type == "llama"
    assert model.config.vocab_size == len(tokenizer)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids[0]) == "<|im_start|>"  # special tokens stay single tokens
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|pad|>"
    code = "def add(a, b):\n    return a + b\n"
    encoded = tokenizer(code, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(encoded) == code  # byte-level BPE round-trips exactly
    assert len(encoded) < len(code) / 2  # and it learned real merges from the training text
    out = model.generate(torch.tensor([ids]), max_new_tokens=4, do_sample=False)
    assert out.shape[1] == len(ids) + 4 or int(out[0, -1]) in model.generation_config.eos_token_id


def test_same_seed_gives_identical_files(model_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    again = make_tiny_model(tmp_path / "again", seed=0, log=lambda _line: None)
    assert digests(again) == digests(model_dir)


def test_module_entry_point_rejects_a_file_as_output(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    result = subprocess.run(
        [sys.executable, "-m", "tide.model", str(target)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "not a directory" in result.stderr


def test_a_wider_shape_keeps_head_width_and_mlp_ratio(tmp_path: pathlib.Path) -> None:

    out = make_tiny_model(tmp_path / "wide", shape=ModelShape(hidden_size=512, num_layers=2), log=lambda _line: None)
    config = json.loads((out / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"]) == (512, 2)
    assert config["hidden_size"] // config["num_attention_heads"] == 64  # heads as wide as the tiny model's
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (8, 4)
    assert config["intermediate_size"] == 1376  # the tiny model's 688 / 256, times 512
