"""Firmware hooks: executables in ``<hooks_dir>/<event>.d/`` run in name order with a documented environment.

Contract (docs/firmware_hooks.md): each hook gets a clean environment (no inherited secrets) with the
``EDGE_*`` variables of :class:`HookContext`, runs with a timeout in its own process group (killed with the
whole group on timeout), and has stdout+stderr captured. Exit 0 is success; anything else, or a timeout, is
failure and stops the remaining hooks of that event. What a failure means is the caller's business: a failed
``pre-flash`` aborts a flash, a failed ``post-flash`` or ``health-check`` rolls it back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

EVENTS = ("pre-flash", "post-flash", "health-check", "post-update")
DEFAULT_TIMEOUT_S = 60.0
MAX_OUTPUT_CHARS = 16_000
PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "PYTHONPATH", "VIRTUAL_ENV")
"""Variables hooks inherit; everything else (secrets referenced by ``{env: NAME}`` included) is withheld."""
#: Environment variable naming the hooks folder (``edge flash --hooks-dir`` overrides it).
ENV_HOOKS_DIR = "EDGE_HOOKS_DIR"
#: The hooks shipped in the repository, the fallback on a development machine.
REPO_HOOKS = Path(__file__).resolve().parents[2] / "firmware_hooks"


def find_hooks_dir(root: Path, explicit: Path | None = None) -> Path | None:
    """Pick ``explicit``, ``$EDGE_HOOKS_DIR``, ``<root>/firmware_hooks``, else the repository's hooks.

    Here rather than in the flash's CLI: the station (``edge run``) runs the same hooks when it settles an
    interrupted flash or flashes a review's golden promotion, and must not import the commands above it.
    """
    if explicit is not None:
        return Path(explicit)
    if os.environ.get(ENV_HOOKS_DIR):
        return Path(os.environ[ENV_HOOKS_DIR])
    for candidate in (root / "firmware_hooks", REPO_HOOKS):
        if candidate.is_dir():
            return candidate
    return None


@dataclass(frozen=True)
class HookContext:
    """What a hook is told about the flash it runs in (becomes its ``EDGE_*`` environment)."""

    station_id: str = ""
    config_path: str = ""
    slot: str = ""
    artifact_dir: str = ""
    reason: str = ""
    station_root: str = ""
    config_hash: str = ""
    previous_slot: str = ""

    def environment(self, event: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Build the full environment of a hook for ``event``."""
        source = os.environ if base is None else base
        env = {k: source[k] for k in PASSTHROUGH_ENV if k in source}
        env.update(
            EDGE_EVENT=event,
            EDGE_STATION_ID=self.station_id,
            EDGE_CONFIG_PATH=self.config_path,
            EDGE_SLOT=self.slot,
            EDGE_PREVIOUS_SLOT=self.previous_slot,
            EDGE_ARTIFACT_DIR=self.artifact_dir,
            EDGE_REASON=self.reason,
            EDGE_STATION_ROOT=self.station_root,
            EDGE_CONFIG_HASH=self.config_hash,
            EDGE_PYTHON=sys.executable,
        )
        return env


@dataclass(frozen=True)
class HookResult:
    """Outcome of one hook."""

    name: str
    exit_code: int | None  # None: did not finish (timeout) or could not start
    timed_out: bool
    duration_s: float
    output: str

    @property
    def ok(self) -> bool:
        """Exit 0 within the timeout."""
        return self.exit_code == 0 and not self.timed_out

    def describe(self) -> str:
        """``name: exit 3`` / ``name: timed out after 5.0 s``, plus the last line of output."""
        if self.timed_out:
            what = f"timed out after {self.duration_s:.1f} s"
        elif self.exit_code is None:
            what = "could not start"
        else:
            what = f"exit {self.exit_code}"
        tail = self.output.strip().splitlines()[-1:] if self.output.strip() else []
        return f"{self.name}: {what}" + (f" ({tail[0][:200]})" if tail else "")

    def as_json(self) -> dict[str, object]:
        """For the journal."""
        return {
            "name": self.name,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "duration_s": round(self.duration_s, 3),
            "output": self.output,
        }


@dataclass
class HookReport:
    """All hooks of one event, in the order they ran."""

    event: str
    results: list[HookResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every hook succeeded (trivially true when there are none)."""
        return all(r.ok for r in self.results)

    def failure(self) -> str:
        """Why the event failed (empty when it did not)."""
        return "; ".join(r.describe() for r in self.results if not r.ok)

    def as_json(self) -> dict[str, object]:
        """For the journal."""
        return {"event": self.event, "ok": self.ok, "hooks": [r.as_json() for r in self.results]}


def discover(hooks_dir: Path, event: str) -> list[Path]:
    """Hooks of ``event``: executable files in ``<hooks_dir>/<event>.d/``, in name order.

    Hidden files and editor leftovers (``~``, ``.bak``, ``.disabled``) are ignored; a regular file that is
    not executable is logged and ignored (that is how a hook is switched off: ``chmod -x``).
    """
    if event not in EVENTS:
        raise ValueError(f"unknown hook event {event!r}; expected one of {', '.join(EVENTS)}")
    folder = hooks_dir / f"{event}.d"
    if not folder.is_dir():
        return []
    hooks = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or path.name.endswith(("~", ".bak", ".disabled")) or not path.is_file():
            continue
        if not os.access(path, os.X_OK):
            log.warning("hook %s is not executable: skipped", path)
            continue
        hooks.append(path)
    return hooks


def run_hook(path: Path, env: Mapping[str, str], timeout_s: float, secrets: Iterable[str] = ()) -> HookResult:
    """Run one hook in its own process group; on timeout the whole group is killed."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            [str(path)],
            env=dict(env),
            cwd=str(path.parent),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return HookResult(path.name, None, False, time.monotonic() - start, f"cannot start: {exc}")
    timed_out = False
    try:
        raw, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        raw, _ = proc.communicate()
    output = redact(raw.decode("utf-8", "replace"), secrets)
    if len(output) > MAX_OUTPUT_CHARS:
        output = "[...]\n" + output[-MAX_OUTPUT_CHARS:]
    code = None if timed_out else proc.returncode
    return HookResult(path.name, code, timed_out, time.monotonic() - start, output)


def run_hooks(
    event: str,
    hooks_dir: Path | None,
    context: HookContext,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    secrets: Iterable[str] = (),
) -> HookReport:
    """Run every hook of ``event`` in name order, stopping at the first failure.

    Args:
        event: One of :data:`EVENTS`.
        hooks_dir: Folder holding ``<event>.d/`` folders; ``None`` runs nothing.
        context: Fills the ``EDGE_*`` environment.
        timeout_s: Per-hook time limit.
        secrets: Values to blank out of captured output before it is logged or journaled.

    """
    report = HookReport(event)
    if hooks_dir is None:
        return report
    env = context.environment(event)
    secret_values = [s for s in secrets if s]
    for path in discover(hooks_dir, event):
        result = run_hook(path, env, timeout_s, secret_values)
        report.results.append(result)
        log.info("hook %s/%s", event, result.describe())
        if not result.ok:
            break
    return report


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
