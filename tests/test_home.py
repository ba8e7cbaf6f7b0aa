"""One data folder and one setting per port, as an operator meets them: every default path is in the
data folder (UNIVENCE_HOME or the user's data directory) whatever the working directory, explicit
settings still win; secrets in it are created once, owner-only and atomically; moving a service's port
moves the edge's and the CLI's view of it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edge.config import EdgeSettings
from services.accounts.config import AccountsSettings
from services.image.config import ImageSettings
from services.media.config import MediaSettings
from univence import registry
from univence.cli.accounts import local_accounts_address
from univence.home import data_home, read_or_create_secret

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("UNIVENCE_CONFIG", raising=False)
    monkeypatch.setenv("UNIVENCE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_the_tests_never_use_the_real_user_data_folder():
    real = Path("~/.local/share/univence").expanduser()
    assert not data_home().is_relative_to(real) and os.environ["UNIVENCE_HOME"] != str(real)


def test_every_default_path_is_in_the_data_folder(home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the data folder's parent: relative defaults would show here
    accounts, media, edge = AccountsSettings(), MediaSettings(), EdgeSettings()
    assert accounts.database_url == f"sqlite:///{home / 'accounts.db'}"
    assert accounts.admin_token_file == home / "admin-token"
    assert media.root == str(home / "media") and media.index_url == f"sqlite:///{home / 'media' / 'media.db'}"
    assert edge.maintenance_file == str(home / "maintenance")
    # Explicit settings still win.
    monkeypatch.setenv("UNIVENCE_MEDIA_ROOT", str(tmp_path / "elsewhere"))
    assert MediaSettings().root == str(tmp_path / "elsewhere")
    assert EdgeSettings(maintenance_file="/srv/flag").maintenance_file == "/srv/flag"


def test_without_univence_home_it_is_the_user_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("UNIVENCE_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # platformdirs' Linux data dir
    assert data_home() == tmp_path / "xdg" / "univence"


def test_a_secret_is_made_once_owner_only_and_agreed_on(tmp_path):
    path = tmp_path / "folder" / "admin-token"
    results: list[tuple[str, bool]] = []
    threads = [threading.Thread(target=lambda: results.append(read_or_create_secret(path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({secret for secret, _ in results}) == 1 and sum(created for _, created in results) == 1
    assert path.stat().st_mode & 0o777 == 0o600 and path.read_text() == results[0][0]
    assert [p.name for p in path.parent.iterdir()] == ["admin-token"]  # no temporary file is left
    assert read_or_create_secret(path) == (results[0][0], False)
    path.write_text("short")
    with pytest.raises(ValueError, match="delete it"):
        read_or_create_secret(path)


def test_one_setting_moves_a_port_for_the_service_the_edge_and_the_cli(home, tmp_path, monkeypatch):
    assert registry.address("image") == "127.0.0.1:50053"
    monkeypatch.setenv("UNIVENCE_IMAGE_PORT", "7101")
    assert ImageSettings().port == 7101
    assert registry.address("image") == EdgeSettings().modality_address("image") == "127.0.0.1:7101"
    config = tmp_path / "univence.toml"
    config.write_text('[accounts]\nport = 7102\n[media]\nport = 7103\nhost = "0.0.0.0"\n'
                      '[vision]\nhost = "::1"\nport = 7104\n[edge]\nmodality_addresses = { llm = "gpu:9" }\n')
    monkeypatch.setenv("UNIVENCE_CONFIG", str(config))
    assert AccountsSettings().port == 7102
    edge = EdgeSettings()
    assert (edge.accounts_address, edge.media_address) == ("127.0.0.1:7102", "127.0.0.1:7103")  # 0.0.0.0: local
    assert edge.modality_address("vision") == "[::1]:7104" and edge.modality_address("llm") == "gpu:9"
    assert local_accounts_address() == "127.0.0.1:7102"
    monkeypatch.setenv("UNIVENCE_EDGE_ACCOUNTS_ADDRESS", "accounts.internal:1")  # the edge's own setting wins
    assert local_accounts_address() == EdgeSettings().accounts_address == "accounts.internal:1"


def test_maintenance_from_any_directory_is_the_flag_the_edge_reads(home, tmp_path):
    env = {**os.environ, "UNIVENCE_HOME": str(home)}
    env.pop("UNIVENCE_CONFIG", None)
    for where in (tmp_path, ROOT):
        done = subprocess.run([sys.executable, "-m", "univence.cli", "maintenance", "on"], cwd=where, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "maintenance is on" in done.stdout, done.stderr
        assert Path(EdgeSettings().maintenance_file).exists()
        subprocess.run([sys.executable, "-m", "univence.cli", "maintenance", "off"], cwd=where, env=env,
                       check=True, capture_output=True, timeout=60)
        assert not (home / "maintenance").exists()
