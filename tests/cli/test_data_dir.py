"""The data directory (API token, database, replica logs) is readable by its owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tide.config import ServerConfig
from tide.server import TideServer


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_dir_and_database_are_private(tmp_path: Path) -> None:
    config = ServerConfig(data_dir=tmp_path / "tide")
    TideServer(config).store.close()  # what `tide up` sets up before it serves
    assert mode(config.data_dir) == 0o700
    assert mode(config.data_dir / "tide.db") == 0o600


def test_an_existing_world_readable_install_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "tide"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    (data_dir / "tide.db").touch(mode=0o644)
    os.chmod(data_dir / "tide.db", 0o644)
    TideServer(ServerConfig(data_dir=data_dir)).store.close()
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "tide.db") == 0o600
