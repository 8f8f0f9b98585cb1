from __future__ import annotations

import pathlib

import pytest

from tide.model.tiny import make_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The tiny demo model, built once per test session (no download)."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"), seed=0, log=lambda _line: None)
