"""The plugin system: built-ins first, entry points next, broken plugins become findings.

Plugin behaviour is tested in-process with throwaway plugins (the `plugin_set` fixture). One
test installs a plugin for real, as pip would leave it (a `*.dist-info` with an
`entry_points.txt` in a folder on PYTHONPATH), and runs the real CLI.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from doctor.hookspecs import hookimpl
from doctor.model import Finding, Probe
from doctor.plugins import BUILTIN_PROBES, build_plugins
from doctor.session import build_context, execute
from tests.support.homes import cli_env, run_cli
from tests.support.schema_check import assert_valid_report

EXAMPLE = Path(__file__).resolve().parents[1] / "support" / "example_plugin" / "sidequest_example.py"


def install_plugin(site: Path, ep_name: str, module: str, source: str) -> None:
    """Install `source` as module `module` with a `sidequest` entry point named `ep_name`."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    dist = site / f"{module}-0.1.dist-info"  # as wheel names it: the project name with underscores
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[sidequest]\n{ep_name} = {module}\n")


def problems_of(plugins) -> list[str]:
    return [f"{p.plugin}: {p.message}" for p in plugins.problems]


class Impostor:
    @hookimpl
    def sidequest_probes(self):
        return [Probe(id="env-file", title="impostor", run=lambda ctx: Finding("fail", "impostor"))]


class Misspelt:
    @hookimpl
    def sidequest_probe(self):  # the hook is sidequest_probes
        return []


class Vaultless:
    @hookimpl
    def sidequest_secrets(self, ctx):
        raise RuntimeError("no vault")


class OffersGarbage:
    @hookimpl
    def sidequest_probes(self):
        return ["not a probe"]


class RaisesWhileDescribing:
    @hookimpl
    def sidequest_probes(self):
        raise ValueError("cannot describe")


class Label:
    @hookimpl
    def sidequest_probes(self):
        return [Probe(id="label", title="Label", run=lambda ctx: Finding("ok", "labelled"), depends_on=("env-file",))]


def test_example_plugin_installed_for_real_is_listed_run_and_its_secret_redacted(home: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_plugin(site, "example", "sidequest_example", EXAMPLE.read_text())
    secret = "exampleApiToken-5f1e2d3c4b5a"
    (home / ".env").write_text((home / ".env").read_text() + f"EXAMPLE_LABEL=Invoices\nEXAMPLE_API_TOKEN={secret}\n")
    env = cli_env(home, PYTHONPATH=str(site))

    listed = run_cli("doctor", "--list-probes", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "example-label" in listed.stdout and "example" in listed.stdout
    assert "probes.env_file" in listed.stdout  # built-ins are listed with their plugin

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


def test_builtins_register_in_the_listed_order_under_their_module_names(plugin_set) -> None:
    plugins = plugin_set()
    assert plugins.problems == []
    assert [r.plugin for r in plugins.probes if r.probe.id == "env-file"] == ["probes.env_file"]
    order = [r.plugin for r in plugins.probes]
    assert sorted(set(order), key=order.index) == list(BUILTIN_PROBES)


def test_plugin_that_fails_to_import_is_a_problem_not_a_crash(tmp_path: Path, monkeypatch) -> None:
    site = tmp_path / "site"
    install_plugin(site, "broken", "sidequest_broken_fw", "import module_that_does_not_exist\n")
    monkeypatch.syspath_prepend(str(site))
    plugins = build_plugins({}, load_builtins=True)
    assert any(p.startswith("broken: failed to load: ModuleNotFoundError") for p in problems_of(plugins))
    assert any(r.probe.id == "env-file" for r in plugins.probes)


def test_misspelt_hook_is_rejected_loudly(plugin_set) -> None:
    plugins = plugin_set(("typo", Misspelt()), builtins=False)
    assert any(p.startswith("typo: rejected") and "sidequest_probe" in p for p in problems_of(plugins))
    assert plugins.manager.get_plugin("typo") is None


def test_duplicate_probe_id_is_rejected_and_the_builtin_kept(plugin_set) -> None:
    plugins = plugin_set(("dupe", Impostor()))
    env_file = [r for r in plugins.probes if r.probe.id == "env-file"]
    assert len(env_file) == 1 and env_file[0].probe.title != "impostor" and env_file[0].plugin == "probes.env_file"
    assert any("duplicate probe id 'env-file'" in p for p in problems_of(plugins))


def test_a_hook_that_raises_or_offers_garbage_is_a_problem(plugin_set) -> None:
    plugins = plugin_set(("garbage", OffersGarbage()), ("raises", RaisesWhileDescribing()), builtins=False)
    problems = problems_of(plugins)
    assert "garbage: returned str, not a doctor.model.Probe" in problems
    assert "raises: sidequest_probes failed: ValueError: cannot describe" in problems
    assert plugins.probes == []


def test_disable_plugins_blocks_named_plugins_and_builtins(plugin_set) -> None:
    plugins = plugin_set(("label", Label()), environ={"SIDEQUEST_DISABLE_PLUGINS": "label, probes.env_file"})
    ids = {r.probe.id for r in plugins.probes}
    assert "label" not in ids and "env-file" not in ids
    assert {"label", "probes.env_file"} <= set(plugins.disabled)


def test_plugin_secret_hook_failure_is_reported_in_the_run(plugin_set, home: Path) -> None:
    ctx = build_context(home, home / "no-claude.json", environ={}, offline=True)
    try:
        run = execute(ctx, plugin_set(("vault", Vaultless()), ("label", Label())))
    finally:
        ctx.close()
    plugins = run.report.result("plugins")
    assert plugins is not None and plugins.status == "warn"
    assert any("vault" in d and "no vault" in d for d in plugins.details)
    assert run.report.result("label").status == "ok"  # the other plugin still ran


def test_entry_point_scan_agrees_with_importlib_metadata() -> None:
    """The lean scanner must find what importlib.metadata finds (console_scripts is a rich sample)."""
    from importlib import metadata

    from doctor.plugins import entry_points

    ours = set(entry_points("console_scripts"))
    theirs = {(ep.name, ep.value.split("[", 1)[0].strip()) for ep in metadata.entry_points(group="console_scripts")}
    assert ("sidequest", "doctor.commands.script:entry") in ours
    assert ours == theirs


def test_entry_point_scan_reads_a_freshly_installed_plugin(tmp_path: Path) -> None:
    from doctor.plugins import entry_points

    site = tmp_path / "site"
    install_plugin(site, "typo", "sidequest_typo", textwrap.dedent("x = 1\n"))
    (site / "not-a-dist").mkdir()
    assert entry_points("sidequest", [str(site), str(tmp_path / "missing")]) == [("typo", "sidequest_typo")]
    assert entry_points("sidequest", [str(tmp_path)]) == []  # a folder without distributions


def test_every_module_in_probes_is_a_listed_builtin_and_every_listed_one_exists() -> None:
    import pkgutil

    import probes

    found = {f"probes.{info.name}" for info in pkgutil.iter_modules(probes.__path__) if not info.name.startswith("_")}
    assert len(set(BUILTIN_PROBES)) == len(BUILTIN_PROBES)
    assert set(BUILTIN_PROBES) == found


@pytest.mark.parametrize("name", BUILTIN_PROBES)
def test_each_builtin_offers_probes_through_the_hook(name: str, plugin_set) -> None:
    plugins = plugin_set()
    assert any(r.plugin == name for r in plugins.probes), f"{name} offers no probe"
