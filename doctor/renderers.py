"""Format a redacted report document for a person (text), for Claude (prompt) or for support (json).

Renderers receive the redacted, contract-shaped document and never compute facts, and never
emit a control character: the text renderer asks for colour with `doctor.console.Styled`
pieces, and `doctor.console.Console` (the one writer) escapes, canary-scans and writes
whatever they return. Jinja2 is imported only by the prompt renderer, which loads the
template precompiled (see `prompt_template`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping, TextIO

from doctor.console import Styled

FORMATS = ("text", "prompt", "json")

MARKS_UNICODE = {"ok": "✓", "warn": "!", "fail": "✗", "error": "✗", "timeout": "✗", "skip": "-"}
MARKS_ASCII = {"ok": "OK", "warn": "!", "fail": "X", "error": "X", "timeout": "X", "skip": "-"}
STATUS_STYLES = {"ok": "green", "warn": "yellow", "fail": "red", "error": "red", "timeout": "red", "skip": "dim"}
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


def render(document: dict[str, Any], fmt: str, *, verbose: bool = False, unicode: bool = True) -> str | Styled:
    """The document in one of FORMATS (text comes as Styled: the console decides on colour)."""
    if fmt == "json":
        return render_json(document)
    if fmt == "prompt":
        return render_prompt(document)
    return render_text(document, verbose=verbose, unicode=unicode)


def render_text(doc: dict[str, Any], *, verbose: bool = False, unicode: bool = True) -> Styled:
    """The report for a person: headline first, one line per probe, then what to do."""
    marks = MARKS_UNICODE if unicode else MARKS_ASCII
    out = Styled()
    width = max((len(p["id"]) for p in doc["probes"]), default=10)
    indent = f"       {' ' * width}  "

    def line(text: str = "", *, hang: str = indent) -> None:
        # A newline inside a value (a company name, a file's words) continues under the detail
        # column, so it can never start a line that looks like a probe's own.
        out.add(text.replace("\n", "\n" + hang) + "\n")

    diagnosis = doc["diagnosis"]
    healthy = diagnosis["cause"] == "healthy"
    out.add(" ".join(str(diagnosis["headline"]).splitlines()), "bold")
    line()
    line(f"Cause: {diagnosis['cause']}   (run {doc['run_id']}, {doc['mode']})")
    line()
    for probe in doc["probes"]:
        status = probe["status"]
        label = "" if status in ("ok", "warn", "fail", "skip") else f"({status}) "
        out.add("  ")
        out.add(marks[status].ljust(2), STATUS_STYLES[status])
        line(f" {probe['id'].ljust(width)}  {label}{probe['summary']}")
        problem = status not in ("ok", "skip")
        if verbose or problem:
            for detail in probe["details"]:
                line(f"{indent}{detail}")
        remediation = probe.get("remediation")
        if remediation and problem:
            arrow = "→" if unicode else "->"
            line(f"{indent}{arrow} {remediation['text']}")
            for command in remediation["commands"]:
                line(f"{indent}  $ {command}")
        if verbose:
            if probe["facts"]:
                facts = ", ".join(f"{k}={_fact(v)}" for k, v in probe["facts"].items())
                line(f"{indent}facts: {facts}")
            blocked = f", blocked by {probe['blocked_by']}" if probe["blocked_by"] else ""
            line(f"{indent}{probe['duration_ms']:.1f} ms, side effects: {probe['side_effects']}{blocked}")
    shown = {probe["summary"] for probe in doc["probes"]}
    for note in doc.get("notes", []):
        if note in shown:  # the live refresh's note is also refresh-chain's own line, just above
            continue
        line()
        line(f"Note: {note}", hang="      ")
    if diagnosis["fix"]:
        line()
        line("What to do:" if not healthy else "Tip:")
        for i, step in enumerate(diagnosis["fix"], 1):
            line(f"  {i}. {step}", hang="     ")
    counts = doc["summary"]["counts"]
    summary = ", ".join(f"{counts[s]} {s}" for s in ("ok", "warn", "fail", "skip", "error", "timeout") if counts[s])
    line()
    line(f"Summary: {summary or 'no probes ran'} — exit {doc['exit_code']}.")
    line("For Claude: sidequest doctor --format prompt   For support: sidequest doctor --format json")
    return out if unicode else out.map_text(to_ascii)


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


PROMPT_TEMPLATE = "diagnose_prompt.md.j2"
# The prompt template compiled to Python by jinja2 (`write_compiled_prompt` makes it; a test
# keeps it current). Compiling the template costs about 28 ms of every `--format prompt` run;
# importing the compiled module costs well under one, and Python caches its bytecode.
COMPILED_PROMPT = "diagnose_prompt_compiled.py"


def _prompt_environment():
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
    return env


def _source_checksum(source: str) -> int:
    import binascii  # already loaded by doctor.redaction; hashlib would add start-up time

    return binascii.crc32(source.encode("utf-8"))


def compiled_prompt_source() -> str:
    """The Python module jinja2 makes of the prompt template, stamped with the source's checksum."""
    import jinja2

    source = (templates_dir() / PROMPT_TEMPLATE).read_text(encoding="utf-8")
    code = _prompt_environment().compile(source, PROMPT_TEMPLATE, PROMPT_TEMPLATE, raw=True, defer_init=True)
    return (
        f"# Generated from {PROMPT_TEMPLATE} by doctor.renderers.write_compiled_prompt(); do not edit.\n"
        "# ruff: noqa\n"
        "# fmt: off\n"
        f"TEMPLATE_CHECKSUM = {_source_checksum(source)}\n"
        f"JINJA2_VERSION = {jinja2.__version__!r}\n"
        f"{code}\n"
    )


def write_compiled_prompt() -> Path:
    """Regenerate the compiled prompt template after editing the .j2 file."""
    path = templates_dir() / COMPILED_PROMPT
    path.write_text(compiled_prompt_source(), encoding="utf-8")
    return path


def prompt_template():
    """The prompt template: the precompiled module when it matches the source and jinja2, else compiled now."""
    import importlib.util

    import jinja2

    env = _prompt_environment()
    folder = templates_dir()
    compiled = folder / COMPILED_PROMPT
    if compiled.is_file():
        source = (folder / PROMPT_TEMPLATE).read_text(encoding="utf-8")
        spec = importlib.util.spec_from_file_location("doctor._compiled_prompt", compiled)
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except Exception:  # a damaged or foreign file: compile the source instead
                module = None
            if (
                module is not None
                and getattr(module, "TEMPLATE_CHECKSUM", None) == _source_checksum(source)
                and getattr(module, "JINJA2_VERSION", None) == jinja2.__version__
            ):
                return env.template_class.from_module_dict(env, module.__dict__, env.make_globals(None))
    return env.get_template(PROMPT_TEMPLATE)


def render_prompt(doc: dict[str, Any]) -> str:
    template = prompt_template()
    return template.render(doc=doc, problems=[p for p in doc["probes"] if p["status"] != "ok"])
