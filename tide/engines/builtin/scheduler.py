"""Continuous batching: one scheduler thread runs the model for every active sequence at once.

Each loop iteration admits waiting requests (prefilled together, left-padded), merges their KV caches
into the running batch, then runs ONE decode step for the whole batch. Sequences join and leave between
steps, so a new request never waits for the others to finish, and N concurrent requests cost far less
than N times one. The batch's KV cache is a transformers `DynamicCache` whose rows are left-padded to a
common length; an attention mask hides the padding and explicit position ids keep RoPE positions exact.
"""

from __future__ import annotations

import inspect
import logging
import queue
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache

from tide.engines.builtin.detokenize import IncrementalDetokenizer, StopStringMatcher
from tide.engines.builtin.sampling import sample_token

log = logging.getLogger("tide.engines.builtin")

# Padded prompt tokens (rows x longest prompt) prefilled in one forward pass; more waits for the next one.
MAX_PREFILL_TOKENS = 8192


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class GenerationOutput:
    """One event for a request: new text (maybe empty), and on the last event why it finished."""

    text: str
    new_tokens: int
    finish_reason: str | None = None  # "stop", "length", or "error"
    error: str | None = None


OutputSink = Callable[[GenerationOutput], None]


@dataclass(eq=False)
class Sequence:
    prompt_ids: list[int]
    params: SamplingParams
    sink: OutputSink
    generator: torch.Generator
    detokenizer: IncrementalDetokenizer
    matcher: StopStringMatcher
    generated: int = 0
    cancelled: bool = False
    finished: bool = False

    def cancel(self) -> None:
        """Called from any thread (e.g. the client went away); the scheduler drops it before its next step."""
        self.cancelled = True


