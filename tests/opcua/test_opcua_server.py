"""The OPC UA server against a real asyncua client over TCP on loopback (Basic256Sha256, user tokens)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.uaerrors import UaStatusCodeError
from fixtures import opcua_client
from fixtures.mosquitto import free_port
from fixtures.opcua_client import Events, client_cert, read, vision_system

from edge.inspection.types import Box, Verdict
from edge.mqtt.commands import CommandRejected
from edge.mqtt.payloads import StatePayload, VerdictPayload
from edge.opcua.server import OpcUaError, VisionServer
from edge.opcua.settings import OpcUaAccount, OpcUaSettings
from edge.review.auth import hash_password

PASSWORD = "line-7-secret"
SKUS = ["bracket", "plate"]


def settings(tmp: Path, **changes: Any) -> OpcUaSettings:
    fast = hash_password(PASSWORD, iterations=1000)
    base = OpcUaSettings(
        bind="127.0.0.1",
        port=free_port(),
        certificate=tmp / "server" / "cert.der",
        private_key=tmp / "server" / "key.pem",
        generate_certificate=True,
        security=("Basic256Sha256_SignAndEncrypt",),
        accounts=(OpcUaAccount("plc", fast, controller=True), OpcUaAccount("hmi", fast)),
        allow_anonymous=False,
        trusted_clients=None,
        application_uri="urn:edge-inspection:test:line7:station1",
        server_name="edge inspection line7/station1",
        station_id="station1",
    )
    return replace(base, **changes)


class Station:
    """What the server calls back into: recipe selection as the station's command handler does it."""

    def __init__(self) -> None:
        self.selected: list[str] = []

    def activate(self, sku: str) -> None:
        if sku not in SKUS:
            raise CommandRejected(f"unknown SKU '{sku}'; known: {', '.join(SKUS)}")
        self.selected.append(sku)


@pytest.fixture
def station() -> Station:
    return Station()


@pytest.fixture
def server(tmp_path: Path, station: Station) -> Iterator[VisionServer]:
    srv = VisionServer(settings(tmp_path), station.activate, lambda: list(SKUS))
    srv.start()
    yield srv
    srv.stop()


async def connect(
    srv: VisionServer,
    tmp: Path,
    user: str | None = "plc",
    password: str = PASSWORD,
    security: str | None = "Basic256Sha256,SignAndEncrypt",
    name: str = "client",
) -> Client:
    return await opcua_client.connect(srv.settings.endpoint, tmp, user, password, security, name)


def verdict(seq: int, code: Verdict = Verdict.NG) -> VerdictPayload:
    if code in (Verdict.OK, Verdict.NG):
        boxes = [Box(10, 20, 30, 40, 2.5, 900), Box(100, 5, 8, 9, 1.5, 60)] if code is Verdict.NG else []
        return VerdictPayload(
            part_id=f"p{seq}", seq=seq, sku="plate", verdict=code, score=2.5, threshold=1.2, boxes=boxes
        )
    return VerdictPayload(part_id=f"p{seq}", seq=seq, sku="plate", verdict=code, reason="frame unreadable")


