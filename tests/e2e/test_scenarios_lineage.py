"""End to end: Claude Desktop's copy of the token, judged by the chain's lineage (issue 13, DESIGN.md §9a).

Every world is built through the real CLI against the fake Intuit, as a user builds it: `reauth-qb`
(with the fake browser) makes a consent and pushes its token into Claude Desktop's entry,
`refresh-qb` rotates the chain, and `sidequest doctor` judges the result in all three formats. An
older copy of the same chain is healthy; a live token of a second consent (same app, same company)
is claude_config_out_of_sync; a chain older than its lineage cannot be told apart and says so.
No output may hold a token, the lineage key or a keyed hash.
"""

from __future__ import annotations

import json
import shlex
import stat
import sys
from pathlib import Path

from doctor.store.env_file import read_env_file
from doctor.store.lineage import CONSENT, FOUND, KEY_NAME, LINEAGE_NAME, MAX_ENTRIES, ROTATION, read_lineage, record
from tests.support.chain_support import assert_no_secret, doctor_all_formats, issued_secrets, probe, statuses
from tests.support.homes import CLIENT_ID, CLIENT_SECRET, REALM_ID, REPO, cli_env, configured_values, run_cli, write_env

FAKE_BROWSER = REPO / "tests" / "support" / "fake_browser.py"
FAKE_CONNECTOR = REPO / "tests" / "support" / "fake_connector.py"


def make_world(fake, tmp_path: Path) -> tuple[Path, Path]:
    """Sandbox keys and a company at the fake; a home with the app keys; Claude's entry starting the fake connector."""
    fake.add_app(CLIENT_ID, CLIENT_SECRET, "sandbox")
    fake.add_company(REALM_ID, "Larry's Bakery", "sandbox")
    fake.consent_realm = REALM_ID
    claude = tmp_path / "Claude" / "claude_desktop_config.json"
    claude.parent.mkdir()
    entry = {"command": sys.executable, "args": [str(FAKE_CONNECTOR), "healthy"], "env": {}}
    claude.write_text(json.dumps({"mcpServers": {"qb-distributor": entry}}, indent=2), encoding="utf-8")
    return new_home(tmp_path / "home"), claude


def new_home(home: Path) -> Path:
    values = configured_values()
    del values["QB_REFRESH_TOKEN"]
    write_env(home, values)
    return home


def cli(fake, home: Path, claude: Path, *args: str, **extra: str):
    browser = f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE_BROWSER))} %s"
    env = cli_env(home, claude, **fake.environ(), BROWSER=browser, **extra)
    return run_cli(*args, env=env, timeout=300, input="")


