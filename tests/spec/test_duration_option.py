"""One duration parser: options, the gateway's flags and the simulator read durations as the API does."""

from __future__ import annotations

import pytest

from tide.errors import FieldError
from tide.sim.policies import parse_duration as sim_duration
from tide.spec import parse_duration_option


@pytest.mark.parametrize(
    ("text", "seconds"), [("45", 45.0), ("0.5", 0.5), ("-5", -5.0), ("90s", 90.0), ("1h30m", 5400.0)]
)
def test_a_bare_number_is_seconds_and_a_string_is_an_api_duration(text: str, seconds: float) -> None:
    assert parse_duration_option(text, "--timeout") == seconds


def test_an_unreadable_option_names_its_field() -> None:
    with pytest.raises(FieldError) as error:
        parse_duration_option("soon", "--upstream-idle-timeout")
    assert error.value.field == "--upstream-idle-timeout"


def test_the_simulator_reads_what_the_api_reads_and_refuses_negative_or_endless() -> None:
    assert sim_duration(" 2m ") == 120.0 and sim_duration("1h30m") == 5400.0 and sim_duration("7d") == 7 * 86400
    for text in ("-5", "inf", "nan", "soon"):
        with pytest.raises(FieldError, match="is not a duration"):
            sim_duration(text)
