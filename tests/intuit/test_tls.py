"""Certificates (issue 9 §6): a refused certificate is named as one, and a broken SSL_CERT_FILE is explained.

A self-signed HTTPS fake Intuit on 127.0.0.1 plays a TLS-inspecting proxy: without its
certificate in SSL_CERT_FILE the client must refuse it (verification is never off) and say it
is a certificate problem, not "check the internet connection"; with it, the same call works.
"""

from __future__ import annotations

import sys
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


# ----------------------------------------------------------------------------- the system's trust store (issue 13)


@pytest.fixture
def fresh_contexts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test builds its own verifying context (the process keeps one per setting)."""
    from doctor.intuit import client

    monkeypatch.setattr(client, "_ssl_contexts", {})
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def _system_store(monkeypatch: pytest.MonkeyPatch, cafile: Path | None = None, capath: Path | None = None) -> None:
    """Make `cafile` (a bundle) or `capath` (a hashed folder) the system's trust store, as OpenSSL's
    compiled-in defaults name it on Linux."""
    import ssl

    nowhere = str(Path(cafile or capath or ".").parent / "no-such-place")
    real = ssl.get_default_verify_paths()
    fake = real._replace(openssl_cafile=str(cafile or nowhere), openssl_capath=str(capath or nowhere))
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: fake)


def _hashed_folder(certificate: Path, folder: Path) -> Path:
    """A c_rehash-style folder holding `certificate` under its subject hash (needs the openssl command)."""
    import shutil
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to name a certificate by its subject hash")
    digest = subprocess.run(
        [openssl, "x509", "-hash", "-noout", "-in", str(certificate)], capture_output=True, text=True, check=True
    ).stdout.strip()
    folder.mkdir()
    shutil.copy(certificate, folder / f"{digest}.0")
    return folder


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="Linux reads the system store from OpenSSL's paths")
@pytest.mark.parametrize("form", ["bundle", "hashed_folder"])
def test_a_root_installed_in_the_system_store_is_trusted_without_ssl_cert_file(
    https_fake: FakeIntuit,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    fresh_contexts: None,
    tmp_path: Path,
    form: str,
) -> None:
    """A company root installed in the system (update-ca-certificates) works as in the browser: no setting needed."""
    if form == "bundle":
        _system_store(monkeypatch, cafile=certificate[0])
    else:
        _system_store(monkeypatch, capath=_hashed_folder(certificate[0], tmp_path / "certs"))
    token = https_fake.mint_chain(CLIENT_ID, REALM_ID)
    with IntuitClient(environ=https_fake.environ(), timeout=5.0) as client:
        assert client.refresh(CLIENT_ID, CLIENT_SECRET, token).access_token


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="Linux reads the system store from OpenSSL's paths")
def test_ssl_cert_file_adds_to_the_system_roots_instead_of_replacing_them(
    https_fake: FakeIntuit,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    fresh_contexts: None,
    tmp_path: Path,
) -> None:
    """The server's root is in the system store; SSL_CERT_FILE names another (a company root): both are trusted."""
    import ssl

    from doctor.intuit.client import _ssl_context
    from tests.support.fake_intuit import self_signed_certificate

    other = self_signed_certificate(tmp_path / "company")
    assert other is not None
    _system_store(monkeypatch, cafile=certificate[0])
    monkeypatch.setenv("SSL_CERT_FILE", str(other[0]))
    token = https_fake.mint_chain(CLIENT_ID, REALM_ID)
    with IntuitClient(environ=https_fake.environ(), timeout=5.0) as client:
        assert client.refresh(CLIENT_ID, CLIENT_SECRET, token).access_token
    context = _ssl_context()
    assert len(context.get_ca_certs()) == 2  # the system's root and SSL_CERT_FILE's
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert _ssl_context() is context  # built once per setting, shared by every client


def test_verification_is_on_whatever_the_store(fresh_contexts: None) -> None:
    import ssl

    from doctor.intuit.client import system_ssl_context

    context = system_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_the_refused_certificate_names_its_issuer_without_any_request(
    https_fake: FakeIntuit, fresh_contexts: None
) -> None:
    token = https_fake.mint_chain(CLIENT_ID, REALM_ID)
    with IntuitClient(environ=https_fake.environ(), timeout=5.0) as client:
        with pytest.raises(IntuitError) as info:
            client.refresh(CLIENT_ID, CLIENT_SECRET, token)
    assert info.value.kind == "certificate"
    assert info.value.issuer == "Fake Intuit Test Root"
    assert "issued by “Fake Intuit Test Root”" in str(info.value)
    # The bare handshake that read the certificate sent nothing: the fake saw no HTTP request at all.
    assert https_fake.requests == [] and https_fake.refresh_count == 0


def test_the_issuer_is_read_from_the_certificate(certificate: tuple[Path, Path]) -> None:
    import ssl

    from doctor.intuit.client import certificate_issuer_name

    der = ssl.PEM_cert_to_DER_cert(certificate[0].read_text())
    assert certificate_issuer_name(der) == "Fake Intuit Test Root"
    with pytest.raises(ValueError):
        certificate_issuer_name(der[:40])


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content


def _name(*attributes: tuple[bytes, int, bytes]) -> bytes:
    return _der(
        0x30, b"".join(_der(0x31, _der(0x30, _der(0x06, oid) + _der(tag, value))) for oid, tag, value in attributes)
    )