class BatchScheduler:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        device: torch.device,
        max_batch_size: int,
        eos_token_ids: set[int],
        max_model_len: int,
        pad_token_id: int,
    ) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._device = device
        self.max_batch_size = max_batch_size
        self._eos = eos_token_ids
        self.max_model_len = max_model_len
        self._pad_id = pad_token_id
        # transformers 5.x renamed `past_key_values` to `cache`; accept both.
        forward_params = inspect.signature(model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in forward_params else "past_key_values"

        self._incoming: queue.Queue[Sequence] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Batch state, touched only by the scheduler thread.
        self._seqs: list[Sequence] = []
        self._cache: DynamicCache | None = None
        self._mask = torch.zeros((0, 0), dtype=torch.long, device=device)
        self._next_input = torch.zeros((0,), dtype=torch.long, device=device)
        self._positions = torch.zeros((0,), dtype=torch.long, device=device)
        # Counters read by /load and /metrics from other threads (plain ints: reads are atomic).
        self.generated_tokens_total = 0
        self.prompt_tokens_total = 0

    # ---- called from other threads -------------------------------------------------------------------

    @property
    def num_waiting(self) -> int:
        return self._incoming.qsize()

    @property
    def num_running(self) -> int:
        return len(self._seqs)

    def submit(self, prompt_ids: list[int], params: SamplingParams, sink: OutputSink) -> Sequence:
        seed = params.seed if params.seed is not None else random.getrandbits(63)
        generator = torch.Generator().manual_seed(seed)
        seq = Sequence(
            prompt_ids=prompt_ids,
            params=params,
            sink=sink,
            generator=generator,
            detokenizer=IncrementalDetokenizer(self._tokenizer, prompt_ids),
            matcher=StopStringMatcher(list(params.stop)),
        )
        self._incoming.put(seq)
        return seq

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tide-batch-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def release(self) -> None:
        """After `stop`: let go of the model and the batch's KV cache (a park), so their memory can be freed
        while this object is still referenced."""
        self._model = None
        self._reset_batch()

    # ---- the scheduler thread ------------------------------------------------------------------------

    def _run(self) -> None:
        with torch.inference_mode():
            while not self._stop.is_set():
                try:
                    self._iterate()
                except Exception as exc:  # one bad step must not kill the engine: fail the batch, go on
                    log.exception("batch step failed")
                    for seq in self._seqs:
                        self._finish(seq, "error", error=f"generation failed: {exc}")
                    self._reset_batch()

    def _iterate(self) -> None:
        new = self._admit()
        if new:
            self._prefill(new)
        self._drop_cancelled()
        if self._seqs:
            self._decode_step()

    def _admit(self) -> list[Sequence]:
        free = self.max_batch_size - len(self._seqs)
        admitted: list[Sequence] = []
        longest = 0
        while free > len(admitted):
            try:
                # Block only when idle, so an idle engine costs nothing and a busy one never stalls.
                block = not self._seqs and not admitted
                seq = self._incoming.get(timeout=0.1) if block else self._incoming.get_nowait()
            except queue.Empty:
                break
            if seq.cancelled:
                continue
            longest = max(longest, len(seq.prompt_ids))
            admitted.append(seq)
            if longest * len(admitted) >= MAX_PREFILL_TOKENS:
                break
        return admitted

    def _prefill(self, new: list[Sequence]) -> None:
        width = max(len(s.prompt_ids) for s in new)
        input_ids = torch.full((len(new), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(new), width), dtype=torch.long)
        for row, seq in enumerate(new):
            n = len(seq.prompt_ids)
            input_ids[row, width - n :] = torch.tensor(seq.prompt_ids, dtype=torch.long)
            mask[row, width - n :] = 1
        input_ids, mask = input_ids.to(self._device), mask.to(self._device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        out = self._model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{self._cache_kwarg: cache},
        )
        layers = _layer_tensors(cache)
        if bool((mask == 0).any()):
            # Padding rows attend to nothing; whatever the kernel left there must not leak (NaN * 0 = NaN).
            keep = mask.bool()[:, None, :, None]
            layers = [(torch.where(keep, k, 0), torch.where(keep, v, 0)) for k, v in layers]
        self.prompt_tokens_total += sum(len(s.prompt_ids) for s in new)
        first_tokens = self._choose_tokens(new, out.logits[:, -1, :])
        lengths = torch.tensor([len(s.prompt_ids) for s in new], dtype=torch.long, device=self._device)
        self._merge(new, layers, mask, torch.tensor(first_tokens, device=self._device), lengths)
        self._after_tokens(first_tokens, first_row=len(self._seqs) - len(new))

    def _decode_step(self) -> None:
        batch = len(self._seqs)
        mask = torch.cat([self._mask, torch.ones((batch, 1), dtype=torch.long, device=self._device)], dim=1)
        out = self._model(
            input_ids=self._next_input.view(batch, 1),
            attention_mask=mask,
            position_ids=self._positions.view(batch, 1),
            use_cache=True,
            **{self._cache_kwarg: self._cache},
        )
        self._mask = mask
        self._positions = self._positions + 1
        tokens = self._choose_tokens(self._seqs, out.logits[:, -1, :])
        self._next_input = torch.tensor(tokens, dtype=torch.long, device=self._device)
        self._after_tokens(tokens, first_row=0)

    def _choose_tokens(self, seqs: list[Sequence], logits: torch.Tensor) -> list[int]:
        logits = logits.float()
        greedy = torch.argmax(logits, dim=-1).tolist()
        rows = logits.cpu() if any(s.params.temperature > 0 for s in seqs) else None
        tokens: list[int] = []
        for row, seq in enumerate(seqs):
            if seq.params.temperature <= 0 or rows is None:
                tokens.append(int(greedy[row]))
            else:
                tokens.append(sample_token(rows[row], seq.params.temperature, seq.params.top_p, seq.generator))
        return tokens

    def _after_tokens(self, tokens: list[int], *, first_row: int) -> None:
        """Feed rows first_row.. their new tokens; finished sequences leave the batch."""
        positions = self._positions.tolist()
        for offset, token in enumerate(tokens):
            row = first_row + offset
            self._accept(self._seqs[row], token, positions[row] + 1)
        keep = [row for row, seq in enumerate(self._seqs) if not seq.finished]
        if len(keep) != len(self._seqs):
            self._select_rows(keep)

    def _accept(self, seq: Sequence, token: int, length_after: int) -> None:
        if seq.cancelled:
            seq.finished = True
            return
        seq.generated += 1
        self.generated_tokens_total += 1
        if token in self._eos:
            self._finish(seq, "stop", seq.matcher.flush(), new_tokens=1)
            return
        text = seq.matcher.push(seq.detokenizer.add(token))
        if seq.matcher.stopped:
            self._finish(seq, "stop", text, new_tokens=1)
        elif seq.generated >= seq.params.max_tokens or length_after >= self.max_model_len:
            self._finish(seq, "length", text + seq.matcher.flush(), new_tokens=1)
        else:
            seq.sink(GenerationOutput(text=text, new_tokens=1))

    def _finish(
        self, seq: Sequence, reason: str, text: str = "", *, new_tokens: int = 0, error: str | None = None
    ) -> None:
        seq.finished = True
        seq.sink(GenerationOutput(text=text, new_tokens=new_tokens, finish_reason=reason, error=error))

    def _drop_cancelled(self) -> None:
        if any(s.cancelled for s in self._seqs):
            for seq in self._seqs:
                if seq.cancelled:
                    seq.finished = True
            self._select_rows([i for i, s in enumerate(self._seqs) if not s.cancelled])

    # ---- batch KV-cache bookkeeping ------------------------------------------------------------------

    def _merge(
        self,
        new: list[Sequence],
        layers: list[tuple[torch.Tensor, torch.Tensor]],
        mask: torch.Tensor,
        first_tokens: torch.Tensor,
        lengths: torch.Tensor,
    ) -> None:
        """Append freshly prefilled rows to the running batch, left-padding whichever side is shorter."""
        if self._cache is None or not self._seqs:
            merged_layers, merged_mask = layers, mask
            self._seqs = list(new)
            self._next_input, self._positions = first_tokens, lengths
        else:
            old_layers = _layer_tensors(self._cache)
            width = max(self._mask.shape[1], mask.shape[1])
            merged_layers = [
                (
                    torch.cat([_pad_left(ok, width), _pad_left(nk, width)]),
                    torch.cat([_pad_left(ov, width), _pad_left(nv, width)]),
                )
                for (ok, ov), (nk, nv) in zip(old_layers, layers, strict=True)
            ]
            merged_mask = torch.cat([_pad_left_mask(self._mask, width), _pad_left_mask(mask, width)])
            self._seqs = self._seqs + list(new)
            self._next_input = torch.cat([self._next_input, first_tokens])
            self._positions = torch.cat([self._positions, lengths])
        self._cache = DynamicCache(merged_layers)
        self._mask = merged_mask

    def _select_rows(self, keep: list[int]) -> None:
        """Keep only these batch rows, then cut columns that are padding in every remaining row."""
        self._seqs = [self._seqs[i] for i in keep]
        if not keep or self._cache is None:
            self._reset_batch()
            return
        index = torch.tensor(keep, dtype=torch.long, device=self._device)
        mask = self._mask.index_select(0, index)
        used_columns = mask.any(dim=0).nonzero()
        start = int(used_columns[0].item()) if used_columns.numel() else 0
        self._mask = mask[:, start:]
        self._cache = DynamicCache(
            [
                (keys.index_select(0, index)[:, :, start:], values.index_select(0, index)[:, :, start:])
                for keys, values in _layer_tensors(self._cache)
            ]
        )
        self._next_input = self._next_input.index_select(0, index)
        self._positions = self._positions.index_select(0, index)

    def _reset_batch(self) -> None:
        self._seqs = []
        self._cache = None
        self._mask = torch.zeros((0, 0), dtype=torch.long, device=self._device)
        self._next_input = torch.zeros((0,), dtype=torch.long, device=self._device)
        self._positions = torch.zeros((0,), dtype=torch.long, device=self._device)


def _layer_tensors(cache: DynamicCache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(keys, values) per layer; only plain attention layers are supported (Llama-style models)."""
    tensors: list[tuple[torch.Tensor, torch.Tensor]] = []
    for index, layer in enumerate(cache.layers):
        keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
        if not isinstance(keys, torch.Tensor) or not isinstance(values, torch.Tensor):
            raise RuntimeError(
                f"cache layer {index} ({type(layer).__name__}) holds no key/value tensors; "
                "the built-in engine supports decoder models with plain attention only"
            )
        tensors.append((keys, values))
    return tensors


def _pad_left(kv: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - kv.shape[2]
    return kv if missing == 0 else torch.nn.functional.pad(kv, (0, 0, missing, 0))


def _pad_left_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - mask.shape[1]
    return mask if missing == 0 else torch.nn.functional.pad(mask, (missing, 0))
