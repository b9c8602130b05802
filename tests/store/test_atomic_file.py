"""Files that are not ours stay as they were (issue 9 §3), tested as root with files chowned to `nobody`.

Run as root (or via sudo) a replace must keep the previous file's owner and group, and nothing may
be written or chmodded through a symlink into someone else's file.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from doctor.claude_desktop.update import update_connector_env
from doctor.store.atomic_file import ForeignTarget, chmod_owned, replace_atomically, resolve_for_write
from doctor.store.env_file import EnvFileError, read_env_file, update_env_file
from doctor.store.errors import StoreError
from doctor.store.token_store import TokenStore
from tests.support.homes import cli_env, configured_values, run_cli, write_env

NOBODY = 65534
STRANGER = 12345  # a uid that is neither root nor the home's owner
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


def owner(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_uid, st.st_gid


def nobodys_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    write_env(home, configured_values())
    os.chown(home, NOBODY, NOBODY)
    os.chown(home / ".env", NOBODY, NOBODY)
    return home


def test_a_replace_as_root_keeps_the_owner_and_group(tmp_path: Path) -> None:
    home = nobodys_home(tmp_path)
    update_env_file(home / ".env", {"QB_REFRESH_TOKEN": "RTnew-token-000001"})
    assert owner(home / ".env") == (NOBODY, NOBODY)
    assert stat.S_IMODE((home / ".env").stat().st_mode) == 0o600
    assert read_env_file(home / ".env").get("QB_REFRESH_TOKEN") == "RTnew-token-000001"


def test_a_new_file_written_as_root_belongs_to_the_folders_owner(tmp_path: Path) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir()
    os.chown(folder, NOBODY, NOBODY)
    replace_atomically(folder / "new.json", b"{}", 0o600, prefix=".new.")
    assert owner(folder / "new.json") == (NOBODY, NOBODY)


def test_the_lock_files_root_creates_in_a_users_home_are_the_users(tmp_path: Path) -> None:
    home = nobodys_home(tmp_path)
    with TokenStore(home).locked(1):
        pass
    assert owner(home / ".env.lock") == (NOBODY, NOBODY)
    assert owner(home / ".env.lock.gate") == (NOBODY, NOBODY)


def test_claude_desktops_config_keeps_its_owner(tmp_path: Path) -> None:
    config = tmp_path / "claude_desktop_config.json"
    entry = {"command": "qb", "env": {"QB_REFRESH_TOKEN": "RTold", "QB_REALM_ID": "1", "QB_ENVIRONMENT": "sandbox"}}
    config.write_text(json.dumps({"mcpServers": {"qb-distributor": entry}}))
    config.chmod(0o644)
    os.chown(config, NOBODY, NOBODY)
    update_connector_env(config, {"QB_REFRESH_TOKEN": "RTnew-token-000002"})
    assert owner(config) == (NOBODY, NOBODY) and stat.S_IMODE(config.stat().st_mode) == 0o644
    assert (
        json.loads(config.read_text())["mcpServers"]["qb-distributor"]["env"]["QB_REFRESH_TOKEN"]
        == "RTnew-token-000002"
    )


def foreign_link(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """A home (root's) whose .env links to a file of another user."""
    elsewhere = tmp_path / "stranger"
    elsewhere.mkdir()
    target = elsewhere / "their.env"
    target.write_text("THEIR_KEY=theirs\n")
    target.chmod(0o644)
    os.chown(target, STRANGER, STRANGER)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".env").symlink_to(target)
    return home, target, target.read_bytes()


def assert_untouched(target: Path, before: bytes) -> None:
    assert target.read_bytes() == before
    assert owner(target) == (STRANGER, STRANGER) and stat.S_IMODE(target.stat().st_mode) == 0o644


def test_no_write_through_a_symlink_to_another_users_file(tmp_path: Path) -> None:
    home, target, before = foreign_link(tmp_path)
    with pytest.raises(EnvFileError) as info:
        update_env_file(home / ".env", {"QB_REFRESH_TOKEN": "RTnew-token-000003"})
    assert info.value.reason == "foreign_target"
    assert "belongs to another user" in str(info.value) and "nothing was changed" in str(info.value)
    assert_untouched(target, before)
    with pytest.raises(StoreError) as store_info:
        TokenStore(home).prove_writable()
    assert "nothing was sent to Intuit" in str(store_info.value)


def test_a_symlink_to_the_home_owners_own_file_is_still_followed(tmp_path: Path) -> None:
    home = nobodys_home(tmp_path)
    real = tmp_path / "dotfiles" / "qb.env"
    real.parent.mkdir()
    os.replace(home / ".env", real)
    (home / ".env").symlink_to(real)
    assert resolve_for_write(home / ".env") == real
    update_env_file(home / ".env", {"QB_REFRESH_TOKEN": "RTnew-token-000004"})
    assert (home / ".env").is_symlink() and owner(real) == (NOBODY, NOBODY)
    assert read_env_file(real).get("QB_REFRESH_TOKEN") == "RTnew-token-000004"


def test_chmod_owned_never_chmods_a_foreign_target(tmp_path: Path) -> None:
    home, target, before = foreign_link(tmp_path)
    with pytest.raises(ForeignTarget):
        chmod_owned(home / ".env", 0o600)
    assert_untouched(target, before)


def test_doctor_fix_leaves_a_symlinks_foreign_target_alone(tmp_path: Path) -> None:
    home, target, _ = foreign_link(tmp_path)
    target.write_text("".join(f"{k}={v}\n" for k, v in configured_values().items()))
    os.chown(target, STRANGER, STRANGER)
    target.chmod(0o644)
    before = target.read_bytes()
    run_cli("doctor", "--offline", "--fix", "--yes", env=cli_env(home))
    assert_untouched(target, before)
