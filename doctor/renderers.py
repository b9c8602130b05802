"""Format a redacted report document for a person (text), for Claude (prompt) or for support (json).

Renderers receive the redacted, contract-shaped document and never compute facts. The CLI
canary-scans whatever they return before it is written anywhere. Jinja2 is imported only by
the prompt renderer.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping, TextIO

FORMATS = ("text", "prompt", "json")

MARKS_UNICODE = {"ok": "✓", "warn": "!", "fail": "✗", "error": "✗", "timeout": "✗", "skip": "-"}
MARKS_ASCII = {"ok": "OK", "warn": "!", "fail": "X", "error": "X", "timeout": "X", "skip": "-"}
COLOURS = {"ok": "32", "warn": "33", "fail": "31", "error": "31", "timeout": "31", "skip": "2"}
ASCII_FALLBACKS = {
    "\u2026": "...",
    "\u2014": "-",
    "\u2013": "-",
    "\u2192": "->",
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u00a0": " ",
}


def stream_supports_unicode(stream: TextIO) -> bool:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "✓✗…—→".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def use_colour(stream: TextIO, environ: Mapping[str, str]) -> bool:
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def to_ascii(text: str) -> str:
    for char, replacement in ASCII_FALLBACKS.items():
        text = text.replace(char, replacement)
    return text.encode("ascii", "replace").decode("ascii")


# -- text ---------------------------------------------------------------------------------


def render_text(doc: dict[str, Any], *, verbose: bool = False, unicode: bool = True, colour: bool = False) -> str:
    marks = MARKS_UNICODE if unicode else MARKS_ASCII

    def paint(code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if colour else text

    diagnosis = doc["diagnosis"]
    healthy = diagnosis["cause"] == "healthy"
    lines = [
        paint("1", diagnosis["headline"]),
        f"Cause: {diagnosis['cause']}   (run {doc['run_id']}, {doc['mode']})",
        "",
    ]
    width = max((len(p["id"]) for p in doc["probes"]), default=10)
    for probe in doc["probes"]:
        status = probe["status"]
        mark = paint(COLOURS[status], marks[status].ljust(2))
        label = "" if status in ("ok", "warn", "fail", "skip") else f"({status}) "
        lines.append(f"  {mark} {probe['id'].ljust(width)}  {label}{probe['summary']}")
        problem = status not in ("ok", "skip")
        if verbose or problem:
            for detail in probe["details"]:
                lines.append(f"       {' ' * width}  {detail}")
        remediation = probe.get("remediation")
        if remediation and problem:
            arrow = "→" if unicode else "->"
            lines.append(f"       {' ' * width}  {arrow} {remediation['text']}")
            for command in remediation["commands"]:
                lines.append(f"       {' ' * width}    $ {command}")
        if verbose:
            if probe["facts"]:
                facts = ", ".join(f"{k}={_fact(v)}" for k, v in probe["facts"].items())
                lines.append(f"       {' ' * width}  facts: {facts}")
            blocked = f", blocked by {probe['blocked_by']}" if probe["blocked_by"] else ""
            lines.append(
                f"       {' ' * width}  {probe['duration_ms']:.1f} ms, side effects: {probe['side_effects']}{blocked}"
            )
    for note in doc.get("notes", []):
        lines += ["", f"Note: {note}"]
    if diagnosis["fix"]:
        lines += ["", "What to do:" if not healthy else "Tip:"]
        lines += [f"  {i}. {step}" for i, step in enumerate(diagnosis["fix"], 1)]
    counts = doc["summary"]["counts"]
    summary = ", ".join(f"{counts[s]} {s}" for s in ("ok", "warn", "fail", "skip", "error", "timeout") if counts[s])
    lines += [
        "",
        f"Summary: {summary or 'no probes ran'} — exit {doc['exit_code']}.",
        "For Claude: sidequest doctor --format prompt   For support: sidequest doctor --format json",
    ]
    text = "\n".join(lines) + "\n"
    return text if unicode else to_ascii(text)


def _fact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# -- json ---------------------------------------------------------------------------------


CONTRACT_KEYS = (
    "schema_version",
    "tool",
    "run_id",
    "generated_at",
    "mode",
    "platform",
    "diagnosis",
    "summary",
    "probes",
    "redaction",
    "exit_code",
)


def render_json(doc: dict[str, Any]) -> str:
    out = {key: doc[key] for key in CONTRACT_KEYS}
    out["diagnosis"] = {k: doc["diagnosis"][k] for k in ("cause", "headline", "fix")}
    out["notes"] = doc.get("notes", [])
    return json.dumps(out, indent=2, ensure_ascii=False) + "\n"


# -- prompt -------------------------------------------------------------------------------


def templates_dir() -> Path:
    """Templates ship inside the wheel as doctor/templates; a source checkout keeps them at the top."""
    packaged = Path(__file__).resolve().parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"


def fence(text: Any, info: str = "text") -> str:
    """Fence text that came from files or servers as data, with a fence longer than any run inside it."""
    text = str(text)
    longest = max((len(m) for m in re.findall(r"`{3,}|~{3,}", text)), default=2)
    marker = "`" * max(3, longest + 1)
    return f"{marker}{info}\n{text}\n{marker}"


def render_prompt(doc: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.fspath(templates_dir())),
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fence"] = fence
    env.filters["prepend"] = lambda text, prefix: f"{prefix}{text}"
    template = env.get_template("diagnose_prompt.md.j2")
    return template.render(doc=doc, problems=[p for p in doc["probes"] if p["status"] != "ok"])
