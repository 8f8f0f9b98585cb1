"""Stop strings are found across token boundaries and never leak into the output."""

from __future__ import annotations

from tide.engines.builtin.detokenize import StopStringMatcher


def feed(matcher: StopStringMatcher, pieces: list[str]) -> str:
    return "".join(matcher.push(p) for p in pieces) + ("" if matcher.stopped else matcher.flush())


def test_stop_string_split_over_several_deltas_is_cut_before_it() -> None:
    matcher = StopStringMatcher(["END"])
    assert feed(matcher, ["hello E", "N", "D and more"]) == "hello "
    assert matcher.stopped


def test_partial_stop_prefix_is_released_when_it_does_not_complete() -> None:
    matcher = StopStringMatcher(["END"])
    assert matcher.push("abc EN") == "abc "  # "EN" might still become "END"
    assert matcher.push("X") == "ENX"
    assert not matcher.stopped


def test_earliest_of_several_stop_strings_wins() -> None:
    matcher = StopStringMatcher(["zz", "b"])
    assert feed(matcher, ["a", "bzz"]) == "a"


def test_no_stop_strings_passes_everything_through() -> None:
    assert feed(StopStringMatcher([]), ["a", "b", "c"]) == "abc"
