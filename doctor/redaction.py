"""The single choke point between results and renderers: hide every secret, then prove it.

`Redactor.redact` replaces every known secret (plain, URL-encoded, fully percent-encoded in
either case, JSON-escaped) in the report
data with its redacted form (`RT…a1b2`, `AT…9f3c`, `CS…`, `AC…`). After rendering,
`Redactor.leaks` scans the final text for every secret in every encoding we know of
(including the base64 `client_id:client_secret` of a Basic header); the CLI refuses to emit
output that still holds one. Fail closed: a leak is an internal error, never a printed secret.
"""

from __future__ import annotations

import binascii
import json
import re
from typing import Any, Iterable
from urllib.parse import quote, quote_plus

from doctor.values import Value

# Shorter values would match ordinary words; no real Intuit secret is this short.
MIN_SECRET_LENGTH = 6

PREFIXES = {
    "refresh_token": "RT",
    "access_token": "AT",
    "client_secret": "CS",
    "auth_code": "AC",
}
KEEP_LAST = {"refresh_token": 4, "access_token": 4}


def redacted_form(kind: str, value: str | None) -> str:
    """The contract's redacted form: `RT…a1b2`, `AT…9f3c`, `CS…`, `AC…` (no tail for short values)."""
    prefix = PREFIXES.get(kind, "SECRET")
    keep = KEEP_LAST.get(kind, 0)
    tail = value[-keep:] if value and keep and len(value) > 3 * keep else ""
    return f"{prefix}\u2026{tail}"


def encodings(value: str) -> set[str]:
    """The ways a secret can appear in text we render (see also `percent_encoded`)."""
    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    forms.update((percent_encoded(value), percent_encoded(value).lower()))
    return {f for f in forms if f}


def percent_encoded(value: str) -> str:
    """Every byte as %XX (`quote` leaves letters and digits alone; some servers encode them all).

    Matching ignores the case of the hex digits (see `Redactor`), so %5a, %5A and a mix all count.
    """
    return "".join(f"%{byte:02X}" for byte in value.encode("utf-8"))


def _b64(text: str) -> str:
    # binascii directly: the base64 module costs a millisecond of start-up for one call.
    return binascii.b2a_base64(text.encode(), newline=False).decode("ascii")


class SecretLeak(Exception):
    """Rendered output still holds a secret; the output must not be emitted."""

    def __init__(self, kinds: list[str]) -> None:
        self.kinds = kinds
        super().__init__(
            "refusing to print the output: it still contains a secret "
            f"({', '.join(sorted(set(kinds)))}). Nothing was printed. Please report this to support "
            "with `sidequest doctor --verbose` run output (it never prints the secret itself)."
        )


class Secret(Value):
    __slots__ = ("kind", "value")

    def __init__(self, kind: str, value: str) -> None:
        self.kind = kind
        self.value = value

    @property
    def redacted(self) -> str:
        return redacted_form(self.kind, self.value)


class Redactor:
    def __init__(self, secrets: Iterable[tuple[str, str]], client_id: str | None = None) -> None:
        unique: dict[str, Secret] = {}
        for kind, value in secrets:
            if not isinstance(value, str):
                continue
            for candidate in {value, value.strip()}:
                if len(candidate) >= MIN_SECRET_LENGTH and candidate not in unique:
                    unique[candidate] = Secret(kind, candidate)
        self.secrets = sorted(unique.values(), key=lambda s: len(s.value), reverse=True)
        self.client_id = client_id
        self._replacements: list[tuple[str, str]] = []
        for secret in self.secrets:
            for form in sorted(encodings(secret.value), key=len, reverse=True):
                self._replacements.append((form, secret.redacted))
        self._replacements.sort(key=lambda pair: len(pair[0]), reverse=True)
        # Fully percent-encoded forms in any mix of upper and lower case hex digits.
        self._percent = sorted(
            ((percent_encoded(s.value).lower(), s.redacted) for s in self.secrets),
            key=lambda p: len(p[0]),
            reverse=True,
        )
        self._percent_pattern: re.Pattern[str] | None = None
        self._leak_list: list[tuple[str, str]] | None = None

    def redacted_forms(self) -> list[str]:
        """The redacted forms of the secrets this run knew (for the JSON `redaction` block)."""
        return sorted({s.redacted for s in self.secrets if s.kind in PREFIXES})

    def redact_text(self, text: str) -> str:
        for form, replacement in self._replacements:
            if form in text:
                text = text.replace(form, replacement)
        if "%" in text and self._percent:
            text = self._redact_percent_encoded(text)
        return text

    def _redact_percent_encoded(self, text: str) -> str:
        lowered = text.lower()
        if not any(form in lowered for form, _ in self._percent):
            return text
        if self._percent_pattern is None:
            self._percent_pattern = re.compile("|".join(re.escape(form) for form, _ in self._percent), re.IGNORECASE)
        by_form = dict(self._percent)
        return self._percent_pattern.sub(lambda m: by_form[m.group().lower()], text)

    def redact(self, data: Any) -> Any:
        """A copy of plain data (dicts, lists, strings) with every secret replaced."""
        if isinstance(data, str):
            return self.redact_text(data)
        if isinstance(data, dict):
            return {self.redact(k): self.redact(v) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.redact(v) for v in data]
        return data

    def _leak_forms(self) -> Iterable[tuple[str, str]]:
        for secret in self.secrets:
            for form in encodings(secret.value):
                yield secret.kind, form
            yield secret.kind, _b64(secret.value)
            if secret.kind == "client_secret" and self.client_id:
                basic = _b64(f"{self.client_id}:{secret.value}")
                yield "client_secret", basic
                yield "client_secret", quote(basic, safe="")
                yield "client_secret", percent_encoded(basic).lower()

    def leaks(self, text: str) -> list[str]:
        """The kinds of secret still present in `text` (empty when it is clean).

        Fully percent-encoded forms are looked for whatever the case of their hex digits.
        """
        if self._leak_list is None:
            self._leak_list = list(self._leak_forms())
        lowered = text.lower() if "%" in text else None
        found = []
        for kind, form in self._leak_list:
            if not form:
                continue
            if form in text or (lowered is not None and form.startswith("%") and form.lower() in lowered):
                found.append(kind)
        return found

    def check(self, text: str) -> str:
        """Return `text` if clean; raise SecretLeak otherwise."""
        found = self.leaks(text)
        if found:
            raise SecretLeak(found)
        return text
