"""The redactor: every secret hidden in every encoding, and output refused when one slips through."""

from __future__ import annotations

import base64
import json
import textwrap
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from doctor.redaction import Redactor, SecretLeak, redacted_form
from tests.framework.test_plugins import install_plugin
from tests.support.homes import CLIENT_ID, CLIENT_SECRET, cli_env, configured_values, run_cli

REFRESH = configured_values()["QB_REFRESH_TOKEN"]


def redactor() -> Redactor:
    return Redactor([("client_secret", CLIENT_SECRET), ("refresh_token", REFRESH)], client_id=CLIENT_ID)


def test_redacted_forms_follow_the_contract() -> None:
    assert redacted_form("refresh_token", REFRESH) == "RT…" + REFRESH[-4:]
    assert redacted_form("access_token", "eyJhbGciOiJkaXIi0123456789").startswith("AT…")
    assert redacted_form("client_secret", CLIENT_SECRET) == "CS…"
    assert redacted_form("auth_code", "AB11700000000abcdefghijk") == "AC…"


@pytest.mark.parametrize(
    "encode",
    [lambda s: s, lambda s: quote(s, safe=""), quote_plus, lambda s: json.dumps(s)[1:-1]],
    ids=["plain", "url", "url-plus", "json"],
)
def test_redact_replaces_each_encoding(encode) -> None:
    secret = CLIENT_SECRET + '/+ "x'
    r = Redactor([("client_secret", secret)])
    text = f"before {encode(secret)} after"
    out = r.redact_text(text)
    assert out == "before CS… after"
    assert r.leaks(out) == []


def test_redact_walks_nested_data_and_keys() -> None:
    data = {"facts": {REFRESH: [f"token={REFRESH}", 3, None]}, "summary": CLIENT_SECRET}
    out = redactor().redact(data)
    dumped = json.dumps(out, ensure_ascii=False)
    assert REFRESH not in dumped and CLIENT_SECRET not in dumped
    assert "RT…" + REFRESH[-4:] in dumped


@pytest.mark.parametrize(
    "leak",
    [
        lambda: CLIENT_SECRET,
        lambda: quote(CLIENT_SECRET, safe=""),
        lambda: json.dumps(REFRESH)[1:-1],
        lambda: "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode(),
        lambda: base64.b64encode(REFRESH.encode()).decode(),
    ],
    ids=["plain", "url", "json", "basic-header", "base64"],
)
def test_canary_refuses_output_that_still_holds_a_secret(leak) -> None:
    with pytest.raises(SecretLeak) as caught:
        redactor().check(f"header: {leak()}")
    assert CLIENT_SECRET not in str(caught.value) and REFRESH not in str(caught.value)


def test_short_values_are_not_treated_as_secrets() -> None:
    r = Redactor([("client_secret", "abc"), ("refresh_token", "")])
    assert r.redact_text("abc abc") == "abc abc"


LEAKY_PLUGIN = textwrap.dedent(
    """
    import base64
    from doctor import hookimpl
    from doctor.model import Finding, Probe

    def leak(ctx):
        basic = base64.b64encode(f"{ctx.env('QB_CLIENT_ID')}:{ctx.env('QB_CLIENT_SECRET')}".encode()).decode()
        return Finding("ok", "sent Authorization: Basic " + basic)

    def mention(ctx):
        return Finding("ok", "secret is " + ctx.env("QB_CLIENT_SECRET"), details=[ctx.env("QB_REFRESH_TOKEN")],
                       facts={"raw": ctx.env("QB_CLIENT_SECRET")})

    @hookimpl
    def sidequest_probes():
        import os
        probes = [Probe(id="mention", title="Mention", run=mention)]
        if os.environ.get("LEAK_BASIC"):
            probes.append(Probe(id="leak", title="Leak", run=leak))
        return probes
    """
)


