"""``storage:`` section: where the station keeps its data and NG image archive, and for how long."""

from __future__ import annotations

from pydantic import Field

from edge.config.base import ConfigPath, Section


class StorageSection(Section):
    """Local data, archive and retention."""

    data_dir: ConfigPath = Field(
        default="/var/lib/edge/data", description="Working data: MQTT outbox, metrics, state."
    )
    archive_dir: ConfigPath = Field(
        default="/var/lib/edge/archive", description="Archive of NG (and sampled OK) images with their maps."
    )
    retention_days: int = Field(default=30, ge=1, le=3650, description="Archived images older than this go.")
    quota_mb: int = Field(default=2048, ge=16, description="Archive size cap; oldest images go first.")
    ok_sample_rate: float = Field(
        default=0.01, ge=0.0, le=1.0, description="Fraction of OK parts archived for later review."
    )