def test_an_issuer_without_a_common_name_is_named_by_its_organization() -> None:
    from doctor.intuit.client import certificate_issuer_name

    organization = (b"\x55\x04\x0a", 0x0C, "Zscaler Inc. – Zürich".encode())
    country = (b"\x55\x04\x06", 0x13, b"US")
    algorithm = _der(0x30, _der(0x06, b"\x2a\x86\x48\xce\x3d\x04\x03\x02"))
    tbs = _der(0xA0, _der(0x02, b"\x02")) + _der(0x02, b"\x01\x02") + algorithm + _name(country, organization)
    certificate = _der(0x30, _der(0x30, tbs) + algorithm + _der(0x03, b"\x00"))
    assert certificate_issuer_name(certificate) == "Zscaler Inc. – Zürich"
    # Version 1 certificates have no [0] version; a BMPString name is UTF-16.
    common = (b"\x55\x04\x03", 0x1E, "Netskope Root".encode("utf-16-be"))
    tbs = _der(0x02, b"\x01") + algorithm + _name(common, organization)
    assert certificate_issuer_name(_der(0x30, _der(0x30, tbs))) == "Netskope Root"


# ----------------------------------------------------------------------------- HTTPS_PROXY / NO_PROXY


class _ConnectProxy:
    """A plain-http CONNECT proxy on 127.0.0.1 that tunnels bytes and records each tunnel's target and auth."""

    def __init__(self) -> None:
        import socket
        import threading

        self.tunnels: list[tuple[str, str | None]] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._server.close()

    def _accept(self) -> None:
        import threading

        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(conn,), daemon=True).start()

    def _tunnel(self, conn) -> None:
        import socket
        import threading

        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            target = lines[0].split()[1]
            auth = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in lines[1:]
                    if line.lower().startswith("proxy-authorization:")
                ),
                None,
            )
            self.tunnels.append((target, auth))
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=10) as upstream:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

                def pump(source, sink) -> None:
                    try:
                        while data := source.recv(65536):
                            sink.sendall(data)
                    except OSError:
                        pass
                    finally:
                        try:
                            sink.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass

                back = threading.Thread(target=pump, args=(upstream, conn), daemon=True)
                back.start()
                pump(conn, upstream)
                back.join(10)


@pytest.fixture
def connect_proxy():
    proxy = _ConnectProxy()
    yield proxy
    proxy.close()


def test_https_proxy_is_honoured_and_no_proxy_exempts(
    https_fake: FakeIntuit,
    certificate: tuple[Path, Path],
    connect_proxy: _ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
    fresh_contexts: None,
) -> None:
    import base64

    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    monkeypatch.setenv("HTTPS_PROXY", f"http://alice:s3cret@127.0.0.1:{connect_proxy.port}")
    port = https_fake.url.rsplit(":", 1)[1]
    with IntuitClient(environ=https_fake.environ(), timeout=5.0) as client:
        assert client.refresh(CLIENT_ID, CLIENT_SECRET, https_fake.mint_chain(CLIENT_ID, REALM_ID)).access_token
    assert connect_proxy.tunnels == [(f"127.0.0.1:{port}", "Basic " + base64.b64encode(b"alice:s3cret").decode())]

    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    with IntuitClient(environ=https_fake.environ(), timeout=5.0) as client:
        assert client.refresh(CLIENT_ID, CLIENT_SECRET, https_fake.mint_chain(CLIENT_ID, REALM_ID)).access_token
    assert len(connect_proxy.tunnels) == 1  # the second call went straight to the server


def test_the_issuer_is_read_through_the_same_proxy(
    https_fake: FakeIntuit, connect_proxy: _ConnectProxy, monkeypatch: pytest.MonkeyPatch, fresh_contexts: None
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"127.0.0.1:{connect_proxy.port}")  # no scheme: http:// is meant
    with IntuitClient(environ=https_fake.environ(), timeout=5.0) as client:
        with pytest.raises(IntuitError) as info:
            client.refresh(CLIENT_ID, CLIENT_SECRET, https_fake.mint_chain(CLIENT_ID, REALM_ID))
    assert info.value.kind == "certificate" and info.value.issuer == "Fake Intuit Test Root"
    # The refused request's tunnel, then the bare handshake's, both through the proxy; no HTTP request arrived.
    assert len(connect_proxy.tunnels) == 2
    assert https_fake.requests == []


def test_the_truststore_path_verifies_and_names_the_issuer_too(
    https_fake: FakeIntuit, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, fresh_contexts: None
) -> None:
    """macOS and Windows build the context with truststore; here its Linux backend stands in for theirs."""
    import truststore

    from doctor.intuit import client as client_module

    monkeypatch.setattr(client_module, "NATIVE_TRUST_PLATFORMS", (sys.platform,))
    assert isinstance(client_module.system_ssl_context(), truststore.SSLContext)
    with IntuitClient(environ=https_fake.environ(), timeout=5.0) as client:
        with pytest.raises(IntuitError) as info:
            client.refresh(CLIENT_ID, CLIENT_SECRET, https_fake.mint_chain(CLIENT_ID, REALM_ID))
    assert info.value.kind == "certificate" and info.value.issuer == "Fake Intuit Test Root"

    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with IntuitClient(environ=https_fake.environ(), timeout=5.0) as client:
        assert client.refresh(CLIENT_ID, CLIENT_SECRET, https_fake.mint_chain(CLIENT_ID, REALM_ID)).access_token
    assert isinstance(client_module._ssl_context(), truststore.SSLContext)
