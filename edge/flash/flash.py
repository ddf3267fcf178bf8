"""``edge flash``: put a new config on a station without ever leaving the line without a valid config.

    validate -> resolve -> build banks (calibrate, self-test) -> pre-flash hooks -> stage + seal
      -> install into the inactive slot -> switch ``current`` (atomic rename) -> request reload
      -> post-flash hooks -> health-check hooks -> commit

Every failure before the switch aborts and leaves the station as it was; every failure after it switches
``current`` back to the previous slot (rollback) and asks the station to reload it. Each flash is journaled
(start and end records) with who, when, the config hash, the result, why, and the hooks' output.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.config.errors import ConfigError
from edge.config.loader import parse_document, validate_document
from edge.config.render import config_hash
from edge.config.resolve import ResolvedConfig, default_allowed_roots, resolve_config
from edge.config.signing import SignatureError, load_trusted_keys, signature_path, verify_file
from edge.flash.hooks import HookContext, HookReport, run_hooks
from edge.flash.interrupted import clear_pending, mark_pending, resolve_locked
from edge.flash.journal import JOURNAL_NAME, Journal, now, who
from edge.flash.lock import FlashError, station_lock
from edge.flash.reload import ReloadRequest, request_reload, station_outcome
from edge.flash.slots import CONFIG_NAME, SlotError, StationRoot, write_json_durable
from edge.golden.banks import BankReport, build_banks, capability_lines

log = logging.getLogger(__name__)

BankBuilder = Callable[[ResolvedConfig, Path, Path], BankReport]
"""``(resolved config, artifact dir, out dir) -> report``: builds the banks into ``out dir``."""

TRUSTED_KEYS_DIR = "trusted_keys"
BANK_CACHE_DIR = Path("cache") / "banks"


@dataclass
class FlashOptions:
    """How to flash.

    Attributes:
        root: Station root (slots, journal, caches).
        hooks_dir: Folder with ``<event>.d/`` hook folders; ``None`` runs no hooks.
        by: Who flashes (default ``$USER``).
        dry_run: Stop after the self-test: nothing is installed, no hooks run.
        hook_timeout_s: Time limit per hook.
        extra_roots: Extra folders the config may point into.
        env: Environment for ``{env: NAME}`` secrets (default ``os.environ``).
        bank_builder: Replaces :func:`build_banks` (fault injection in tests).
        load_producer: Load the GenTL producer during resolve.
        confirm_timeout_s: How long a running station has to confirm that it runs the new config (load
            banks and model, start the pipeline) before the flash rolls back.

    """

    root: Path
    hooks_dir: Path | None = None
    by: str | None = None
    dry_run: bool = False
    hook_timeout_s: float = 60.0
    extra_roots: Sequence[Path] = ()
    env: Mapping[str, str] | None = None
    bank_builder: BankBuilder | None = None
    load_producer: bool = True
    confirm_timeout_s: float = 120.0


@dataclass
class FlashResult:
    """What happened."""

    flash_id: str
    result: str  # committed | rolled_back | aborted | dry_run | unchanged (refresh: nothing to do)
    reason: str = ""
    config_hash: str = ""
    slot: str | None = None
    previous_slot: str | None = None
    steps: list[str] = field(default_factory=list)
    #: per SKU, what the station can see (``edge.golden.banks.capability_lines``); the CLI prints it.
    capability: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The config is active (or, for a dry run, would be accepted)."""
        return self.result in ("committed", "dry_run", "unchanged")