def test_a_probe_mentioning_secrets_is_redacted_in_every_format(home: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_plugin(site, "leaky", "sidequest_leaky", LEAKY_PLUGIN)
    env = cli_env(home, PYTHONPATH=str(site))
    for fmt in ("text", "prompt", "json"):
        result = run_cli("doctor", "--offline", "--format", fmt, env=env)
        assert result.returncode == 0, result.stderr
        assert CLIENT_SECRET not in result.stdout and REFRESH not in result.stdout
        assert "CS…" in result.stdout
    doc = run_cli("doctor", "--offline", "--format", "json", env=env).json()
    assert doc["redaction"]["canary_passed"] is True
    assert "RT…" + REFRESH[-4:] in doc["redaction"]["redacted"]


def test_a_basic_header_in_output_is_refused_with_exit_3(home: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_plugin(site, "leaky", "sidequest_leaky", LEAKY_PLUGIN)
    env = cli_env(home, PYTHONPATH=str(site), LEAK_BASIC="1")
    for fmt in ("text", "json"):
        result = run_cli("doctor", "--offline", "--format", fmt, env=env)
        assert result.returncode == 3
        assert result.stdout == ""
        assert "refusing to print" in result.stderr
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        assert basic not in result.stderr and CLIENT_SECRET not in result.stderr
        assert "Traceback" not in result.stderr


def _percent_all(text: str, case: str) -> str:
    hexes = [f"{b:02X}" for b in text.encode()]
    if case == "lower":
        hexes = [h.lower() for h in hexes]
    elif case == "mixed":
        hexes = [h.lower() if i % 2 else h for i, h in enumerate(hexes)]
    return "".join("%" + h for h in hexes)


@pytest.mark.parametrize("case", ["upper", "lower", "mixed"])
def test_fully_percent_encoded_secrets_are_redacted_and_caught(case: str) -> None:
    # Every byte encoded, letters and digits too: quote() leaves those alone, so this form was unknown.
    for kind, secret, shown in (("client_secret", CLIENT_SECRET, "CS…"), ("refresh_token", REFRESH, "RT…")):
        encoded = _percent_all(secret, case)
        text = f"error_description=Bad token {encoded} end"
        out = redactor().redact_text(text)
        assert encoded not in out and shown in out
        assert redactor().leaks(out) == []
        with pytest.raises(SecretLeak):
            redactor().check(text)
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    with pytest.raises(SecretLeak):
        redactor().check("Authorization: Basic " + _percent_all(basic, case))


@pytest.mark.parametrize("which, case", [("refresh_token", "upper"), ("client_secret", "lower")])
def test_a_percent_encoded_secret_in_intuit_error_description_is_never_printed(
    tmp_path: Path, fake_intuit, which: str, case: str
) -> None:
    from tests.support.chain_support import sandbox_world, write_chain_env

    token = sandbox_world(fake_intuit)
    home = tmp_path / "home"
    write_chain_env(home, token)
    secret, shown = (token, "RT…" + token[-4:]) if which == "refresh_token" else (CLIENT_SECRET, "CS…")
    # One secret per answer: Intuit's detail is cut at 200 characters, and a cut form is not the secret.
    body = json.dumps({"error": "invalid_grant", "error_description": f"Bad {_percent_all(secret, case)}"}).encode()
    fake_intuit._token_endpoint = lambda authorization, form, want_hard: (400, body)
    env = cli_env(home, **fake_intuit.environ())
    refreshed = run_cli("refresh-qb", env=env)
    assert refreshed.returncode == 1 and "Refresh failed" in refreshed.stderr
    # The Intuit client scrubs known secrets from Intuit's words ("…"); the console would show the redacted form.
    assert f"Bad {shown}" in refreshed.stderr or "Bad …" in refreshed.stderr
    for result in (refreshed, run_cli("doctor", "--format", "json", env=env)):
        text = (result.stdout + result.stderr).lower()
        assert _percent_all(secret, "lower") not in text and secret.lower() not in text
        assert "traceback" not in text
