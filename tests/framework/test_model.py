"""The value types (doctor.values.Value) and the probe-id rule."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import doctor
import probes
from doctor.model import Diagnosis, Finding, Probe, ProbeResult, Remediation, is_probe_id
from doctor.values import Value


def _value_classes() -> list[type]:
    found = []
    for package in (doctor, probes):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if obj.__module__ == module.__name__ and issubclass(obj, Value) and obj is not Value:
                    found.append(obj)
    return found


VALUES = _value_classes()


def test_the_package_has_value_classes() -> None:
    names = {cls.__name__ for cls in VALUES}
    assert {"Finding", "Remediation", "Diagnosis", "EnvFile", "OwnerRecord", "Credentials"} <= names


@pytest.mark.parametrize("cls", VALUES, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_init_takes_exactly_the_slots_in_order(cls: type) -> None:
    # __eq__, __repr__ and _replace work from __slots__; a field __init__ sets but __slots__
    # lacks would fail at once, and one __slots__ names but __init__ never sets would make
    # equality raise. Both lists must be the same.
    params = list(inspect.signature(cls.__init__).parameters)[1:]
    assert tuple(params) == cls.__slots__


@pytest.mark.parametrize("cls", VALUES, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_values_take_no_other_attributes(cls: type) -> None:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    value = cls(*[p.default if p.default is not p.empty else None for p in params])
    with pytest.raises(AttributeError):
        value.not_a_field = 1


def test_defaults_equality_hash_repr_and_replace() -> None:
    finding = Finding("ok", "fine")
    assert finding.details == () and finding.facts == {} and finding.remediation is None and finding.cause is None
    assert Finding("ok", "a").facts is not Finding("ok", "b").facts  # no shared mutable default
    assert Remediation("do it") == Remediation("do it", (), False)
    assert Remediation("do it") != Remediation("do it", ("cmd",))
    assert Remediation("x") != ("x", (), False)  # not a tuple
    assert len({Remediation("a"), Remediation("a"), Remediation("b")}) == 2
    assert (
        repr(Diagnosis("healthy", "All good"))
        == "Diagnosis(cause='healthy', headline='All good', fix=(), probe_id=None)"
    )
    assert Diagnosis("healthy", "All good").probe_id is None
    changed = finding._replace(status="warn")
    assert changed.status == "warn" and changed.summary == "fine" and finding.status == "ok"
    with pytest.raises(TypeError, match="no field colour"):
        finding._replace(colour="red")


@pytest.mark.parametrize("text", ["env-file", "a", "x1", "claude-config-sync", "a1-b2-3"])
def test_probe_ids_in_kebab_case(text: str) -> None:
    assert is_probe_id(text)
    Probe(id=text, title="t", run=lambda ctx: Finding("ok", "fine"))


@pytest.mark.parametrize("text", ["", "-a", "a-", "x--y", "Env-file", "env_file", "env file", "a\n", "é", "²", None])
def test_other_probe_ids_are_refused(text) -> None:
    assert not is_probe_id(text)
    with pytest.raises(ValueError, match="kebab-case"):
        Probe(id=text, title="t", run=lambda ctx: Finding("ok", "fine"))


@pytest.mark.parametrize("cls", VALUES, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_every_value_hashes_consistently_with_equality(cls: type) -> None:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    value = cls(*[p.default if p.default is not p.empty else None for p in params])
    assert hash(value) == hash(value._replace())


def test_values_holding_plain_data_hash_by_their_contents() -> None:
    # Finding's facts is a dict and details may be a list: both are hashed by their contents.
    a = Finding("ok", "x", details=["one"], facts={"n": [1, 2], "s": {"k": "v"}})
    b = Finding("ok", "x", details=["one"], facts={"s": {"k": "v"}, "n": [1, 2]})
    assert a == b and hash(a) == hash(b)
    assert hash(Finding("ok", "x")) == hash(Finding("ok", "x"))
    assert len({a, b, Finding("ok", "x"), Finding("warn", "x")}) == 3
    assert Finding("ok", "x", facts={"n": 1}) != Finding("ok", "x", facts={"n": 2})


def test_a_field_of_an_unhashable_kind_still_refuses_hashing() -> None:
    class Opaque:
        __hash__ = None  # type: ignore[assignment]

    with pytest.raises(TypeError, match="unhashable"):
        hash(Finding("ok", "x", facts={"thing": Opaque()}))


def test_result_constructors_carry_the_probe_and_the_cause() -> None:
    net = Probe(id="net", title="Net", run=lambda ctx: Finding("ok", "x"), needs_network=True, side_effects="network")
    local = Probe(id="local", title="Local", run=lambda ctx: Finding("ok", "x"))
    crashed = ProbeResult.crashed(local, "the probe crashed (ValueError: x)", plugin="p", duration_ms=3.0)
    assert (crashed.id, crashed.title, crashed.status, crashed.cause, crashed.plugin, crashed.duration_ms) == (
        "local", "Local", "error", "unknown", "p", 3.0,
    )  # fmt: skip
    assert ProbeResult.timed_out(net, "late").cause == "network_unreachable"
    assert ProbeResult.timed_out(net, "late").side_effects == "network"
    assert ProbeResult.timed_out(local, "late").cause == "unknown"
    skipped = ProbeResult.skipped(local, "not run", blocked_by="env-file")
    assert (skipped.status, skipped.blocked_by, skipped.cause, skipped.is_problem) == ("skip", "env-file", None, False)
