"""The chain's lineage (doctor/store/lineage.py): keyed hashes of saved tokens, bounded, never a token.

The store's own writers (TokenStore.refresh, save_consent, a finished recovery) are exercised with
a stand-in Intuit, as in test_token_store.py; the CLI scenarios are in tests/e2e/test_scenarios_lineage.py.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from doctor.intuit.responses import TokenResponse
from doctor.store import lineage
from doctor.store import saving as saving_module
from doctor.store.env_file import read_env_file
from doctor.store.lineage import (
    CONSENT,
    EARLIER_CONSENT,
    FOUND,
    KEY_NAME,
    LATEST,
    LINEAGE_NAME,
    MAX_ENTRIES,
    NO_HISTORY,
    OLDER,
    OTHER_CONSENT,
    ROTATION,
    THIS_CHAIN,
    UNKNOWN,
    UNRECORDED,
    program_name,
    read_lineage,
    record,
)
from doctor.store.token_store import StoreError, TokenStore
from tests.store.test_token_store import StandInIntuit, write_env

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "qb-home"
    home.mkdir()
    return home


def token(n: int, chain: str = "a") -> str:
    return f"RT1-39-H3-17800000{chain}{n:04d}secretpartxyz{n:04d}"


def build_chain(home: Path, rotations: int, *, chain: str = "a", start: datetime = T0, consent: bool = True) -> None:
    """A consent (or a token found in .env) followed by `rotations` rotations, an hour apart."""
    if consent:
        assert record(home, token(0, chain), CONSENT, program="reauth-qb", now=start, pid=101)
    for n in range(1, rotations + 1):
        assert record(
            home, token(n, chain), ROTATION, program="connector", replaces=token(n - 1, chain),
            now=start + timedelta(hours=n), pid=202,
        )  # fmt: skip


def file_text(home: Path) -> str:
    return (home / LINEAGE_NAME).read_text(encoding="utf-8")


def key_text(home: Path) -> str:
    return (home / KEY_NAME).read_text(encoding="ascii").strip()


def test_a_chain_from_its_consent_tells_an_older_copy_from_another_consent(home: Path) -> None:
    build_chain(home, 5)
    seen = read_lineage(home)
    assert [e.kind for e in seen.entries] == [CONSENT] + [ROTATION] * 5
    env_token = token(5)
    for older in range(5):
        origin = seen.copy_origin(env_token, token(older))
        assert origin.origin == THIS_CHAIN and origin.chain_start == CONSENT and origin.since == T0
        assert origin.saved_at == T0 + timedelta(hours=older)
    assert seen.copy_origin(env_token, env_token).origin == THIS_CHAIN
    other = seen.copy_origin(env_token, token(0, chain="b"))
    assert other.origin == OTHER_CONSENT and other.since == T0 and other.saved_at is None
    assert seen.env_position(env_token) == LATEST and seen.env_position(token(3)) == OLDER
    assert seen.env_position(token(9, chain="z")) == UNRECORDED


def test_the_file_holds_no_token_and_no_key_and_both_files_are_0600(home: Path) -> None:
    build_chain(home, 3)
    text = file_text(home)
    for n in range(4):
        assert token(n) not in text and token(n)[-12:] not in text
        assert f"RT\u2026{token(n)[-4:]}" in text
    assert key_text(home) not in text and len(key_text(home)) == 64
    assert stat.S_IMODE((home / LINEAGE_NAME).stat().st_mode) == 0o600
    assert stat.S_IMODE((home / KEY_NAME).stat().st_mode) == 0o600
    assert [p.name for p in home.iterdir() if ".tmp-" in p.name] == []
    entry = json.loads(text)["entries"][1]
    assert set(entry) == {"at", "kind", "program", "pid", "token", "hmac", "replaces"}
    assert entry["program"] == "connector" and entry["pid"] == 202 and entry["at"] == "2026-11-01T13:00:00Z"
    assert key_text(home) not in repr(read_lineage(home))


def test_support_sees_the_newest_entries_redacted_without_hashes(home: Path) -> None:
    build_chain(home, 12)
    recent = read_lineage(home).recent(10)
    assert len(recent) == 10 and recent[-1]["token"] == f"RT\u2026{token(12)[-4:]}"
    assert all(set(item) == {"at", "kind", "program", "pid", "token"} for item in recent)
    assert recent[0]["at"] == "2026-11-01T15:00:00Z"  # oldest first: rotations 3..12


def test_only_the_newest_entries_are_kept_and_then_the_chain_start_is_unknown(home: Path) -> None:
    build_chain(home, MAX_ENTRIES + 9)
    seen = read_lineage(home)
    assert len(seen.entries) == MAX_ENTRIES and seen.entries[0].kind == ROTATION
    env_token = token(MAX_ENTRIES + 9)
    kept = seen.copy_origin(env_token, token(20))
    assert kept.origin == THIS_CHAIN and kept.chain_start == ROTATION
    # A token from before the oldest kept entry, or another consent's: nobody can tell which.
    dropped = seen.copy_origin(env_token, token(3))
    assert dropped.origin == UNKNOWN and dropped.since == seen.entries[0].at
    assert len(file_text(home).encode()) < lineage.MAX_LINEAGE_BYTES


def test_a_token_found_in_env_starts_an_unknown_chain(home: Path) -> None:
    # The upgrade: .env held a chain before the lineage existed; its first rotation records both.
    record(home, token(8), ROTATION, program="refresh-qb", replaces=token(7), now=T0, pid=7)
    seen = read_lineage(home)
    assert [(e.kind, e.token) for e in seen.entries] == [
        (FOUND, f"RT…{token(7)[-4:]}"),
        (ROTATION, f"RT…{token(8)[-4:]}"),
    ]
    assert seen.copy_origin(token(8), token(7)).origin == THIS_CHAIN
    unknown = seen.copy_origin(token(8), token(1))
    assert unknown.origin == UNKNOWN and unknown.chain_start == FOUND and unknown.since == T0
    # A later consent makes the new chain's every token known.
    record(home, token(0, "b"), CONSENT, program="reauth-qb", now=T0 + timedelta(days=1))
    record(home, token(1, "b"), ROTATION, program="doctor", replaces=token(0, "b"), now=T0 + timedelta(days=2))
    seen = read_lineage(home)
    assert seen.copy_origin(token(1, "b"), token(1)).origin == OTHER_CONSENT
    earlier = seen.copy_origin(token(1, "b"), token(8))
    assert earlier.origin == EARLIER_CONSENT and earlier.saved_at == T0 and earlier.since == T0 + timedelta(days=1)


def test_a_newer_token_of_the_chain_than_env_is_still_this_chain(home: Path) -> None:
    # .env was set back to an older token (a restored backup): Claude holding the newest is the same chain.
    build_chain(home, 4)
    seen = read_lineage(home)
    assert seen.copy_origin(token(2), token(4)).origin == THIS_CHAIN
    assert seen.env_position(token(2)) == OLDER


def test_the_same_token_again_adds_nothing_but_a_consent_always_counts(home: Path) -> None:
    build_chain(home, 1)
    record(home, token(1), ROTATION, program="connector", replaces=token(0))
    assert len(read_lineage(home).entries) == 2
    record(home, token(1), CONSENT, program="reauth-qb")
    assert [e.kind for e in read_lineage(home).entries] == [CONSENT, ROTATION, CONSENT]


def test_readers_create_nothing_and_an_empty_home_has_no_history(home: Path) -> None:
    seen = read_lineage(home)
    assert seen.entries == [] and not seen.verifiable
    assert seen.copy_origin(token(1), token(2)).origin == NO_HISTORY
    assert seen.env_position(token(1)) is None
    assert list(home.iterdir()) == []


def test_env_token_the_lineage_never_saw_gives_no_history(home: Path) -> None:
    build_chain(home, 2)
    # .env now holds a token written by hand: the lineage knows nothing about its chain.
    assert read_lineage(home).copy_origin(token(5, "h"), token(0)).origin == NO_HISTORY


def test_a_lost_key_makes_old_entries_unverifiable_and_the_next_writer_starts_afresh(home: Path) -> None:
    build_chain(home, 3)
    (home / KEY_NAME).unlink()
    seen = read_lineage(home)
    assert len(seen.entries) == 4 and not seen.verifiable
    assert seen.copy_origin(token(3), token(1)).origin == NO_HISTORY
    assert not (home / KEY_NAME).exists()  # a reader does not make a new key
    record(home, token(4), ROTATION, program="connector", replaces=token(3))
    seen = read_lineage(home)
    assert [e.kind for e in seen.entries] == [FOUND, ROTATION]
    assert seen.copy_origin(token(4), token(1)).origin == UNKNOWN
    # A key from elsewhere (copied from another home) does not match these hashes either.
    (home / KEY_NAME).write_text("ab" * 32 + "\n")
    assert not read_lineage(home).verifiable


def test_a_damaged_file_reads_empty_and_bad_entries_are_dropped(home: Path) -> None:
    build_chain(home, 2)
    data = json.loads(file_text(home))
    data["entries"][1]["token"] = "RT…" + token(1)[-10:]  # more than the redacted form: never shown
    data["entries"].append({"at": "yesterday", "kind": "rotation"})
    data["entries"].append(dict(data["entries"][0], kind="<script>"))
    (home / LINEAGE_NAME).write_text(json.dumps(data))
    seen = read_lineage(home)
    assert [e.kind for e in seen.entries] == [CONSENT, ROTATION]
    assert all(len(item["token"]) <= 7 for item in seen.recent())
    (home / LINEAGE_NAME).write_text('{"entries": [7')
    assert read_lineage(home).entries == []
    record(home, token(3), ROTATION, program="connector", replaces=token(2))
    assert [e.kind for e in read_lineage(home).entries] == [FOUND, ROTATION]


def test_recording_never_raises_and_never_creates_a_home(home: Path, tmp_path: Path) -> None:
    assert record(tmp_path / "absent", token(1), CONSENT, program="reauth-qb") is False
    assert not (tmp_path / "absent").exists()
    (home / LINEAGE_NAME).mkdir()  # the file cannot be replaced
    assert record(home, token(1), CONSENT, program="reauth-qb") is False
    assert record(home, "", CONSENT, program="reauth-qb") is False
    assert record(home, token(1), "stolen", program="reauth-qb") is False


def test_a_loosened_key_is_tightened_by_the_next_writer(home: Path) -> None:
    build_chain(home, 1)
    os.chmod(home / KEY_NAME, 0o644)
    record(home, token(2), ROTATION, program="connector", replaces=token(1))
    assert stat.S_IMODE((home / KEY_NAME).stat().st_mode) == 0o600


def test_program_names_are_short_words() -> None:
    assert program_name("sidequest refresh-qb") == "refresh-qb"
    assert program_name("sidequest connector") == "connector"
    assert program_name("sidequest") == "sidequest"
    assert program_name("RTsecret token!") == "sidequest"
    assert program_name("") == "sidequest"


# ------------------------------------------------------------------ every writer of the store records


def kinds_and_programs(home: Path) -> list[tuple[str, str]]:
    return [(e.kind, e.program) for e in read_lineage(home).entries]


def test_a_rotation_records_the_token_it_replaced_and_the_new_one(home: Path) -> None:
    write_env(home, "RTbefore-lineage-0001")
    store = TokenStore(home, intuit=StandInIntuit(), command="sidequest refresh-qb", clock=lambda: T0)
    store.refresh()
    store.refresh()
    seen = read_lineage(home)
    assert kinds_and_programs(home) == [(FOUND, "refresh-qb"), (ROTATION, "refresh-qb"), (ROTATION, "refresh-qb")]
    assert {e.pid for e in seen.entries} == {os.getpid()} and seen.entries[-1].at == T0
    assert seen.env_position(read_env_file(home / ".env").get("QB_REFRESH_TOKEN")) == LATEST
    assert seen.copy_origin("RTstandin-rotated-000002", "RTbefore-lineage-0001").origin == THIS_CHAIN


def test_a_refresh_that_does_not_rotate_writes_no_lineage(home: Path) -> None:
    write_env(home, "RTsame-token-0000002")
    TokenStore(home, intuit=StandInIntuit(rotate=False)).refresh()
    assert not (home / LINEAGE_NAME).exists() and not (home / KEY_NAME).exists()


def test_a_token_moved_in_from_the_environment_is_recorded_as_found(home: Path) -> None:
    (home / ".env").write_text("QB_CLIENT_ID=cid\nQB_CLIENT_SECRET=CSsecret-00000001\n")
    environ = {"QB_REFRESH_TOKEN": "RTenv-only-00000003"}
    TokenStore(home, intuit=StandInIntuit(rotate=False), environ=environ, command="sidequest connector").refresh()
    assert kinds_and_programs(home) == [(FOUND, "connector")]


def test_a_consent_starts_a_known_chain(home: Path) -> None:
    write_env(home, "RTold-chain-0000011")
    consent = TokenResponse("ATconsent-access-0012", "RTconsent-new-000012", 3600, 8726400, None, "tid", None)
    TokenStore(home, command="sidequest reauth-qb").save_consent(consent, realm_id="1", environment="sandbox")
    TokenStore(home, intuit=StandInIntuit(), command="sidequest doctor").refresh()
    assert kinds_and_programs(home) == [(CONSENT, "reauth-qb"), (ROTATION, "doctor")]
    seen = read_lineage(home)
    assert seen.copy_origin("RTstandin-rotated-000001", "RTconsent-new-000012").origin == THIS_CHAIN
    assert seen.copy_origin("RTstandin-rotated-000001", "RTold-chain-0000011").origin == OTHER_CONSENT


def test_a_rotation_saved_from_the_recovery_file_is_recorded_once_saved(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_env(home, "RTbefore-write-0008")
    intuit = StandInIntuit()
    real_update = saving_module.update_env_file

    def disk_full(path: Path, updates: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(saving_module, "update_env_file", disk_full)
    with pytest.raises(StoreError):
        TokenStore(home, intuit=intuit).refresh()
    assert not (home / LINEAGE_NAME).exists()  # not in .env: not saved, not recorded
    monkeypatch.setattr(saving_module, "update_env_file", real_update)
    TokenStore(home, intuit=intuit, command="sidequest connector").refresh()
    seen = read_lineage(home)
    assert [e.token[-4:] for e in seen.entries] == ["0008", "0001", "0002"]
    assert [e.kind for e in seen.entries] == [FOUND, ROTATION, ROTATION]
    assert seen.copy_origin("RTstandin-rotated-000002", "RTbefore-write-0008").origin == THIS_CHAIN


@pytest.mark.parametrize("key_length", [0, 1, 32, 64, 65, 200])
def test_the_keyed_hash_is_the_standard_librarys_hmac_sha256(key_length: int) -> None:
    import hashlib
    import hmac

    from doctor.store.lineage import DIGEST_CHARS, digest, hmac_sha256

    for data in (b"", b"RT1-39-H3-token", os.urandom(1000)):
        key = os.urandom(key_length)
        assert hmac_sha256(key, data) == hmac.digest(key, data, "sha256")
    key = os.urandom(32)
    token = "  RT1-39-H3-1785429816abc\u00e9  "
    expected = hmac.new(key, token.strip().encode("utf-8"), hashlib.sha256).hexdigest()[:DIGEST_CHARS]
    assert digest(key, token) == expected  # lineages written before keep their meaning


def test_looking_a_token_up_does_not_load_openssl() -> None:
    from tests.support.homes import modules_loaded

    looked_up = "from doctor.store.lineage import digest; digest(b'k' * 32, 'RT1-token')"
    assert modules_loaded(looked_up, ["hashlib", "_hashlib", "hmac", "ssl"]) == []


@pytest.mark.parametrize(
    "text",
    ["refresh-qb", "sidequest", "a", "9x", "_lead", "-lead", "Upper", "a" * 40, "a" * 41, "", "a b", "qb\n",
     "é", "ab.c", "x_y-z", "0" * 32, "0" * 31, "ABCDEF" + "0" * 26, "g" + "0" * 31, "0" * 64, "٣" * 32],
)  # fmt: skip
def test_the_shape_checks_accept_what_the_patterns_they_replace_accepted(text: str) -> None:
    import re

    from doctor.store import lineage

    assert lineage._is_program(text) == bool(re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", text))
    assert lineage._is_hex(text, 32) == bool(re.fullmatch(r"[0-9a-f]{32}", text))
    assert lineage._is_hex(text, 64) == bool(re.fullmatch(r"[0-9a-f]{64}", text))
