"""The doctor's data model: what a probe is, what it returns, and what a run reports.

Probes return plain data (`Finding`); the runner wraps it into a `ProbeResult` with timing and
dependency facts; the diagnosis turns the results into one `Diagnosis`; renderers only format
a `Report`. Nothing here prints or formats for a medium.

The value types derive from `doctor.values.Value` (equality, repr, `_replace`); Probe (which
validates) and the two mutable types are plain classes. Every `sidequest doctor` run imports
this module, so it creates no class by compiling code (doctor/values.py says why) and
compiles no regex.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Literal

from doctor.values import Value

if TYPE_CHECKING:  # pragma: no cover (annotations only: building Literal types costs start-up time)
    from doctor.context import Context

    Status = Literal["ok", "warn", "fail", "skip", "error", "timeout"]
    SideEffects = Literal["none", "network", "mutating"]

STATUSES: tuple[str, ...] = ("ok", "warn", "fail", "skip", "error", "timeout")
PROBLEM_STATUSES: frozenset[str] = frozenset({"fail", "error", "timeout"})
SIDE_EFFECTS: tuple[str, ...] = ("none", "network", "mutating")

# DESIGN.md §9a: the root-cause vocabulary, in tie-break order (earlier wins).
CAUSE_ORDER: tuple[str, ...] = (
    "not_configured",
    "invalid_client",
    "environment_mismatch",
    "realm_mismatch",
    "refresh_token_expired",
    "app_disconnected",
    "qbo_access_denied",
    "subscription_lapsed",
    "connector_not_starting",
    "claude_config_invalid",
    "claude_config_out_of_sync",
    "lock_problem",
    "tls_untrusted",
    "network_unreachable",
    "rate_limited",
    "intuit_unavailable",
    "unknown",
)
CAUSES: tuple[str, ...] = ("healthy",) + CAUSE_ORDER


def is_probe_id(text: object) -> bool:
    """Kebab-case: lower-case ASCII letters and digits in parts joined by single hyphens."""
    if not isinstance(text, str) or not text:
        return False
    return all(part.isascii() and part.isalnum() and part == part.lower() for part in text.split("-"))


class Remediation(Value):
    """What the user (or `--fix`) can do about a finding."""

    __slots__ = ("text", "commands", "safe_to_automate")

    def __init__(self, text: str, commands: tuple[str, ...] = (), safe_to_automate: bool = False) -> None:
        self.text = text
        self.commands = commands
        self.safe_to_automate = safe_to_automate

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "commands": list(self.commands),
            "safe_to_automate": self.safe_to_automate,
        }


class Finding(Value):
    """What a probe's `run(ctx)` returns.

    `cause` names the root cause (a code of `CAUSES`) this finding points to when its status
    is a problem; the diagnosis picks one cause across all findings. `facts` must be plain
    JSON data and must never hold a secret value (the redactor would refuse the output).
    """

    __slots__ = ("status", "summary", "details", "facts", "remediation", "cause")

    def __init__(
        self,
        status: Status,
        summary: str,
        details: tuple[str, ...] | list[str] = (),
        facts: dict[str, Any] | None = None,
        remediation: Remediation | None = None,
        cause: str | None = None,
    ) -> None:
        self.status = status
        self.summary = summary
        self.details = details
        self.facts = {} if facts is None else facts
        self.remediation = remediation
        self.cause = cause


class Fixer(Value):
    """A safe, automatic repair a probe offers to `doctor --fix`.

    `describe(ctx)` says in one line what would change (None when nothing needs doing);
    `apply(ctx)` performs it and returns one line saying what it did.
    """

    __slots__ = ("describe", "apply")

    def __init__(self, describe: Callable[[Context], str | None], apply: Callable[[Context], str]) -> None:
        self.describe = describe
        self.apply = apply


class Probe:
    """A probe description, returned by plugins from the `sidequest_probes` hook.

    The runner calls `run`; hooks never execute probe logic. `depends_on` probes must pass
    (ok/warn) or this one is skipped; `runs_after` probes only have to finish first (their
    results are then in `ctx.results`, whatever their status).
    """

    __slots__ = (
        "id", "title", "run", "category", "depends_on", "needs_network",
        "side_effects", "timeout", "fixer", "runs_after", "timeout_cause",
    )  # fmt: skip

    def __init__(
        self,
        id: str,
        title: str,
        run: Callable[[Context], Finding],
        category: str = "general",
        depends_on: tuple[str, ...] = (),
        needs_network: bool = False,
        side_effects: SideEffects = "none",
        timeout: float = 5.0,
        fixer: Fixer | None = None,
        runs_after: tuple[str, ...] = (),
        timeout_cause: str | None = None,
    ) -> None:
        if not is_probe_id(id):
            raise ValueError(f"probe id {id!r} is not kebab-case")
        if side_effects not in SIDE_EFFECTS:
            raise ValueError(f"probe {id}: side_effects must be one of {SIDE_EFFECTS}")
        self.id = id
        self.title = title
        self.run = run
        self.category = category
        self.depends_on = tuple(depends_on)
        self.needs_network = needs_network
        self.side_effects = side_effects
        self.timeout = timeout
        self.fixer = fixer
        self.runs_after = tuple(runs_after)
        # The cause a timeout of this probe names; by default a network probe's points at the network.
        self.timeout_cause = timeout_cause

    def __repr__(self) -> str:
        return f"Probe(id={self.id!r}, title={self.title!r})"


class ProbeResult:
    """One probe's outcome in a run (the runner fills timing and dependency facts)."""

    __slots__ = (
        "id", "title", "status", "summary", "details", "remediation", "facts",
        "duration_ms", "side_effects", "blocked_by", "cause", "plugin",
    )  # fmt: skip

    def __init__(
        self,
        id: str,
        title: str,
        status: Status,
        summary: str,
        details: list[str] | None = None,
        remediation: Remediation | None = None,
        facts: dict[str, Any] | None = None,
        duration_ms: float = 0.0,
        side_effects: SideEffects = "none",
        blocked_by: str | None = None,
        cause: str | None = None,
        plugin: str = "builtin",
    ) -> None:
        self.id = id
        self.title = title
        self.status = status
        self.summary = summary
        self.details = [] if details is None else details
        self.remediation = remediation
        self.facts = {} if facts is None else facts
        self.duration_ms = duration_ms
        self.side_effects = side_effects
        self.blocked_by = blocked_by
        self.cause = cause
        self.plugin = plugin

    def __repr__(self) -> str:
        return f"ProbeResult(id={self.id!r}, status={self.status!r})"

    # The outcomes the runner decides itself, rather than a probe's finding (flutter's
    # ValidationResult.crash): one place for each status's cause, so no call site can differ.

    @classmethod
    def crashed(
        cls,
        probe: Probe,
        summary: str,
        *,
        plugin: str = "builtin",
        details: list[str] | None = None,
        duration_ms: float = 0.0,
    ) -> ProbeResult:
        """`error`: the probe raised, returned something that is not a valid Finding, or cannot run."""
        return cls(
            probe.id, probe.title, "error", summary, details=details, duration_ms=duration_ms,
            side_effects=probe.side_effects, cause="unknown", plugin=plugin,
        )  # fmt: skip

    @classmethod
    def timed_out(
        cls,
        probe: Probe,
        summary: str,
        *,
        plugin: str = "builtin",
        duration_ms: float = 0.0,
        remediation: Remediation | None = None,
    ) -> ProbeResult:
        """`timeout`: the probe overran its time, or the run's budget ended before it started.

        A network probe that runs out of time points at the network, any other at `unknown`,
        unless the probe names its own `timeout_cause`.
        """
        cause = probe.timeout_cause or ("network_unreachable" if probe.needs_network else "unknown")
        return cls(
            probe.id, probe.title, "timeout", summary, remediation=remediation, duration_ms=duration_ms,
            side_effects=probe.side_effects, cause=cause,
            plugin=plugin,
        )  # fmt: skip

    @classmethod
    def skipped(
        cls, probe: Probe, summary: str, *, plugin: str = "builtin", blocked_by: str | None = None
    ) -> ProbeResult:
        """`skip`: the probe was not run; `blocked_by` names the probe that stopped it, if one did."""
        return cls(
            probe.id, probe.title, "skip", summary, side_effects=probe.side_effects, blocked_by=blocked_by,
            plugin=plugin,
        )  # fmt: skip

    @property
    def is_problem(self) -> bool:
        return self.status in PROBLEM_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "summary": self.summary,
            "details": list(self.details),
            "remediation": self.remediation.to_dict() if self.remediation else None,
            "facts": dict(self.facts),
            "duration_ms": round(max(self.duration_ms, 0.0), 3),
            "side_effects": self.side_effects,
            "blocked_by": self.blocked_by,
        }


