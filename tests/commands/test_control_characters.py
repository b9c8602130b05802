"""No control character from outside reaches a terminal or Claude (issue 9 §4), for every command.

Each source of foreign text is made hostile with ESC, BEL, BS, a CSI sequence (7-bit and the
8-bit C1 form) and an OSC 52 sequence (which asks the terminal to write the clipboard). The real
CLI runs in a subprocess; its output may show those bytes only escaped (`\\x1b`), and the JSON
report only as JSON escapes (`\\u001b`), which keep the value.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import tests.support.fake_intuit as fake_intuit_module
from doctor.console import Console, Styled, escape_controls, escape_controls_json
from tests.commands.test_reauth import World, make_world, run_reauth
from tests.support.chain_support import sandbox_world, write_chain_env
from tests.support.homes import REALM_ID, cli_env, run_cli
from tests.support.local_support import (
    connector_entry,
    dead_pid,
    fresh_values,
    synced_env,
    write_claude_config,
    write_owner_record,
)
from tests.support.schema_check import assert_valid_report

HOSTILE = "A\x1b[2J\x1b]52;c;ZXZpbA==\x07B\x08\x9b31mC\r"
SHOWN = "\\x1b[2J\\x1b]52;c;ZXZpbA==\\x07B\\x08\\x9b31mC\\x0d"  # as a person sees it
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def assert_escaped(text: str, *, seen: str = "\\x1b]52;c;ZXZpbA==\\x07") -> None:
    found = RAW_CONTROL.search(text)
    assert found is None, f"raw control character {found.group()!r} in: {text[max(0, found.start() - 60) :][:120]!r}"
    assert seen in text, "the hostile text did not reach the output at all, so this test proves nothing"


def strings(data) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for key, value in data.items() for s in strings(key) + strings(value)]
    if isinstance(data, list):
        return [s for value in data for s in strings(value)]
    return []


def assert_json_escaped(stdout: str) -> dict:
    found = RAW_CONTROL.search(stdout)
    assert found is None, f"raw control character {found.group()!r} in the JSON text"
    assert "\\u001b]52;c;ZXZpbA==\\u0007" in stdout and "\\u009b" in stdout
    doc = json.loads(stdout)
    assert_valid_report(doc)
    assert any("\x1b]52;c;ZXZpbA==\x07" in text for text in strings(doc))  # the value itself is kept
    return doc


def all_formats(env: dict[str, str], *args: str, shown_in: tuple[str, ...] = ("text", "prompt", "json")) -> None:
    for fmt in ("text", "prompt", "json"):
        result = run_cli("doctor", "--format", fmt, *args, env=env)
        assert result.returncode in (0, 1), result.stderr
        if fmt not in shown_in:
            assert RAW_CONTROL.search(result.stdout) is None
        elif fmt == "json":
            assert_json_escaped(result.stdout)
        else:
            assert_escaped(result.stdout)
        assert RAW_CONTROL.search(result.stderr) is None


# -- local sources: lock owner records, Claude config server names and env values -----------------


def test_lock_owner_record(tmp_path: Path) -> None:
    home = tmp_path / "home"
    values = fresh_values()
    from tests.support.homes import write_env

    write_env(home, values)
    write_owner_record(home, dead_pid(), command="sidequest " + HOSTILE)
    env = cli_env(home)
    all_formats(env, "--offline")
    fix = run_cli("doctor", "--offline", "--fix", "--dry-run", env=env)
    assert "Would fix lock-health" in fix.stderr
    assert_escaped(fix.stderr)


@pytest.mark.parametrize("where", ["server_name", "env_values"])
def test_claude_config(tmp_path: Path, where: str) -> None:
    from tests.support.homes import write_env

    home = tmp_path / "home"
    values = fresh_values()
    write_env(home, values)
    config = tmp_path / "Claude" / "claude_desktop_config.json"
    if where == "server_name":
        # Found by its env block, so the report names the entry by its (hostile) name.
        servers = {f"books {HOSTILE}": connector_entry({"QB_REALM_ID": values["QB_REALM_ID"], "QB_ENVIRONMENT": "x"})}
    else:
        servers = {"qb-distributor": connector_entry(synced_env(values) | {"QB_ENVIRONMENT": HOSTILE})}
    write_claude_config(config, {"mcpServers": servers})
    env = cli_env(home, config)
    # The entry's name is among the facts, which the prompt leaves out.
    all_formats(env, "--offline", "--verbose", **({"shown_in": ("text", "json")} if where == "server_name" else {}))
    fix = run_cli("doctor", "--offline", "--fix", "--dry-run", env=env)
    assert "Would fix claude-config-sync" in fix.stderr
    assert RAW_CONTROL.search(fix.stderr) is None


# -- Intuit: the company name, error_description and an HTML title ------------------------------


def test_company_name_in_the_live_doctor(tmp_path: Path, fake_intuit) -> None:
    token = sandbox_world(fake_intuit)
    fake_intuit.add_company(REALM_ID, HOSTILE, "sandbox")
    home = tmp_path / "home"
    write_chain_env(home, token)
    all_formats(cli_env(home, **fake_intuit.environ()))


@pytest.fixture
def reauth_world(tmp_path: Path, fake_intuit) -> World:
    return make_world(tmp_path, fake_intuit)


def test_company_name_in_reauth(reauth_world: World) -> None:
    reauth_world.fake.add_company(REALM_ID, HOSTILE, "sandbox")
    result = run_reauth(reauth_world.env(), "--timeout", "30")
    assert result.returncode == 0, result.stderr
    assert_escaped(result.stdout)
    assert RAW_CONTROL.search(result.stderr) is None


def hostile_token_errors(fake) -> None:
    body = json.dumps({"error": "invalid_grant", "error_description": f"Token is bad {HOSTILE}"}).encode()
    fake._token_endpoint = lambda authorization, form, want_hard: (400, body)


def test_error_description_in_refresh_qb_and_the_doctor(tmp_path: Path, fake_intuit) -> None:
    token = sandbox_world(fake_intuit)
    home = tmp_path / "home"
    write_chain_env(home, token)
    hostile_token_errors(fake_intuit)
    env = cli_env(home, **fake_intuit.environ())
    result = run_cli("refresh-qb", env=env)
    assert result.returncode == 1
    assert_escaped(result.stderr)
    all_formats(env)


def test_error_description_in_reauth(reauth_world: World) -> None:
    hostile_token_errors(reauth_world.fake)
    result = run_reauth(reauth_world.env(), "--timeout", "30")
    assert result.returncode == 1
    assert "Could not finish connecting QuickBooks" in result.stderr
    assert_escaped(result.stderr)
    assert RAW_CONTROL.search(result.stdout) is None


def test_html_title_in_refresh_qb_and_the_doctor(tmp_path: Path, fake_intuit, monkeypatch) -> None:
    token = sandbox_world(fake_intuit)
    home = tmp_path / "home"
    write_chain_env(home, token)
    page = f"<!DOCTYPE html>\n<html><head><title>Bad Gateway {HOSTILE}</title></head><body></body></html>\n"
    monkeypatch.setattr(fake_intuit_module, "_HTML_502", page.encode("utf-8"))
    fake_intuit.fail_mode = "html_502"
    env = cli_env(home, **fake_intuit.environ())
    result = run_cli("refresh-qb", env=env)
    assert result.returncode == 1
    assert_escaped(result.stderr)
    all_formats(env)


# -- the console itself ------------------------------------------------------------------------


def test_escaping_keeps_newlines_and_tabs_and_shows_the_rest() -> None:
    assert escape_controls("a\tb\nc\x1b[31md\x9b\x7f\r") == "a\tb\nc\\x1b[31md\\x9b\\x7f\\x0d"
    assert json.loads(escape_controls_json(json.dumps({"k": "x\x9by"}, ensure_ascii=False))) == {"k": "x\x9by"}


def test_only_the_console_adds_colour_and_it_escapes_the_styled_text(capsys) -> None:
    console = Console()
    console.write(Styled().add("ok", "green").add(" \x1b[8mhidden\n"), colour=True)
    assert capsys.readouterr().out == "\x1b[32mok\x1b[0m \\x1b[8mhidden\n"
    console.write(Styled().add("ok", "green").add("\n"), colour=False)
    assert capsys.readouterr().out == "ok\n"


def test_a_newline_in_a_value_cannot_forge_a_probe_line(tmp_path: Path) -> None:
    from tests.support.homes import write_env

    home = tmp_path / "home"
    write_env(home, fresh_values())
    write_owner_record(home, dead_pid(), command="sidequest\n  ✓  forged-probe       Everything is fine.")
    result = run_cli("doctor", "--offline", env=cli_env(home))
    assert "forged-probe" in result.stdout
    assert not any(line.startswith("  ✓  forged-probe") for line in result.stdout.splitlines())
