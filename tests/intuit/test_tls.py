"""Certificates (issue 9 §6): a refused certificate is named as one, and a broken SSL_CERT_FILE is explained.

A self-signed HTTPS fake Intuit on 127.0.0.1 plays a TLS-inspecting proxy: without its
certificate in SSL_CERT_FILE the client must refuse it (verification is never off) and say it
is a certificate problem, not "check the internet connection"; with it, the same call works.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from doctor.intuit.client import IntuitClient
from doctor.intuit.errors import HEADLINES, IntuitError
from tests.support.fake_intuit import FakeIntuit
from tests.support.homes import CLIENT_ID, CLIENT_SECRET, REALM_ID, cli_env, configured_values, run_cli, write_env


@pytest.fixture
def https_fake(certificate: tuple[Path, Path]):
    with FakeIntuit(tls=certificate) as fake:
        fake.add_app(CLIENT_ID, CLIENT_SECRET, "sandbox")
        fake.add_company(REALM_ID, "Larry's Bakery", "sandbox")
        yield fake


def test_an_untrusted_certificate_is_named_as_a_certificate_problem(
    https_fake: FakeIntuit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    token = https_fake.mint_chain(CLIENT_ID, REALM_ID)
    assert https_fake.url.startswith("https://127.0.0.1:")
    with IntuitClient(environ=https_fake.environ(), timeout=5.0) as client:
        with pytest.raises(IntuitError) as info:
            client.refresh(CLIENT_ID, CLIENT_SECRET, token)
    err = info.value
    assert err.kind == "certificate" and not err.retryable
    assert "certificate problem" in str(err) and "internet connection" in str(err)  # "... not the internet connection"
    assert err.detail and "self" in err.detail.lower()  # OpenSSL's reason: "self-signed certificate"
    assert https_fake.refresh_count == 0  # nothing reached the server's token endpoint


def test_the_same_certificate_trusted_through_ssl_cert_file_works(
    https_fake: FakeIntuit, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    token = https_fake.mint_chain(CLIENT_ID, REALM_ID)
    with IntuitClient(environ=https_fake.environ(), timeout=5.0) as client:
        answer = client.refresh(CLIENT_ID, CLIENT_SECRET, token)
    assert answer.access_token


def test_refresh_qb_names_the_certificate_problem(https_fake: FakeIntuit, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_env(home, configured_values(QB_REFRESH_TOKEN=https_fake.mint_chain(CLIENT_ID, REALM_ID)))
    env = cli_env(home, **https_fake.environ())
    env.pop("SSL_CERT_FILE", None)
    env.pop("SSL_CERT_DIR", None)
    result = run_cli("refresh-qb", env=env)
    assert result.returncode == 1, result.stderr
    assert HEADLINES["certificate"] in result.stderr
    assert "Check the internet connection" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("setting", ["missing", "folder", "not_pem"])
def test_refresh_qb_explains_a_broken_ssl_cert_file(fake_intuit: FakeIntuit, tmp_path: Path, setting: str) -> None:
    fake_intuit.add_app(CLIENT_ID, CLIENT_SECRET, "sandbox")
    fake_intuit.add_company(REALM_ID, "Larry's Bakery", "sandbox")
    home = tmp_path / "home"
    write_env(home, configured_values(QB_REFRESH_TOKEN=fake_intuit.mint_chain(CLIENT_ID, REALM_ID)))
    before = (home / ".env").read_bytes()
    target = {"missing": tmp_path / "no-such-roots.pem", "folder": tmp_path, "not_pem": tmp_path / "roots.pem"}[setting]
    if setting == "not_pem":
        target.write_text("this is not a certificate\n")
    result = run_cli("refresh-qb", env=cli_env(home, **fake_intuit.environ(), SSL_CERT_FILE=str(target)))
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "internal error" not in result.stderr.lower() and "Traceback" not in result.stderr
    assert f"SSL_CERT_FILE names {target}, which" in result.stderr
    expected = {"missing": "does not exist", "folder": "is not a file", "not_pem": "cannot be used"}[setting]
    assert expected in result.stderr
    assert (home / ".env").read_bytes() == before
    assert fake_intuit.refresh_count == 0


def test_the_deadline_also_ends_a_dripping_answer_over_tls(
    https_fake: FakeIntuit, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over https the blocked read sits in the TLS socket that start_tls made; the watchdog must reach that one."""
    import threading
    import time

    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    token = https_fake.mint_chain(CLIENT_ID, REALM_ID)
    https_fake.fail_mode = "drip_headers"
    https_fake.drip_seconds = 0.1
    box: list[BaseException] = []
    with IntuitClient(environ=https_fake.environ(), timeout=5.0, connect_timeout=5.0) as client:

        def call() -> None:
            try:
                client.refresh(CLIENT_ID, CLIENT_SECRET, token, deadline=time.monotonic() + 1.0)
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                box.append(exc)

        worker = threading.Thread(target=call, daemon=True)
        worker.start()
        worker.join(20)
        assert not worker.is_alive(), "the TLS read was not interrupted at the deadline"
    assert isinstance(box[0], IntuitError) and box[0].kind == "timeout", box