async def wait_for(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def test_browse_state_results_and_counters(server: VisionServer, tmp_path: Path) -> None:
    async def scenario() -> None:
        client = await connect(server, tmp_path, user="hmi")
        try:
            idx, system = await vision_system(client)
            names = {(await c.read_browse_name()).Name for c in await system.get_children()}
            assert {"VisionStateMachine", "RecipeManagement", "ResultManagement", "Counters"} <= names
            assert (await read(system, idx, "VisionStateMachine", "CurrentState")).Text == "Preoperational"
            assert await read(system, idx, "RecipeManagement", "Recipes") == SKUS

            server.publish_state(StatePayload(status="online", since=time.time(), sku="plate"))
            assert server.wait_idle()
            assert (await read(system, idx, "VisionStateMachine", "CurrentState")).Text == "Operational"
            assert await read(system, idx, "RecipeManagement", "ActiveRecipe") == "plate"

            etype = await client.nodes.base_event_type.get_child(f"{idx}:ResultReadyEventType")
            events = Events()
            sub = await client.create_subscription(50, events)
            await sub.subscribe_events(system, etype)
            for seq, code in enumerate((Verdict.NG, Verdict.OK, Verdict.ERROR, Verdict.NG), start=1):
                server.publish_verdict(verdict(seq, code))
            await wait_for(lambda: len(events.received) == 4)
            got = [(e.ResultId, e.ResultCode, e.Verdict, e.BoxCount) for e in events.received]
            assert got == [("p1", 1, "NG", 2), ("p2", 0, "OK", 0), ("p3", 3, "ERROR", 0), ("p4", 1, "NG", 2)]
            assert events.received[2].Reason == "frame unreadable"

            last = ("ResultManagement", "LastResult")
            assert await read(system, idx, *last, "ResultId") == "p4"
            assert await read(system, idx, *last, "Score") == pytest.approx(2.5)
            assert await read(system, idx, *last, "Threshold") == pytest.approx(1.2)
            assert await read(system, idx, *last, "BoxX") == [10, 100]
            assert await read(system, idx, *last, "BoxH") == [40, 9]
            assert await read(system, idx, *last, "Boxes") == "[[10,20,30,40,2.5,900],[100,5,8,9,1.5,60]]"
            counters = {n: await read(system, idx, "Counters", n) for n in ("PartsOk", "PartsNg", "Errors")}
            assert counters == {"PartsOk": 1, "PartsNg": 2, "Errors": 1}

            server.publish_state(StatePayload(status="fault", since=time.time(), reason="camera: gone"))
            assert server.wait_idle()
            assert (await read(system, idx, "VisionStateMachine", "CurrentState")).Text == "Error"
            assert await read(system, idx, "VisionStateMachine", "Reason") == "camera: gone"
        finally:
            await client.disconnect()

    asyncio.run(scenario())


def test_result_variables_can_be_subscribed(server: VisionServer, tmp_path: Path) -> None:
    class Changes:
        def __init__(self) -> None:
            self.values: list[Any] = []

        def datachange_notification(self, node: Any, value: Any, data: Any) -> None:
            self.values.append(value)

    async def scenario() -> None:
        client = await connect(server, tmp_path, user="hmi")
        try:
            idx, system = await vision_system(client)
            node = await system.get_child([f"{idx}:ResultManagement", f"{idx}:LastResult", f"{idx}:Seq"])
            changes = Changes()
            sub = await client.create_subscription(20, changes)
            await sub.subscribe_data_change(node)
            await wait_for(lambda: changes.values == [0])  # the initial value
            for seq in (1, 2, 3):
                server.publish_verdict(verdict(seq))
                assert server.wait_idle()
                await wait_for(lambda s=seq: changes.values[-1] == s)
        finally:
            await client.disconnect()

    asyncio.run(scenario())


def test_recipe_selection_is_for_controllers(server: VisionServer, station: Station, tmp_path: Path) -> None:
    async def scenario() -> None:
        plc = await connect(server, tmp_path, user="plc")
        hmi = await connect(server, tmp_path, user="hmi", name="hmi")
        try:
            idx, system = await vision_system(plc)
            recipes = await system.get_child(f"{idx}:RecipeManagement")
            assert await recipes.call_method(f"{idx}:ActivateRecipe", "bracket") == [
                0,
                "recipe bracket active",
            ]
            assert await read(system, idx, "RecipeManagement", "ActiveRecipe") == "bracket"
            error, message = await recipes.call_method(f"{idx}:ActivateRecipe", "gearbox")
            assert error == 1
            assert "unknown SKU 'gearbox'" in message

            idx2, system2 = await vision_system(hmi)
            recipes2 = await system2.get_child(f"{idx2}:RecipeManagement")
            with pytest.raises(UaStatusCodeError, match="BadUserAccessDenied"):
                await recipes2.call_method(f"{idx2}:ActivateRecipe", "plate")
            active = await system2.get_child([f"{idx2}:RecipeManagement", f"{idx2}:ActiveRecipe"])
            with pytest.raises(UaStatusCodeError):  # nothing is writable from outside
                await active.write_value(ua.Variant("plate", ua.VariantType.String))
        finally:
            await plc.disconnect()
            await hmi.disconnect()
        assert station.selected == ["bracket"]

    asyncio.run(scenario())


def test_refused_logins(server: VisionServer, tmp_path: Path) -> None:
    async def scenario() -> None:
        with pytest.raises(UaStatusCodeError, match="BadIdentityTokenRejected"):
            await connect(server, tmp_path, user=None)  # anonymous
        with pytest.raises(UaStatusCodeError, match="BadUserAccessDenied"):
            await connect(server, tmp_path, user="plc", password="wrong")
        with pytest.raises(UaStatusCodeError, match="BadUserAccessDenied"):
            await connect(server, tmp_path, user="nobody")
        # No unencrypted endpoint unless the config lists 'None'.
        endpoints = await Client(server.settings.endpoint).connect_and_get_server_endpoints()
        assert {e.SecurityPolicyUri.rsplit("#", 1)[-1] for e in endpoints} == {"Basic256Sha256"}
        assert {e.SecurityMode for e in endpoints} == {ua.MessageSecurityMode.SignAndEncrypt}
        with pytest.raises(Exception):  # noqa: B017 (the client fails in several ways on a missing endpoint)
            await connect(server, tmp_path, security=None)

    asyncio.run(scenario())


def test_anonymous_when_allowed_reads_only(tmp_path: Path, station: Station) -> None:
    srv = VisionServer(settings(tmp_path, allow_anonymous=True), station.activate, lambda: list(SKUS))
    srv.start()

    async def scenario() -> None:
        client = await connect(srv, tmp_path, user=None)
        try:
            idx, system = await vision_system(client)
            assert await read(system, idx, "RecipeManagement", "Recipes") == SKUS
            recipes = await system.get_child(f"{idx}:RecipeManagement")
            with pytest.raises(UaStatusCodeError, match="BadUserAccessDenied"):
                await recipes.call_method(f"{idx}:ActivateRecipe", "plate")
        finally:
            await client.disconnect()

    try:
        asyncio.run(scenario())
    finally:
        srv.stop()
    assert station.selected == []


def test_trust_list_refuses_unknown_clients(tmp_path: Path, station: Station) -> None:
    trusted = tmp_path / "trusted"
    trusted.mkdir()

    async def scenario(srv: VisionServer) -> None:
        with pytest.raises(Exception):  # noqa: B017 (refused while opening the secure channel)
            await connect(srv, tmp_path, name="stranger")
        client = await connect(srv, tmp_path, name="known")
        await client.disconnect()

    async def certs() -> None:
        cert, _ = await client_cert(tmp_path, "known")
        (trusted / cert.name).write_bytes(cert.read_bytes())

    asyncio.run(certs())
    srv = VisionServer(settings(tmp_path, trusted_clients=trusted), station.activate, lambda: list(SKUS))
    srv.start()
    try:
        asyncio.run(scenario(srv))
    finally:
        srv.stop()


def test_certificate_is_made_once_and_kept(tmp_path: Path, station: Station) -> None:
    cfg = settings(tmp_path)
    for _ in range(2):
        srv = VisionServer(cfg, station.activate, lambda: list(SKUS))
        srv.start()
        srv.stop()
        if _ == 0:
            first = cfg.certificate.read_bytes()
    assert cfg.certificate.read_bytes() == first
    assert cfg.private_key.read_bytes().startswith(b"-----BEGIN")


def test_busy_port_is_a_clear_error(server: VisionServer, tmp_path: Path, station: Station) -> None:
    second = VisionServer(
        settings(tmp_path / "b", port=server.settings.port), station.activate, lambda: list(SKUS)
    )
    with pytest.raises(OpcUaError, match=f"opc.tcp://127.0.0.1:{server.settings.port}/"):
        second.start()
    second.stop()
    assert server.running
