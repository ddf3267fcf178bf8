"""The station's OPC UA server (asyncua), in a thread of its own with its own event loop.

Address space (namespace :data:`~edge.opcua.settings.NAMESPACE_URI`, documented in ``docs/opcua.md``),
shaped after OPC 40100-1 "OPC UA for Machine Vision" as far as it maps::

    Objects/VisionSystem                       (emits ResultReadyEventType)
        VisionStateMachine/CurrentState        Preoperational | Halted | Error | Operational
        VisionStateMachine/Reason              why (fault, pause, safe mode), "" when Operational
        RecipeManagement/ActiveRecipe          the selected SKU
        RecipeManagement/Recipes               every SKU with a golden bank
        RecipeManagement/ActivateRecipe(ExternalId) -> (Error, Message)
        ResultManagement/LastResult/...        ResultId, ProductId, ResultCode, Verdict, Score, ...
        Counters/PartsOk, PartsNg, NotInspected, Errors

Security like the rest of the station: Basic256Sha256 (sign and encrypt) by default with the station's
application certificate, user name tokens checked against hashed passwords, anonymous sessions refused
unless the config allows them (then read-only), ``ActivateRecipe`` for ``controller`` accounts only, no
node writable from outside. A client certificate is accepted unless a trust list is configured.

The station thread never waits for OPC UA: verdicts and states are queued to the server's loop and
applied there in order (a slow or stuck client cannot hold up inspection). Recipe selection calls back
into the station on the server's loop (quick; a refusal comes back as ``Error`` != 0 with its reason).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from asyncua import ua
from asyncua.common.node import Node
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import ADMIN_TYPES, USER_TYPES, SimpleRoleRuleset, User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager
from asyncua.ua.object_ids import ObjectIds
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge.inspection.types import Verdict
from edge.mqtt.commands import CommandRejected
from edge.mqtt.payloads import StatePayload, VerdictPayload
from edge.opcua.mapping import ResultValues, result_values, vision_state
from edge.opcua.settings import NAMESPACE_URI, OpcUaSettings
from edge.review.auth import PasswordHashError, verify_password

log = logging.getLogger(__name__)

#: Updates waiting for the server's loop beyond this are dropped, oldest first (the server shows the latest
#: state and result; the guaranteed path for verdicts is the MQTT outbox).
MAX_PENDING = 1000

_POLICIES = {
    "Basic256Sha256_SignAndEncrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    "Basic256Sha256_Sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
    "None": ua.SecurityPolicyType.NoSecurity,
}


def _nid(identifier: int) -> ua.NodeId:
    """A namespace-0 numeric node id."""
    return ua.NodeId(ua.Int32(identifier))


_CALL = _nid(ObjectIds.CallRequest_Encoding_DefaultBinary)
_WRITE = _nid(ObjectIds.WriteRequest_Encoding_DefaultBinary)
_USER_IDS = frozenset(_nid(t) for t in USER_TYPES) - {_CALL, _WRITE}
_ADMIN_IDS = frozenset(_nid(t) for t in ADMIN_TYPES)

#: The counters of the ``Counters`` object by verdict.
_COUNTERS = {
    Verdict.OK: "PartsOk",
    Verdict.NG: "PartsNg",
    Verdict.NOT_INSPECTED: "NotInspected",
    Verdict.ERROR: "Errors",
}
#: ``LastResult`` variables (and ``ResultReady`` event fields): browse name, value attribute, type.
_RESULT_FIELDS: tuple[tuple[str, str, ua.VariantType], ...] = (
    ("ResultId", "result_id", ua.VariantType.String),
    ("ProductId", "product_id", ua.VariantType.String),
    ("ResultCode", "result_code", ua.VariantType.Int32),
    ("Verdict", "verdict", ua.VariantType.String),
    ("Score", "score", ua.VariantType.Double),
    ("Threshold", "threshold", ua.VariantType.Double),
    ("BoxCount", "box_count", ua.VariantType.UInt32),
    ("BoxX", "box_x", ua.VariantType.Int32),
    ("BoxY", "box_y", ua.VariantType.Int32),
    ("BoxW", "box_w", ua.VariantType.Int32),
    ("BoxH", "box_h", ua.VariantType.Int32),
    ("Boxes", "boxes_json", ua.VariantType.String),
    ("Reason", "reason", ua.VariantType.String),
    ("Seq", "seq", ua.VariantType.UInt64),
)
_ARRAYS = frozenset({"BoxX", "BoxY", "BoxW", "BoxH"})
_ZERO: dict[ua.VariantType, Any] = {ua.VariantType.String: "", ua.VariantType.Double: 0.0}


def _argument(name: str, datatype: int, description: str) -> ua.Argument:
    """A scalar method argument with its name (PLC engineering tools show the names)."""
    arg = ua.Argument()
    arg.Name = name
    arg.DataType = _nid(datatype)
    arg.ValueRank = -1
    arg.Description = ua.LocalizedText(description)
    return arg


class OpcUaError(RuntimeError):
    """The OPC UA server could not start (port, certificate, trust list)."""


class _Accounts(UserManager):
    """User name tokens against the configured hashed passwords; anonymous only when allowed."""

    def __init__(self, settings: OpcUaSettings) -> None:
        self._hashes = {a.name: a.password_hash for a in settings.accounts}
        self._anonymous = settings.allow_anonymous

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if username is None:
            return User(role=UserRole.Anonymous) if self._anonymous else None
        stored = self._hashes.get(username)
        if stored is None or password is None:
            log.warning("OPC UA login refused for user '%s'", username)
            return None
        try:
            ok = verify_password(password, stored)
        except PasswordHashError as exc:
            log.error("OPC UA user '%s': %s", username, exc)
            return None
        if not ok:
            log.warning("OPC UA login refused for user '%s'", username)
            return None
        return User(role=UserRole.User, name=username)


class _Permissions(SimpleRoleRuleset):
    """Sessions read, browse and subscribe; only controllers call methods; nobody writes or edits nodes."""

    def __init__(self, controllers: frozenset[str]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._controllers = controllers

    def check_validity(self, user: Any, action_type_id: ua.NodeId, body: Any) -> bool:
        if user is None or action_type_id in _ADMIN_IDS or action_type_id == _WRITE:
            return False
        if action_type_id == _CALL:
            return user.role is UserRole.User and user.name in self._controllers
        return action_type_id in _USER_IDS


@dataclass
class _Nodes:
    state: Node
    reason: Node
    active_recipe: Node
    recipes: Node
    result: dict[str, Node]
    result_time: Node
    counters: dict[str, Node]


class VisionServer:
    """The OPC UA server of one station run. :meth:`start`, then ``publish_*`` from any thread; :meth:`stop`.

    Args:
        settings: Endpoint, certificates, security and accounts.
        activate_recipe: Selects a SKU on the station, as ``cmd/sku`` does (the station's command
            handler); raises :class:`~edge.mqtt.commands.CommandRejected` with the reason to refuse.
        recipes: The SKUs a client may select.

    """

    def __init__(
        self,
        settings: OpcUaSettings,
        activate_recipe: Callable[[str], None],
        recipes: Callable[[], list[str]],
    ) -> None:
        self.settings = settings
        self._activate = activate_recipe
        self._recipes = recipes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, Any]] | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._lock = threading.Condition()  # guards and announces _pending
        self._pending = 0
        self.dropped = 0
        self._counts = dict.fromkeys(Verdict, 0)
        self._nodes: _Nodes | None = None
        self._events: Any = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self, timeout_s: float = 30.0) -> None:
        """Start serving; returns once the endpoint listens.

        Raises:
            OpcUaError: The server did not start (busy port, unreadable certificate, ...).

        """
        self._thread = threading.Thread(target=self._run, name="opcua", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise OpcUaError(f"OPC UA server on {self.settings.endpoint} did not start in {timeout_s:.0f} s")
        if self._error is not None:
            raise OpcUaError(f"OPC UA server on {self.settings.endpoint}: {self._error}") from self._error
        log.info("OPC UA server on %s (%s)", self.settings.endpoint, ", ".join(self.settings.security))

    def stop(self, timeout_s: float = 10.0) -> None:
        """Say Preoperational (stopping), close every session, stop the loop (idempotent)."""
        self._submit("stop", None)  # after every update already queued
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("OPC UA server did not stop within %.0f s", timeout_s)
        self._thread = None

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._thread is not None and self._thread.is_alive() and self._error is None

    # -- updates from the station -------------------------------------------------------------------------

    def publish_state(self, state: StatePayload) -> None:
        """Show the station's state (VisionStateMachine) and selected SKU."""
        self._submit("state", state)

    def publish_verdict(self, verdict: VerdictPayload) -> None:
        """Show a verdict: ``LastResult``, the counters and a ``ResultReady`` event."""
        self._submit("verdict", verdict)

    def publish_recipes(self) -> None:
        """Read the selectable SKUs again (after a bank was added or removed)."""
        self._submit("recipes", None)

    def _submit(self, kind: str, payload: Any) -> None:
        loop, queue = self._loop, self._queue
        if loop is None or queue is None or loop.is_closed():
            return
        with self._lock:
            self._pending += 1
        try:
            loop.call_soon_threadsafe(self._enqueue, kind, payload)
        except RuntimeError:  # stopping: the loop is gone
            self._done()

    def _enqueue(self, kind: str, payload: Any) -> None:
        assert self._queue is not None
        if self._queue.qsize() >= MAX_PENDING:
            self._queue.get_nowait()
            self.dropped += 1
            self._done()
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("OPC UA server behind: %d update(s) dropped (oldest first)", self.dropped)
        self._queue.put_nowait((kind, payload))

    def _done(self) -> None:
        """One submitted update is applied or dropped."""
        with self._lock:
            self._pending -= 1
            self._lock.notify_all()

    def wait_idle(self, timeout_s: float = 5.0) -> bool:
        """Wait until every submitted update is applied (tests, orderly stop)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending == 0, timeout_s)

    # -- the server's thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start() or logged: the station keeps inspecting
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.exception("OPC UA server stopped")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        server = await self._server()
        self._nodes = await self._build(server)
        async with server:
            self._ready.set()
            while True:
                kind, payload = await self._queue.get()
                try:
                    if kind == "stop":
                        await self._write_state("Preoperational", "station stopping")
                        return
                    await self._apply(kind, payload)
                except Exception:  # one bad update must not stop the server
                    log.exception("OPC UA update %s failed", kind)
                finally:
                    self._done()

    async def _server(self) -> Server:
        s = self.settings
        server = Server(user_manager=_Accounts(s))
        await server.init()
        server.set_endpoint(s.endpoint)
        server.set_server_name(s.server_name)
        await server.set_application_uri(s.application_uri)
        server.product_uri = "urn:edge-inspection"
        server.manufacturer_name = "edge-inspection"
        controllers = frozenset(a.name for a in s.accounts if a.controller)
        server.set_security_policy(
            [_POLICIES[p] for p in s.security], permission_ruleset=_Permissions(controllers)
        )
        tokens: list[type] = [ua.UserNameIdentityToken]
        if s.allow_anonymous:
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        if s.generate_certificate:
            s.certificate.parent.mkdir(parents=True, exist_ok=True)
            await setup_self_signed_certificate(
                s.private_key,
                s.certificate,
                s.application_uri,
                socket.gethostname(),
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
                {"commonName": s.server_name, "organizationName": "edge-inspection"},
            )
        await server.load_certificate(s.certificate)
        await server.load_private_key(s.private_key)
        if s.trusted_clients is not None:
            store = TrustStore([s.trusted_clients], [])
            await store.load()
            options = CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT
            server.set_certificate_validator(CertificateValidator(options, store))
        return server

    async def _build(self, server: Server) -> _Nodes:
        idx = await server.register_namespace(NAMESPACE_URI)
        system = await server.nodes.objects.add_object(idx, "VisionSystem")
        ident = await system.add_object(idx, "Identification")
        await ident.add_property(idx, "StationId", self.settings.station_id)
        machine = await system.add_object(idx, "VisionStateMachine")
        state = await machine.add_variable(idx, "CurrentState", ua.LocalizedText("Preoperational", "en"))
        reason = await machine.add_variable(idx, "Reason", "starting", ua.VariantType.String)
        recipes_obj = await system.add_object(idx, "RecipeManagement")
        active = await recipes_obj.add_variable(idx, "ActiveRecipe", "", ua.VariantType.String)
        recipes = await recipes_obj.add_variable(idx, "Recipes", list(self._recipes()), ua.VariantType.String)
        await recipes_obj.add_method(
            idx,
            "ActivateRecipe",
            self._on_activate,
            [_argument("ExternalId", ObjectIds.String, "SKU to inspect from now on")],
            [
                _argument("Error", ObjectIds.Int32, "0: activated; 1: refused (see Message)"),
                _argument("Message", ObjectIds.String, "what was done, or why not"),
            ],
        )
        results = await system.add_object(idx, "ResultManagement")
        last = await results.add_object(idx, "LastResult")
        fields: dict[str, Node] = {}
        for name, _, vtype in _RESULT_FIELDS:
            initial: Any = [] if name in _ARRAYS else _ZERO.get(vtype, 0)
            fields[name] = await last.add_variable(
                idx, name, ua.Variant(initial, vtype, is_array=name in _ARRAYS)
            )
        result_time = await last.add_variable(idx, "Timestamp", datetime.fromtimestamp(0, timezone.utc))
        counters_obj = await system.add_object(idx, "Counters")
        counters = {
            name: await counters_obj.add_variable(idx, name, ua.Variant(0, ua.VariantType.UInt64))
            for name in _COUNTERS.values()
        }
        event_type = await server.create_custom_event_type(
            idx,
            "ResultReadyEventType",
            ObjectIds.BaseEventType,
            [(name, vtype) for name, _, vtype in _RESULT_FIELDS if name not in _ARRAYS],
        )
        self._events = await server.get_event_generator(event_type, system.nodeid)
        return _Nodes(state, reason, active, recipes, fields, result_time, counters)

    async def _on_activate(self, parent: ua.NodeId, external_id: ua.Variant) -> list[ua.Variant]:
        sku = external_id.Value if isinstance(external_id, ua.Variant) else external_id
        try:
            if not isinstance(sku, str) or not sku:
                raise CommandRejected("ExternalId must be a non-empty SKU id")
            self._activate(sku)
        except CommandRejected as exc:
            log.warning("OPC UA ActivateRecipe(%r) refused: %s", sku, exc)
            return [ua.Variant(1, ua.VariantType.Int32), ua.Variant(str(exc), ua.VariantType.String)]
        log.info("OPC UA ActivateRecipe(%s)", sku)
        assert self._nodes is not None
        await self._nodes.active_recipe.write_value(ua.Variant(sku, ua.VariantType.String))
        return [
            ua.Variant(0, ua.VariantType.Int32),
            ua.Variant(f"recipe {sku} active", ua.VariantType.String),
        ]

    async def _apply(self, kind: str, payload: Any) -> None:
        nodes = self._nodes
        assert nodes is not None
        if kind == "state":
            state: StatePayload = payload
            await self._write_state(vision_state(state), state.reason or "")
            await nodes.active_recipe.write_value(ua.Variant(state.sku or "", ua.VariantType.String))
        elif kind == "recipes":
            await nodes.recipes.write_value(ua.Variant(list(self._recipes()), ua.VariantType.String))
        elif kind == "verdict":
            verdict: VerdictPayload = payload
            # Counters first: a client that reads them on the ResultReady event sees this part counted.
            self._counts[verdict.verdict] += 1
            name = _COUNTERS[verdict.verdict]
            await nodes.counters[name].write_value(
                ua.Variant(self._counts[verdict.verdict], ua.VariantType.UInt64)
            )
            await self._write_result(result_values(verdict))

    async def _write_state(self, state: str, reason: str) -> None:
        assert self._nodes is not None
        await self._nodes.state.write_value(ua.LocalizedText(state, "en"))
        await self._nodes.reason.write_value(ua.Variant(reason, ua.VariantType.String))

    async def _write_result(self, values: ResultValues) -> None:
        assert self._nodes is not None
        when = datetime.fromtimestamp(values.timestamp, timezone.utc)
        for name, attr, vtype in _RESULT_FIELDS:
            value = getattr(values, attr)
            await self._nodes.result[name].write_value(ua.Variant(value, vtype, is_array=name in _ARRAYS))
        await self._nodes.result_time.write_value(when)
        event = self._events.event
        for name, attr, _ in _RESULT_FIELDS:
            if name not in _ARRAYS:
                setattr(event, name, getattr(values, attr))
        event.Severity = 500 if values.result_code else 100
        await self._events.trigger(time_attr=when, message=f"{values.verdict} {values.result_id}")