class Diagnosis(Value):
    """The one root cause of a run, for a person: a headline and the exact fix steps."""

    __slots__ = ("cause", "headline", "fix", "probe_id")

    def __init__(self, cause: str, headline: str, fix: tuple[str, ...] = (), probe_id: str | None = None) -> None:
        self.cause = cause
        self.headline = headline
        self.fix = fix
        self.probe_id = probe_id  # the probe whose finding named the cause

    def to_dict(self) -> dict[str, Any]:
        return {"cause": self.cause, "headline": self.headline, "fix": list(self.fix)}


class Report:
    """Everything a run found, as plain data. Renderers format it; they never compute facts."""

    def __init__(
        self,
        run_id: str,
        generated_at: str,
        mode: Literal["live", "offline"],
        platform: dict[str, str],
        tool_version: str,
        results: list[ProbeResult],
        diagnosis: Diagnosis,
        exit_code: int,
        strict: bool = False,
        notes: list[str] | None = None,
    ) -> None:
        self.run_id = run_id
        self.generated_at = generated_at
        self.mode = mode
        self.platform = platform
        self.tool_version = tool_version
        self.results = results
        self.diagnosis = diagnosis
        self.exit_code = exit_code
        self.strict = strict
        self.notes = [] if notes is None else notes  # run-level notes (e.g. "refreshed once")

    @property
    def counts(self) -> dict[str, int]:
        counts = {status: 0 for status in STATUSES}
        for result in self.results:
            counts[result.status] += 1
        return counts

    @property
    def status(self) -> str:
        counts = self.counts
        if any(counts[s] for s in PROBLEM_STATUSES):
            return "fail"
        if counts["warn"]:
            return "warn"
        return "ok"

    def result(self, probe_id: str) -> ProbeResult | None:
        return next((r for r in self.results if r.id == probe_id), None)

    def to_dict(self, redacted: list[str] | None = None, canary_passed: bool = True) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "tool": {"name": "sidequest", "version": self.tool_version},
            "run_id": self.run_id,
            "generated_at": self.generated_at,
            "mode": self.mode,
            "platform": dict(self.platform),
            "diagnosis": self.diagnosis.to_dict(),
            "summary": {"status": self.status, "counts": self.counts},
            "probes": [r.to_dict() for r in self.results],
            "redaction": {"canary_passed": canary_passed, "redacted": list(redacted or [])},
            "exit_code": self.exit_code,
        }