def reauth(fake, home: Path, claude: Path) -> str:
    result = cli(fake, home, claude, "reauth-qb", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    return env_token(home)


def refresh(fake, home: Path, claude: Path, times: int = 1) -> None:
    for _ in range(times):
        result = cli(fake, home, claude, "refresh-qb")
        assert result.returncode == 0, result.stderr


def env_token(home: Path) -> str:
    return read_env_file(home / ".env").get("QB_REFRESH_TOKEN")


def claude_token(claude: Path) -> str:
    return json.loads(claude.read_text(encoding="utf-8"))["mcpServers"]["qb-distributor"]["env"]["QB_REFRESH_TOKEN"]


def lineage_secrets(*homes: Path) -> tuple[str, ...]:
    """The lineage keys and every keyed hash: none may reach an output either."""
    found: list[str] = []
    for home in homes:
        if (home / KEY_NAME).exists():
            found.append((home / KEY_NAME).read_text(encoding="ascii").strip())
        found += [entry.digest for entry in read_lineage(home).entries]
    return tuple(found)


def doctor(fake, home: Path, claude: Path, *homes: Path):
    # The token copy is claude-config-sync's to judge; starting the connector as well (connector-launch,
    # tested on its own) would cost each of these runs over a second of CPU and prove nothing more here.
    return doctor_all_formats(
        home,
        fake,
        "--skip",
        "connector-launch",
        secrets=lineage_secrets(home, *homes),
        SIDEQUEST_CLAUDE_CONFIG=str(claude),
    )


def test_an_older_token_of_the_same_chain_in_claude_is_healthy(tmp_path: Path, fake_intuit) -> None:
    home, claude = make_world(fake_intuit, tmp_path)
    first = reauth(fake_intuit, home, claude)
    assert claude_token(claude) == first
    fake_intuit.rotation = "every_call"
    refresh(fake_intuit, home, claude, times=3)
    fake_intuit.rotation = "daily"  # the doctor's own refresh keeps the token: its three runs see one world
    assert env_token(home) != first == claude_token(claude)

    doc, text, prompt = doctor(fake_intuit, home, claude)

    assert doc["diagnosis"]["cause"] == "healthy" and doc["exit_code"] == 0
    sync = probe(doc, "claude-config-sync")
    assert sync["status"] == "ok", sync["summary"]
    assert sync["facts"]["token_copy"] == "different" and sync["facts"]["token_copy_origin"] == "this_chain"
    assert sync["facts"]["lineage_start"] == "consent"
    assert any("older copy" in detail for detail in sync["details"])
    assert "older copy" in prompt  # the text output shows an ok probe without its details
    # Support's rotation history: the consent, then three rotations, .env holding the newest.
    history = probe(doc, "token-age")["facts"]["rotation_history"]
    assert [(e["kind"], e["program"]) for e in history["recent"]] == [("consent", "reauth-qb")] + [
        ("rotation", "refresh-qb")
    ] * 3
    assert history["env_token"] == "latest" and history["chain_start"]["kind"] == "consent"
    assert history["chain_rotations"] == 3
    assert history["recent"][-1]["token"] == f"RT…{env_token(home)[-4:]}"
    assert len({e["pid"] for e in history["recent"]}) == 4  # four processes, each named by its pid


def test_a_live_token_of_a_second_consent_in_claude_is_out_of_sync(tmp_path: Path, fake_intuit) -> None:
    home, claude = make_world(fake_intuit, tmp_path)
    reauth(fake_intuit, home, claude)
    fake_intuit.rotation = "every_call"
    refresh(fake_intuit, home, claude, times=2)
    # A second consent for the same app and company (another SideQuest home) pushes its own token into
    # the same Claude Desktop entry; both chains stay live at Intuit.
    other_home = new_home(tmp_path / "other-home")
    second = reauth(fake_intuit, other_home, claude)
    fake_intuit.rotation = "daily"
    assert claude_token(claude) == second != env_token(home)

    doc, text, prompt = doctor(fake_intuit, home, claude, other_home)

    assert doc["diagnosis"]["cause"] == "claude_config_out_of_sync" and doc["exit_code"] == 1
    sync = probe(doc, "claude-config-sync")
    assert sync["status"] == "fail" and sync["facts"]["token_copy_origin"] == "other_consent"
    assert sync["facts"]["differing_keys"] == []  # same company, same environment: only the lineage can tell
    assert "another connection" in sync["summary"]
    assert sync["remediation"]["commands"] == ["sidequest doctor --fix"]
    assert statuses(doc)["refresh-chain"] == "ok"  # .env's own chain is fine
    for output in (text, prompt):
        assert "another connection" in output and "sidequest doctor --fix" in output
    assert "claude_config_out_of_sync" in prompt

    # The fix the finding names pushes .env's token into Claude's entry, after which all is well.
    fixed = cli(fake_intuit, home, claude, "doctor", "--offline", "--fix", "--yes", "--format", "json")
    assert claude_token(claude) == env_token(home), fixed.stderr
    after = cli(fake_intuit, home, claude, "doctor", "--offline", "--format", "json")
    assert probe(after.json(), "claude-config-sync")["facts"]["token_copy"] == "same"
    assert_no_secret(fixed.stdout + fixed.stderr + after.stdout, issued_secrets(fake_intuit, *lineage_secrets(home)))


def test_a_chain_older_than_its_lineage_cannot_be_told_apart_and_says_so(tmp_path: Path, fake_intuit) -> None:
    # The upgrade: .env's chain was made before SideQuest kept a lineage, and Claude holds a token
    # SideQuest never saw: an older copy of that chain, or another consent's. Nobody can tell.
    home, claude = make_world(fake_intuit, tmp_path)
    write_env(home, configured_values(QB_REFRESH_TOKEN=fake_intuit.mint_chain(CLIENT_ID, REALM_ID)))
    config = json.loads(claude.read_text(encoding="utf-8"))
    config["mcpServers"]["qb-distributor"]["env"] = {
        "QB_REFRESH_TOKEN": fake_intuit.mint_chain(CLIENT_ID, REALM_ID),
        "QB_REALM_ID": REALM_ID,
        "QB_ENVIRONMENT": "sandbox",
    }
    claude.write_text(json.dumps(config), encoding="utf-8")
    fake_intuit.rotation = "every_call"
    refresh(fake_intuit, home, claude)  # the lineage begins: the token found in .env, then its rotation
    fake_intuit.rotation = "daily"

    doc, text, _prompt = doctor(fake_intuit, home, claude)

    assert doc["diagnosis"]["cause"] == "healthy" and doc["exit_code"] == 0
    sync = probe(doc, "claude-config-sync")
    assert sync["status"] == "warn" and sync["facts"]["token_copy_origin"] == "unknown"
    assert sync["facts"]["lineage_start"] == "found"
    assert "older copy" in sync["summary"] and "another connection" in sync["summary"]
    assert sync["remediation"]["commands"] == ["sidequest doctor --fix"]
    assert "sidequest doctor --fix" in text
    history = probe(doc, "token-age")["facts"]["rotation_history"]
    assert [e["kind"] for e in history["recent"]] == ["found", "rotation"]


def test_the_key_is_0600_and_the_lineage_stays_bounded(tmp_path: Path, fake_intuit) -> None:
    home, claude = make_world(fake_intuit, tmp_path)
    reauth(fake_intuit, home, claude)
    assert stat.S_IMODE((home / KEY_NAME).stat().st_mode) == 0o600
    assert stat.S_IMODE((home / LINEAGE_NAME).stat().st_mode) == 0o600
    # A lineage already full (years of consents of other chains), then one rotation through the CLI.
    for n in range(MAX_ENTRIES):
        record(home, f"RT1-39-H3-1780000000filler{n:05d}", CONSENT, program="connector")
    fake_intuit.rotation = "every_call"
    refresh(fake_intuit, home, claude)
    seen = read_lineage(home)
    assert len(seen.entries) == MAX_ENTRIES
    # .env's consent entry was dropped, so its token comes back as found, then the rotation.
    assert [(e.kind, e.program) for e in seen.entries[-2:]] == [(FOUND, "refresh-qb"), (ROTATION, "refresh-qb")]
    assert seen.entries[-1].token == f"RT…{env_token(home)[-4:]}"
    assert (home / LINEAGE_NAME).stat().st_size < 100 * 1024
    assert stat.S_IMODE((home / KEY_NAME).stat().st_mode) == 0o600


def test_support_sees_a_lost_rotation_offline(tmp_path: Path, fake_intuit) -> None:
    # .env set back to an older token of the chain (a restored backup): the newest token SideQuest saved is
    # gone from it. The offline doctor's token-age facts say so, redacted, with who saved what and when.
    home, claude = make_world(fake_intuit, tmp_path)
    first = reauth(fake_intuit, home, claude)
    fake_intuit.rotation = "every_call"
    refresh(fake_intuit, home, claude, times=2)
    write_env(home, {**read_env_file(home / ".env").values, "QB_REFRESH_TOKEN": first})
    result = cli(fake_intuit, home, claude, "doctor", "--offline", "--format", "json")
    history = probe(result.json(), "token-age")["facts"]["rotation_history"]
    assert history["env_token"] == "older" and history["chain_rotations"] == 0
    assert [e["kind"] for e in history["recent"]] == ["consent", "rotation", "rotation"]
    assert_no_secret(result.stdout + result.stderr, issued_secrets(fake_intuit, *lineage_secrets(home)))
