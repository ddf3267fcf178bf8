"""The whole station config: one section per concern plus the schema ``version``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.config.base import Section, located_error
from edge.config.camera import CameraSection
from edge.config.model import ModelSection
from edge.config.mqtt import MqttSection, SparkplugSection
from edge.config.opcua import OpcUaSection
from edge.config.review import ReviewSection
from edge.config.skus import SkuSection
from edge.config.station import StationSection
from edge.config.storage import StorageSection

CURRENT_VERSION = 1
"""Schema version this software writes and validates; older files are migrated (see ``migrations``)."""

COMPARISON_MEMORY_LIMIT_BYTES = 1 << 30
"""The comparison encoder matches every frame location with every location of the k templates: a float32
matrix of ``k * (h/8 * w/8)^2`` entries. 1 GiB holds k=3 at 640x640 (0.5 GB) or k=32 at 320x320 (0.3 GB)."""


@dataclass(frozen=True)
class SparkplugIds:
    """The Sparkplug B identity of a station, defaults filled in from the ``station`` section."""

    group_id: str
    node_id: str
    device_id: str
    client_id: str
    primary_host_id: str | None = None


class StationConfig(Section):
    """Station config, schema version 1. Secrets are references; paths are checked when resolved."""

    model_config = Section.model_config | {"title": "Edge inspection station config"}

    version: Literal[1] = Field(description="Schema version of this file; this software reads 0 to 1.")
    station: StationSection = Field(description="Where the station sits: site, line, id.")
    camera: CameraSection = Field(description="Image source.")
    model: ModelSection = Field(default_factory=ModelSection, description="Model artifacts and backend.")
    skus: list[SkuSection] = Field(min_length=1, description="Products inspected, with golden images.")
    mqtt: MqttSection = Field(default_factory=MqttSection, description="Broker connection.")
    storage: StorageSection = Field(default_factory=StorageSection, description="Data and archive.")
    review: ReviewSection = Field(default_factory=ReviewSection, description="Review web UI.")
    opcua: OpcUaSection = Field(
        default_factory=OpcUaSection, description="OPC UA server for PLCs and hosts (off by default)."
    )

    @field_validator("skus")
    @classmethod
    def _unique_sku_ids(cls, skus: list[SkuSection]) -> list[SkuSection]:
        seen: dict[str, int] = {}
        for index, sku in enumerate(skus):
            if sku.id in seen:
                raise located_error(f"duplicate SKU id '{sku.id}' (also skus[{seen[sku.id]}])", index, "id")
            seen[sku.id] = index
        return skus

    @model_validator(mode="after")
    def _comparison_fits(self) -> StationConfig:
        h, w = self.model.input_size
        locations = (h // 8) * (w // 8)
        for index, sku in enumerate(self.skus):
            need = sku.top_k * locations * locations * 4
            if need > COMPARISON_MEMORY_LIMIT_BYTES:
                raise located_error(
                    f"top_k {sku.top_k} at model.input_size {h}x{w} needs {need / 2**30:.1f} GiB for the "
                    f"comparison (every frame location against every template location; at most "
                    f"{COMPARISON_MEMORY_LIMIT_BYTES / 2**30:.0f} GiB): lower top_k or the input size",
                    "skus",
                    index,
                    "top_k",
                )
        return self

    @property
    def topic_root(self) -> str:
        """MQTT topic root: configured, or ``<site>/<line>/<station id>``."""
        if self.mqtt.topic_root is not None:
            return self.mqtt.topic_root
        return f"{self.station.site}/{self.station.line}/{self.station.id}"

    @property
    def client_id(self) -> str:
        """MQTT client id: configured, or ``edge-<station id>``."""
        return self.mqtt.client_id or f"edge-{self.station.id}"

    def sparkplug_ids(self) -> SparkplugIds | None:
        """Sparkplug B group, node and device ids, or ``None`` when Sparkplug is off (the default)."""
        section = self.mqtt.sparkplug
        if section is False:
            return None
        if section is True:
            section = SparkplugSection()
        if not section.enabled:
            return None
        return SparkplugIds(
            group_id=section.group_id or self.station.site,
            node_id=section.node_id or f"{self.station.line}-{self.station.id}",
            device_id=section.device_id,
            client_id=section.client_id or f"{self.client_id}-spb",
            primary_host_id=section.primary_host_id,
        )

    def sku(self, sku_id: str) -> SkuSection:
        """Return the SKU with this id; ``KeyError`` if the config has none."""
        for sku in self.skus:
            if sku.id == sku_id:
                return sku
        raise KeyError(sku_id)
