from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from tests.engines.engine_process import EngineProcess, launch_engine
from tide.model.tiny import make_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The tiny demo model, built once per test session (no download)."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"), seed=0, log=lambda _line: None)


@pytest.fixture(scope="module")
def engine(tiny_model_dir: pathlib.Path) -> Iterator[EngineProcess]:
    """One engine shared by a test module; tests that stop it start their own."""
    proc = launch_engine(tiny_model_dir)
    try:
        yield proc
    finally:
        proc.stop()
