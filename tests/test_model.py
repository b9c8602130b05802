"""The value types: named tuples whose written annotations must match their fields."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import doctor
import probes
from doctor.model import Diagnosis, Finding, Remediation


def _record_classes() -> list[type]:
    found = []
    for package in (doctor, probes):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if obj.__module__ == module.__name__ and issubclass(obj, tuple) and hasattr(obj, "_fields"):
                    found.append(obj)
    return found


RECORDS = _record_classes()


def test_the_package_has_record_classes() -> None:
    names = {cls.__name__ for cls in RECORDS}
    assert {"Finding", "Remediation", "Diagnosis", "EnvFile", "OwnerRecord", "Credentials"} <= names


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_annotations_name_exactly_the_fields_in_order(cls: type) -> None:
    # The field list is written twice (namedtuple's and the annotations a reader sees);
    # this keeps the two from drifting apart.
    assert tuple(cls.__dict__.get("__annotations__", {})) == cls._fields


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_records_take_no_extra_attributes(cls: type) -> None:
    assert cls.__slots__ == ()


def test_defaults_and_value_semantics() -> None:
    finding = Finding("ok", "fine")
    assert finding.details == () and finding.facts == {} and finding.remediation is None and finding.cause is None
    assert Remediation("do it") == Remediation("do it", (), False)
    assert Diagnosis("healthy", "All good").probe_id is None
    assert finding._replace(status="warn").status == "warn"
    with pytest.raises(AttributeError):
        finding.status = "fail"  # type: ignore[misc]
