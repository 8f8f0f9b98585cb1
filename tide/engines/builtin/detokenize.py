"""Turning generated token ids into text deltas as they arrive, and finding stop strings.

Decoding only a short window of recent tokens keeps the cost per token constant; text that ends in an
incomplete UTF-8 sequence, or that might be the start of a stop string, is held back until it is settled.
"""

from __future__ import annotations

from typing import Any

# Prompt tokens kept as left context: some tokenizers (sentencepiece) decode a token differently at the
# start of a sequence, so a window that starts mid-text needs a few tokens before it.
_CONTEXT_TOKENS = 5


class IncrementalDetokenizer:
    def __init__(self, tokenizer: Any, prompt_ids: list[int]) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = list(prompt_ids[-_CONTEXT_TOKENS:])
        self._prefix_offset = 0
        self._read_offset = len(self._ids)

    def add(self, token_id: int) -> str:
        """Append one token; return the newly settled text (possibly empty)."""
        self._ids.append(token_id)
        decode = self._tokenizer.decode
        prefix_text = decode(self._ids[self._prefix_offset : self._read_offset], skip_special_tokens=True)
        full_text = decode(self._ids[self._prefix_offset :], skip_special_tokens=True)
        if len(full_text) > len(prefix_text) and not full_text.endswith("\ufffd"):
            self._prefix_offset = self._read_offset
            self._read_offset = len(self._ids)
            return full_text[len(prefix_text) :]
        return ""


class StopStringMatcher:
    """Accumulates output text; says what may be emitted now and whether a stop string was hit."""

    def __init__(self, stop: list[str]) -> None:
        self._stop = [s for s in stop if s]
        self._text = ""
        self._emitted = 0
        self.stopped = False

    def push(self, delta: str) -> str:
        """Add `delta`; return text safe to emit. After a stop string, `stopped` is True (text cut before it)."""
        if self.stopped:
            return ""
        search_from = len(self._text)
        self._text += delta
        if not self._stop:
            return self._take(len(self._text))
        hit = -1
        for stop in self._stop:
            index = self._text.find(stop, max(0, search_from - len(stop) + 1))
            if index != -1 and (hit == -1 or index < hit):
                hit = index
        if hit != -1:
            self.stopped = True
            self._text = self._text[:hit]
            return self._take(hit)
        return self._take(len(self._text) - self._held_back())

    def flush(self) -> str:
        """The rest of the text, once generation ended for another reason."""
        return self._take(len(self._text))

    def _held_back(self) -> int:
        """Length of the longest suffix of the text that could still grow into a stop string."""
        longest = 0
        for stop in self._stop:
            for size in range(min(len(stop) - 1, len(self._text)), longest, -1):
                if self._text.endswith(stop[:size]):
                    longest = size
                    break
        return longest

    def _take(self, upto: int) -> str:
        upto = max(upto, self._emitted)
        out = self._text[self._emitted : upto]
        self._emitted = upto
        return out
