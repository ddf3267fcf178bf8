"""``station:`` section: where the station sits in the plant (also the MQTT topic root)."""

from __future__ import annotations

from pydantic import Field

from edge.config.base import Identifier, Section


class StationSection(Section):
    """Identity of the station in the plant hierarchy site / line / station."""

    site: Identifier = Field(description="Plant or site name, first level of the MQTT topic root.")
    line: Identifier = Field(description="Production line, second level of the MQTT topic root.")
    id: Identifier = Field(description="Station id, unique on its line; third level of the MQTT topic root.")
    name: str = Field(
        default="", max_length=200, description="Free-text name shown on the HMI and review UI."
    )
