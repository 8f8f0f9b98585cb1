"""Build the tiny demo model locally: a random-weight Llama and a BPE tokenizer trained on local text.

Nothing is downloaded. The result is a normal Hugging Face model directory (safetensors, config.json,
generation_config.json, tokenizer files, ChatML chat template) that `AutoModelForCausalLM` and
`AutoTokenizer` load offline, and that any engine (built-in, vLLM) can serve.
"""

from __future__ import annotations

import json
import pathlib
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END, PAD]  # ids 0..3, in this order

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

VOCAB_SIZE = 4096
HIDDEN_SIZE = 256
NUM_LAYERS = 4
NUM_HEADS = 4
NUM_KV_HEADS = 2
INTERMEDIATE_SIZE = 688
MAX_POSITIONS = 2048
# About 5 MB of text: enough for a real-looking vocabulary, trains in ~1-2 s on one core.
TRAINING_TEXT_LIMIT_BYTES = 5_000_000


def _training_files() -> list[pathlib.Path]:
    """The CPython stdlib's top-level .py files, in a fixed order (sorted), so training is reproducible."""
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.glob("*.py") if p.is_file())
    if not files:
        raise RuntimeError(f"no .py files found in the Python stdlib at {stdlib}; cannot train the tokenizer")
    return files


def _training_text() -> Iterator[str]:
    total = 0
    for path in _training_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        total += len(text)
        yield text
        if total >= TRAINING_TEXT_LIMIT_BYTES:
            return


def _train_tokenizer(out_dir: pathlib.Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_training_text(), trainer=trainer)

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=IM_END,
        pad_token=PAD,
        bos_token=None,
        unk_token=None,
        additional_special_tokens=[ENDOFTEXT, IM_START],
        model_max_length=MAX_POSITIONS,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(out_dir))


@dataclass(frozen=True)
class ModelShape:
    """The transformer's size. The default is the tiny demo model; benches that need prefill to cost
    something (bench/prefix/live.py `--model-hidden`) widen it, keeping 64-wide heads and the MLP ratio."""

    hidden_size: int = HIDDEN_SIZE
    num_layers: int = NUM_LAYERS

    @property
    def num_heads(self) -> int:
        return max(1, self.hidden_size // (HIDDEN_SIZE // NUM_HEADS))

    @property
    def num_kv_heads(self) -> int:
        return max(1, self.num_heads * NUM_KV_HEADS // NUM_HEADS)

    @property
    def intermediate_size(self) -> int:
        return self.hidden_size * INTERMEDIATE_SIZE // HIDDEN_SIZE // 16 * 16


def _build_weights(out_dir: pathlib.Path, seed: int, shape: ModelShape) -> int:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads,
        max_position_embeddings=MAX_POSITIONS,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=False,
        bos_token_id=SPECIAL_TOKENS.index(ENDOFTEXT),
        eos_token_id=[SPECIAL_TOKENS.index(IM_END), SPECIAL_TOKENS.index(ENDOFTEXT)],
        pad_token_id=SPECIAL_TOKENS.index(PAD),
    )
    # Seed right before construction: weight init is the only randomness, so equal seeds give equal bytes.
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        do_sample=True,
        temperature=0.7,
        top_p=0.9,
        max_new_tokens=64,
    )
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # our own progress lines are enough
    try:
        model.save_pretrained(str(out_dir), safe_serialization=True)
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()
    return sum(p.numel() for p in model.parameters())


def make_tiny_model(
    out_dir: pathlib.Path,
    *,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    shape: ModelShape = ModelShape(),
) -> pathlib.Path:
    """Write the tiny demo model into `out_dir` (created if missing) and return it.

    Deterministic for a given `seed`: the tokenizer is trained on a fixed, sorted set of local files and
    the weights come from a seeded init. `log` receives short progress lines (default: print to stdout).
    """
    say = log if log is not None else (lambda line: print(line, flush=True))
    out_dir = pathlib.Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir} exists and is not a directory; pick another output directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    say(f"training a {VOCAB_SIZE}-token byte-level BPE tokenizer on the local Python stdlib ...")
    _train_tokenizer(out_dir)
    say(f"  tokenizer done ({time.monotonic() - started:.1f} s)")

    say(f"building a {shape.num_layers}-layer Llama (hidden {shape.hidden_size}, seed {seed}) ...")
    n_params = _build_weights(out_dir, seed, shape)
    # The tokenizer config also carries the template; a separate file is what newer tools look for first.
    (out_dir / "chat_template.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")
    _write_tide_marker(out_dir, seed)
    say(f"  model done: {n_params / 1e6:.1f} M parameters ({time.monotonic() - started:.1f} s)")
    say(f"tiny model written to {out_dir}")
    return out_dir


def _write_tide_marker(out_dir: pathlib.Path, seed: int) -> None:
    marker = {"builder": "tide.model.tiny", "seed": seed}
    (out_dir / "tide-model.json").write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tide.model", description=__doc__)
    parser.add_argument("out_dir", type=pathlib.Path, help="directory to write the model into")
    parser.add_argument("--seed", type=int, default=0, help="weight-init seed (default 0)")
    args = parser.parse_args(argv)
    try:
        make_tiny_model(args.out_dir, seed=args.seed)
    except (OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
