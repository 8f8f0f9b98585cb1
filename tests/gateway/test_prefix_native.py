"""The gateway's prompt-prefix names in C (tide/gateway/_prefixnames.c) against the Python ones.

The C names are what the gateway uses where the extension is built (every `pip install` with a C
compiler); they must name exactly what the Python fallback names, modulo 2**64 (the C sum wraps), or a
gateway's routing would differ by how it was installed. With TIDE_REQUIRE_NATIVE=1 (CI) a missing
extension fails instead of skipping.
"""

from __future__ import annotations

import os
import random

import pytest
import xxhash

from tide.gateway import prefix

MASK = (1 << 64) - 1

if not prefix.NATIVE_NAMES:
    if os.environ.get("TIDE_REQUIRE_NATIVE") == "1":
        pytest.fail(
            "TIDE_REQUIRE_NATIVE=1 but tide/gateway/_prefixnames.c is not built: run `pip install -e .` with a C compiler",
            pytrace=False,
        )
    pytest.skip("tide/gateway/_prefixnames.c is not built here (no C compiler at install)", allow_module_level=True)

from tide.gateway import _prefixnames  # noqa: E402  (only where built)


# The gateway's own seed differs per process (from Python's hash secret): named by an id, so that every
# test worker collects the same test names.
@pytest.mark.parametrize(
    "seed", [0, 1, 2**63 + 12345, MASK, None], ids=["0", "1", "2**63+12345", "2**64-1", "gateway's"]
)
def test_xxh64_is_the_xxhash_package_s_at_every_length(seed: int | None) -> None:
    if seed is None:
        seed = prefix._SEEDS[0]
    data = random.Random(seed).randbytes(2100)
    for length in range(len(data) + 1):  # every tail shape of the 32-byte stripes, 8- and 4-byte words, bytes
        assert _prefixnames.xxh64(data[:length], seed) == xxhash.xxh64_intdigest(data[:length], seed), length


def test_names_are_the_python_names_modulo_2_64() -> None:
    rng = random.Random(7)
    lengths = [0, 1, 383, 384, 385, 1151, 1152, 1153, 8 * 1024, 70_000, prefix.MAX_PROMPT_BYTES + 5000]
    lengths += [end + delta for end in prefix.BOUNDARIES[:10] for delta in (-65, -64, -1, 0, 1, 63)]
    lengths += [rng.randrange(20_000) for _ in range(200)]
    for length in lengths:
        data = rng.randbytes(length)
        for start in (0, 1, 17, 300):
            for max_chunks in (prefix.MAX_CHUNKS, 5, 1, 0):
                python = tuple(name & MASK for name in prefix._python_names(data, min(start, length), max_chunks))
                assert _prefixnames.chained_names(data, min(start, length), max_chunks) == python, (length, start)


def test_names_of_any_buffer_and_past_the_end() -> None:
    data = random.Random(3).randbytes(5000)
    names = _prefixnames.chained_names(data, 10, prefix.MAX_CHUNKS)
    assert _prefixnames.chained_names(bytearray(data), 10, prefix.MAX_CHUNKS) == names
    assert _prefixnames.chained_names(memoryview(data), 10, prefix.MAX_CHUNKS) == names
    assert _prefixnames.chained_names(data, len(data) + 5, prefix.MAX_CHUNKS) == ()  # nothing there to name
    with pytest.raises(TypeError):
        _prefixnames.chained_names("text, not bytes", 0, prefix.MAX_CHUNKS)  # type: ignore[arg-type]
