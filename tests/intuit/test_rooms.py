"""The Intuit room's own promises: one definition of each concept, and a client that is cheap to build."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import pytest

from doctor.intuit import client as client_module
from doctor.intuit.client import IntuitClient
from doctor.intuit.endpoints import ENVIRONMENTS
from doctor.intuit.errors import HEADLINES, KINDS

ROOT = Path(__file__).resolve().parents[2]


def _assignments(name: str) -> list[str]:
    found = []
    for folder in ("doctor", "probes"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
                if isinstance(node, (ast.Assign, ast.AnnAssign)) and any(
                    isinstance(t, ast.Name) and t.id == name for t in targets
                ):
                    found.append(str(path.relative_to(ROOT)))
    return found


def test_environments_are_defined_once() -> None:
    assert _assignments("ENVIRONMENTS") == ["doctor/intuit/endpoints.py"]
    assert ENVIRONMENTS == ("production", "sandbox")


def test_every_error_kind_has_words() -> None:
    assert set(HEADLINES) == set(KINDS)
    assert all(words and "\n" not in words for words in HEADLINES.values())


def test_building_clients_loads_the_ca_roots_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx builds a CA-loaded context per transport; the client hands one shared context to both."""
    made: list[ssl.SSLContext] = []
    stdlib: list[ssl.SSLContext] = []
    real_system, real_default = client_module.system_ssl_context, ssl.create_default_context

    def counting_system():
        made.append(real_system())
        return made[-1]

    def counting_default(*args, **kwargs):
        stdlib.append(real_default(*args, **kwargs))
        return stdlib[-1]

    monkeypatch.setattr(client_module, "system_ssl_context", counting_system)
    monkeypatch.setattr(ssl, "create_default_context", counting_default)
    monkeypatch.setattr(client_module, "_ssl_contexts", {})
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    first, second = IntuitClient(environ={}), IntuitClient(environ={})
    try:
        first._client()
        second._client()
    finally:
        first.close()
        second.close()
    assert len(made) == 1
    assert stdlib == []  # httpx loaded no CA bundle of its own (certifi's) for either transport


def test_prepare_builds_the_http_client_once_and_sends_nothing() -> None:
    with IntuitClient(environ={}) as client:
        assert client.prepare() is client
        built = client._http
        assert built is not None
        client.prepare()
        assert client._http is built