class _Flash:
    """One run of the state machine (kept as an object so every step can journal into one record)."""

    def __init__(self, config_file: Path, options: FlashOptions) -> None:
        self.file = config_file
        self.opt = options
        self.store = StationRoot(options.root)
        self.journal = Journal(options.root / JOURNAL_NAME)
        # A dry run writes nothing on the station (no journal, staging, bank cache or lock): its staging and
        # bank cache live in a temporary folder removed at the end.
        self.scratch = Path(tempfile.mkdtemp(prefix="edge-flash-dry-run-")) if options.dry_run else None
        self.result = FlashResult(flash_id=uuid.uuid4().hex[:12], result="aborted")
        self.hooks: list[dict[str, Any]] = []
        self.secrets: list[str] = []
        self.resolved: ResolvedConfig | None = None
        self.banks: BankReport | None = None
        self.switched = False

    def step(self, name: str) -> None:
        self.result.steps.append(name)
        log.info("flash %s: %s", self.result.flash_id, name)

    def run(self) -> FlashResult:
        try:
            return self._journaled()
        finally:
            if self.scratch is not None:
                shutil.rmtree(self.scratch, ignore_errors=True)

    def _record(self, record: dict[str, Any]) -> None:
        if self.scratch is None:
            self.journal.append(record)

    def _journaled(self) -> FlashResult:
        self._record(
            {
                "event": "flash",
                "phase": "start",
                "flash_id": self.result.flash_id,
                "by": who(self.opt.by),
                "config": str(self.file),
                "dry_run": self.opt.dry_run,
            }
        )
        try:
            self._run()
        except FlashError as exc:
            self.result.reason = str(exc)
            if self.switched:
                self._rollback()
        except Exception as exc:  # anything unexpected still ends in a consistent, journaled station
            log.exception("flash %s failed unexpectedly", self.result.flash_id)
            self.result.reason = f"unexpected {type(exc).__name__}: {exc}"
            if self.switched:
                self._rollback()
        finally:
            if self.scratch is None:
                self.store.clean_staging()
            self._record(
                {
                    "event": "flash",
                    "phase": "end",
                    "flash_id": self.result.flash_id,
                    "by": who(self.opt.by),
                    "config": str(self.file),
                    "config_hash": self.result.config_hash,
                    "result": self.result.result,
                    "reason": self.result.reason,
                    "slot": self.result.slot,
                    "previous_slot": self.result.previous_slot,
                    "steps": self.result.steps,
                    "banks": self.banks.as_json() if self.banks else None,
                    "hooks": self.hooks,
                }
            )
            clear_pending(self.opt.root)  # after the end record: the journal never loses the outcome
        return self.result

    def _run(self) -> None:
        self.step("validate")
        try:
            data = self.file.read_bytes()
        except OSError as exc:
            raise FlashError("validate", f"cannot read {self.file}: {exc.strerror}") from None
        try:
            document = parse_document(data.decode("utf-8"), source=str(self.file))
            config = validate_document(document, source=str(self.file))
        except UnicodeDecodeError:
            raise FlashError("validate", f"{self.file} is not UTF-8 text") from None
        except ConfigError as exc:
            raise FlashError("validate", str(exc)) from None
        self.result.config_hash = config_hash(config)

        keys = load_trusted_keys(self.opt.root / TRUSTED_KEYS_DIR)
        signer = None
        if keys:
            self.step("verify signature")
            try:
                signer = verify_file(data, signature_path(self.file), keys)
            except SignatureError as exc:
                raise FlashError("signature", str(exc)) from None

        self.step("resolve")
        roots = default_allowed_roots(self.file, self.opt.root, self.opt.extra_roots)
        try:
            resolved = resolve_config(
                config,
                source=self.file,
                roots=roots,
                env=self.opt.env,
                lines=document.lines,
                load_producer=self.opt.load_producer,
            )
        except ConfigError as exc:
            raise FlashError("resolve", str(exc)) from None
        self.resolved = resolved
        self.secrets = [s.get_secret_value() for s in resolved.secrets.values()]
        artifact_dir = resolved.paths["model.artifact_dir"]

        self.result.previous_slot = self.store.current_name()
        target = self.store.inactive_name()
        self.result.slot = target
        staging = self.store.new_staging() if self.scratch is None else self.scratch / "staging"
        staging.mkdir(exist_ok=True)
        (staging / CONFIG_NAME).write_bytes(data)

        self.step("build banks, calibrate, self-test")
        builder = self.opt.bank_builder or self._default_builder
        self.banks = builder(resolved, artifact_dir, staging / "banks")
        write_json_durable(staging / "bank_report.json", self.banks.as_json())
        self.result.capability = capability_lines(self.banks)
        if not self.banks.ok:
            raise FlashError("build banks", "; ".join(self.banks.problems()))

        if self.opt.dry_run:
            self.result.result = "dry_run"
            self.result.reason = "dry run: config valid, banks built and self-tested; nothing installed"
            return

        context = HookContext(
            station_id=config.station.id,
            config_path=str(staging / CONFIG_NAME),
            slot=target,
            previous_slot=self.result.previous_slot or "",
            artifact_dir=str(artifact_dir),
            reason=f"flash {self.result.flash_id} by {who(self.opt.by)}",
            station_root=str(self.opt.root),
            config_hash=self.result.config_hash,
        )
        self._hooks("pre-flash", context)

        self.step("install")
        self.store.seal(
            staging,
            {
                "config_hash": self.result.config_hash,
                "station_id": config.station.id,
                "topic_root": config.topic_root,
                "flash_id": self.result.flash_id,
                "flashed_at": now(),
                "by": who(self.opt.by),
                "source": str(self.file),
                "signed_by": signer,
                "model_id": self.banks.model_id,
                "artifact_dir": str(artifact_dir),
                # Relative paths in the installed config stay relative to where it was flashed from.
                "base_dir": str(self.file.resolve().parent),
            },
        )
        self.store.install(staging, target)
        self.step("switch")
        # Cut short from here on (power, SIGKILL), the next start settles this flash (edge.flash.interrupted).
        mark_pending(
            self.opt.root,
            {"flash_id": self.result.flash_id, "slot": target, "previous_slot": self.result.previous_slot},
        )
        self.store.activate(target)
        self.switched = True

        self.step("reload")
        request = self._reload("flash")
        self.hooks.append({"event": "reload", "detail": request.detail})
        if request.signalled_pid is not None:
            # Commit only what the line really runs: a station that refuses the new config keeps the old
            # one in memory, and would boot into the new one (and fail) at its next restart.
            self.step("station confirms")
            problem = station_outcome(
                self.opt.root,
                flash_id=self.result.flash_id,
                config_hash=self.result.config_hash,
                pid=request.signalled_pid,
                timeout_s=self.opt.confirm_timeout_s,
            )
            self.hooks.append({"event": "station", "detail": problem or "runs the new config"})
            if problem is not None:
                raise FlashError("station", problem)

        context = HookContext(
            **{**context.__dict__, "config_path": str(self.store.slot_path(target) / CONFIG_NAME)}
        )
        self._hooks("post-flash", context)
        self._hooks("health-check", context)
        try:
            self.store.current()
        except SlotError as exc:
            raise FlashError("health-check", str(exc)) from None
        self.step("commit")
        self.result.result = "committed"
        self.result.reason = f"slot {target} active"

    def _default_builder(self, resolved: ResolvedConfig, artifact_dir: Path, out_dir: Path) -> BankReport:
        cache = (self.opt.root if self.scratch is None else self.scratch) / BANK_CACHE_DIR
        cache.mkdir(parents=True, exist_ok=True)
        return build_banks(resolved, artifact_dir, out_dir, cache_dir=cache)

    def _hooks(self, event: str, context: HookContext) -> HookReport:
        self.step(f"{event} hooks")
        report = run_hooks(
            event, self.opt.hooks_dir, context, timeout_s=self.opt.hook_timeout_s, secrets=self.secrets
        )
        self.hooks.append(report.as_json())
        if not report.ok:
            raise FlashError(f"{event} hook", report.failure())
        return report

    def _reload(self, why: str) -> ReloadRequest:
        current = self.store.current_name()
        try:
            hash_ = self.store.current().config_hash if current else ""
        except SlotError:
            hash_ = ""
        return request_reload(
            self.opt.root, config_hash=hash_, slot=current, flash_id=self.result.flash_id, reason=why
        )

    def _rollback(self) -> None:
        previous = self.result.previous_slot
        self.step(f"rollback to {previous or 'no config'}")
        try:
            self.store.activate(previous)
            self.hooks.append({"event": "reload", "detail": self._reload("rollback").detail})
        except OSError as exc:  # pragma: no cover - a failing disk; journaled, nothing more we can do
            self.result.reason += f"; rollback failed: {exc}"
            return
        self.result.result = "rolled_back"


def flash(config_file: Path, options: FlashOptions) -> FlashResult:
    """Flash ``config_file`` onto the station at ``options.root``; see the module docstring.

    Returns:
        The result; ``result.ok`` is False when the flash was aborted or rolled back (``reason`` says why).

    """
    if options.dry_run:  # changes nothing on the station: no lock to take (and no folder to create for it)
        return _Flash(config_file, options).run()
    try:
        with station_lock(options.root):
            if not options.dry_run:
                resolve_locked(
                    options.root,
                    Journal(options.root / JOURNAL_NAME),
                    options.hooks_dir,
                    options.hook_timeout_s,
                    options.by,
                )
            return _Flash(config_file, options).run()
    except FlashError as exc:
        return FlashResult(flash_id="", result="aborted", reason=str(exc))
