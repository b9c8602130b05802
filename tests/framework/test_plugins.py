"""The plugin system: built-ins first, entry points next, broken plugins become findings.

Third-party plugins are installed for real: a `*.dist-info` with an `entry_points.txt` in a
folder on PYTHONPATH is what pip would leave behind, and `importlib.metadata` finds it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support.homes import cli_env, run_cli
from tests.support.schema_check import assert_valid_report

EXAMPLE = Path(__file__).resolve().parents[1] / "support" / "example_plugin" / "sidequest_example.py"


def install_plugin(site: Path, ep_name: str, module: str, source: str) -> None:
    """Install `source` as module `module` with a `sidequest` entry point named `ep_name`."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    dist = site / f"{module.replace('_', '-')}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[sidequest]\n{ep_name} = {module}\n")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return tmp_path / "site"


def plugin_env(home: Path, site: Path, **extra: str) -> dict[str, str]:
    return cli_env(home, PYTHONPATH=str(site), **extra)


def test_builtin_probes_are_listed_with_their_plugin(home: Path) -> None:
    result = run_cli("doctor", "--list-probes", env=cli_env(home))
    assert result.returncode == 0, result.stderr
    assert "env-file" in result.stdout
    assert "probes.env_file" in result.stdout


def test_example_plugin_is_listed_run_and_its_secret_redacted(home: Path, site: Path) -> None:
    install_plugin(site, "example", "sidequest_example", EXAMPLE.read_text())
    secret = "exampleApiToken-5f1e2d3c4b5a"
    (home / ".env").write_text((home / ".env").read_text() + f"EXAMPLE_LABEL=Invoices\nEXAMPLE_API_TOKEN={secret}\n")
    env = plugin_env(home, site)

    listed = run_cli("doctor", "--list-probes", env=env)
    assert "example-label" in listed.stdout and "example" in listed.stdout

    result = run_cli("doctor", "--offline", "--format", "json", env=env)
    doc = result.json()
    assert_valid_report(doc)
    probe = next(p for p in doc["probes"] if p["id"] == "example-label")
    assert probe["status"] == "ok"
    assert "SECRET…" in probe["summary"]
    assert secret not in result.stdout + result.stderr
    for fmt in ("text", "prompt"):
        out = run_cli("doctor", "--offline", "--format", fmt, env=env)
        assert "example-label" in out.stdout
        assert secret not in out.stdout + out.stderr


def test_plugin_that_fails_to_import_is_a_finding_not_a_crash(home: Path, site: Path) -> None:
    install_plugin(site, "broken", "sidequest_broken", "import module_that_does_not_exist\n")
    result = run_cli("doctor", "--offline", "--format", "json", env=plugin_env(home, site))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    doc = result.json()
    assert_valid_report(doc)
    plugins = next(p for p in doc["probes"] if p["id"] == "plugins")
    assert plugins["status"] == "warn"
    assert any("broken" in d and "ModuleNotFoundError" in d for d in plugins["details"])
    assert any(p["id"] == "env-file" and p["status"] == "ok" for p in doc["probes"])


def test_misspelt_hook_is_rejected_loudly(home: Path, site: Path) -> None:
    source = textwrap.dedent(
        """
        from doctor import hookimpl

        @hookimpl
        def sidequest_probe():  # misspelt: the hook is sidequest_probes
            return []
        """
    )
    install_plugin(site, "typo", "sidequest_typo", source)
    result = run_cli("doctor", "--offline", "--format", "json", env=plugin_env(home, site))
    doc = result.json()
    plugins = next(p for p in doc["probes"] if p["id"] == "plugins")
    assert any("typo" in d and "sidequest_probe" in d for d in plugins["details"])


def test_duplicate_probe_id_is_rejected_and_the_builtin_kept(home: Path, site: Path) -> None:
    source = textwrap.dedent(
        """
        from doctor import hookimpl
        from doctor.model import Finding, Probe

        @hookimpl
        def sidequest_probes():
            return [Probe(id="env-file", title="impostor", run=lambda ctx: Finding("fail", "impostor"))]
        """
    )
    install_plugin(site, "dupe", "sidequest_dupe", source)
    result = run_cli("doctor", "--offline", "--format", "json", env=plugin_env(home, site))
    doc = result.json()
    env_file = [p for p in doc["probes"] if p["id"] == "env-file"]
    assert len(env_file) == 1 and env_file[0]["title"] != "impostor"
    plugins = next(p for p in doc["probes"] if p["id"] == "plugins")
    assert any("duplicate probe id 'env-file'" in d for d in plugins["details"])


def test_disable_plugins_blocks_named_plugins(home: Path, site: Path) -> None:
    install_plugin(site, "example", "sidequest_example", EXAMPLE.read_text())
    env = plugin_env(home, site, SIDEQUEST_DISABLE_PLUGINS="example, probes.env_file")
    result = run_cli("doctor", "--list-probes", env=env)
    assert "example-label" not in result.stdout
    assert "env-file" not in result.stdout


def test_plugin_secret_hook_failure_is_reported(home: Path, site: Path) -> None:
    source = textwrap.dedent(
        """
        from doctor import hookimpl

        @hookimpl
        def sidequest_secrets(ctx):
            raise RuntimeError("no vault")
        """
    )
    install_plugin(site, "vault", "sidequest_vault", source)
    result = run_cli("doctor", "--offline", "--format", "json", env=plugin_env(home, site))
    doc = result.json()
    plugins = next(p for p in doc["probes"] if p["id"] == "plugins")
    assert any("vault" in d and "no vault" in d for d in plugins["details"])


def test_entry_point_scan_agrees_with_importlib_metadata() -> None:
    """The lean scanner must find what importlib.metadata finds (console_scripts is a rich sample)."""
    from importlib import metadata

    from doctor.plugins import entry_points

    ours = set(entry_points("console_scripts"))
    theirs = {(ep.name, ep.value.split("[", 1)[0].strip()) for ep in metadata.entry_points(group="console_scripts")}
    assert ("sidequest", "doctor.commands.cli:main") in ours
    assert ours == theirs


def test_every_module_in_probes_is_a_listed_builtin_and_every_listed_one_exists() -> None:
    import pkgutil

    import probes
    from doctor.plugins import BUILTIN_PROBES

    found = {f"probes.{info.name}" for info in pkgutil.iter_modules(probes.__path__) if not info.name.startswith("_")}
    assert len(set(BUILTIN_PROBES)) == len(BUILTIN_PROBES)
    assert set(BUILTIN_PROBES) == found
