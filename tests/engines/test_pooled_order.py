"""The order a warm-pool process reads on stdin: what it accepts, and the field it names when it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tide.backends.warm_pool import order_line
from tide.engines.builtin.pooled import parse_order


def test_the_backend_order_round_trips_into_engine_arguments() -> None:
    argv = ("/usr/bin/python3", "-m", "tide.engines.builtin", "--model-dir", "/m", "--port", "4000")
    line = order_line(argv, {"CUDA_VISIBLE_DEVICES": "1", "HF_HUB_OFFLINE": "1"}, Path("/logs/r.log"))
    args, env, log = parse_order(line.decode())
    assert args == ["--model-dir", "/m", "--port", "4000"]
    assert env == {"CUDA_VISIBLE_DEVICES": "1", "HF_HUB_OFFLINE": "1"}
    assert log == "/logs/r.log"


@pytest.mark.parametrize(
    ("order", "named"),
    [
        ({"argv": ["python", "-m", "vllm.entrypoints.openai.api_server"], "env": {}}, "argv"),
        ({"argv": ["python", "-m", "tide.engines.builtin"], "env": {"A": 1}}, "env"),
        ({"argv": ["python", "-m", "tide.engines.builtin"], "env": {}, "log": 3}, "log"),
        ([], "object"),
    ],
)
def test_a_bad_order_is_refused_naming_what_is_wrong(order: object, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_order(json.dumps(order))
