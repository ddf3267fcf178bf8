from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.config import ConfigError, StationConfig, load_config, parse_config

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "station_configs").glob("*.yaml"))


def parse(data: dict[str, Any]) -> StationConfig:
    return parse_config(yaml.safe_dump(data, sort_keys=False), source="test.yaml")


def replay(**settings: Any) -> dict[str, Any]:
    """A replay camera section with ``settings``."""
    return {"source": "replay", "replay": {"dir": "r", **settings}}


def error_of(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(data)
    return info.value


def test_the_three_example_configs_exist_and_validate() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"demo.yaml", "gige-hw-trigger-tls.yaml", "jetson-tensorrt.yaml"} <= names
    for path in EXAMPLES:
        load_config(path)


def test_examples_cover_what_they_promise() -> None:
    demo = load_config(EXAMPLES[0].with_name("demo.yaml"))
    assert demo.camera.source == "replay" and demo.mqtt.host == "localhost"
    gige = load_config(EXAMPLES[0].with_name("gige-hw-trigger-tls.yaml"))
    assert gige.camera.trigger.mode == "hardware" and gige.mqtt.tls is not None
    jetson = load_config(EXAMPLES[0].with_name("jetson-tensorrt.yaml"))
    assert jetson.model.backends[0] == "tensorrt"


def test_minimal_config_gets_sane_defaults(minimal: dict[str, Any]) -> None:
    config = parse(minimal)
    assert config.topic_root == "plant/l1/st1"
    assert config.client_id == "edge-st1"
    assert config.skus[0].top_k == 3
    assert config.model.input_size == (320, 320)
    assert config.review.enabled is False


def test_every_field_has_a_description() -> None:
    missing = []

    def walk(model: type[Any], prefix: str) -> None:
        for name, info in model.model_fields.items():
            if not info.description:
                missing.append(f"{prefix}{name}")
            for arg in (*getattr(info.annotation, "__args__", ()), info.annotation):
                if isinstance(arg, type) and hasattr(arg, "model_fields"):
                    walk(arg, f"{prefix}{name}.")

    walk(StationConfig, "")
    assert missing == []


def test_unknown_key_is_rejected_with_its_path(minimal: dict[str, Any]) -> None:
    minimal["camera"]["exposur_us"] = 100
    err = error_of(minimal)
    assert [i.path for i in err.issues] == ["camera.exposur_us"]
    assert "unknown key" in str(err)


def test_duplicate_sku_ids_point_at_the_duplicate(minimal: dict[str, Any]) -> None:
    minimal["skus"].append({"id": "other", "golden_dir": "g2"})
    minimal["skus"].append({"id": "widget", "golden_dir": "g3"})
    err = error_of(minimal)
    assert err.issues[0].path == "skus[2].id"
    assert "duplicate SKU id 'widget'" in err.issues[0].message
    assert "skus[0]" in err.issues[0].message


@pytest.mark.parametrize(
    ("patch", "path", "words"),
    [
        ({"camera": {"source": "genicam"}}, "camera", "needs 'cti'"),
        ({"camera": {"source": "replay"}}, "camera", "needs a 'replay'"),
        (
            {"camera": {"source": "genicam", "cti": "/opt/p.cti", "trigger": {"mode": "hardware"}}},
            "camera.trigger",
            "needs 'line'",
        ),
        (
            {"camera": {"source": "genicam", "cti": "/opt/p.cti", "device": {"serial": "a", "index": 1}}},
            "camera.device",
            "at most one",
        ),
        (
            {
                "camera": {
                    "source": "genicam",
                    "cti": "/opt/p.cti",
                    "roi": {"x": 16000, "width": 1000, "height": 64},
                }
            },
            "camera.roi",
            "past the largest",
        ),
        ({"camera": {"source": "genicam", "cti": "/opt/producer.so"}}, "camera", "ending in .cti"),
        (
            {
                "camera": {
                    "source": "genicam",
                    "cti": "/opt/p.cti",
                    "roi": {"width": 4096, "height": 3000},
                    "max_frame_pixels": 10_000_000,
                }
            },
            "camera",
            "roi 4096x3000 = 12288000 pixels is above max_frame_pixels (10000000)",
        ),
        ({"camera": {**replay(), "max_frame_pixels": 1 << 31}}, "camera.max_frame_pixels", "less than"),
        ({"camera": {**replay(), "max_frame_pixels": 10.5}}, "camera.max_frame_pixels", "valid integer"),
        ({"model": {"input_size": [320, 100]}}, "model.input_size", "multiples of 64"),
        ({"model": {"backends": ["tensorrt", "tensorrt"]}}, "model.backends", "must not repeat"),
        ({"model": {"backends": ["openvino"]}}, "model.backends[0]", "expected 'tensorrt'"),
        ({"mqtt": {"password": {"env": "PW"}}}, "mqtt", "needs 'username'"),
        ({"mqtt": {"topic_root": "a/#"}}, "mqtt.topic_root", "wildcards"),
        ({"mqtt": {"host": "+"}}, "mqtt.host", "not a host name or IP address"),
        ({"mqtt": {"host": "trail/"}}, "mqtt.host", "not a host name or IP address"),
        ({"mqtt": {"host": "256.1.1.1"}}, "mqtt.host", "not a valid IPv4 address"),
        ({"mqtt": {"host": "-broker"}}, "mqtt.host", "not a host name"),
        ({"mqtt": {"username": " "}}, "mqtt.username", "must not be blank"),
        ({"mqtt": {"tls": {"ca": "ca.pem", "cert": "c.pem"}}}, "mqtt.tls", "both 'cert' and 'key'"),
        ({"review": {"enabled": True, "bind": "0.0.0.0"}}, "review", "at least one user"),
        ({"skus": [{"id": "a", "golden_dir": "../../etc"}]}, "skus[0].golden_dir", "'..'"),
        ({"skus": [{"id": "a b", "golden_dir": "g"}]}, "skus[0].id", "pattern"),
        ({"skus": [{"id": "a", "golden_dir": "g", "min_defect_area_mm2": 1}]}, "skus[0]", "pixel_pitch_mm"),
        ({"skus": []}, "skus", "at least 1"),
        ({"storage": {"ok_sample_rate": 2}}, "storage.ok_sample_rate", "less than or equal to 1"),
        # No coercion: what the engineer wrote is what the station runs, or an error.
        ({"storage": {"ok_sample_rate": False}}, "storage.ok_sample_rate", "valid number"),
        ({"camera": replay(loop=0)}, "camera.replay.loop", "valid boolean"),
        ({"camera": replay(fps="5")}, "camera.replay.fps", "valid number"),
        ({"camera": replay(fps=float("nan"))}, "camera.replay.fps", "finite"),
        ({"camera": replay(fps=float("inf"))}, "camera.replay.fps", "finite"),
        ({"model": {"input_size": [320, True]}}, "model.input_size[1]", "valid integer"),
        ({"mqtt": {"resend_window": -1}}, "mqtt.resend_window", "greater than or equal to 0"),
        ({"mqtt": {"resend_delay": float("nan")}}, "mqtt.resend_delay", "finite"),
        (
            {"camera": {"source": "genicam", "cti": "/opt/p.cti", "features": {"PixelFormat": "Mono8"}}},
            "camera.features",
            "PixelFormat is set by camera.pixel_format, not in camera.features",
        ),
        (
            {"camera": {"source": "genicam", "cti": "/opt/p.cti", "features": {"Gain Auto": "Off"}}},
            "camera.features.Gain Auto.[key]",
            "pattern",
        ),
        (
            {"camera": {"source": "genicam", "cti": "/opt/p.cti", "features": {"Gain": [1, 2]}}},
            "camera.features.Gain",
            "valid",
        ),
    ],
)
def test_named_checks(minimal: dict[str, Any], patch: dict[str, Any], path: str, words: str) -> None:
    for section, value in patch.items():
        minimal[section] = value
    err = error_of(minimal)
    assert path in [i.path for i in err.issues], str(err)
    assert words in str(err)


def test_camera_features_keep_their_order_and_types(minimal: dict[str, Any]) -> None:
    features = {"GainAuto": "Off", "Gain": 6.5, "BlackLevel": 8, "ReverseX": True}
    minimal["camera"] = {"source": "genicam", "cti": "/opt/p.cti", "features": features}
    assert list(parse(minimal).camera.features.items()) == list(features.items())


def test_literal_secret_is_rejected_without_echoing_it(minimal: dict[str, Any]) -> None:
    minimal["mqtt"] = {"username": "u", "password": "hunter2-very-secret"}
    err = error_of(minimal)
    assert err.issues[0].path == "mqtt.password"
    assert "by reference" in str(err)
    assert "hunter2" not in str(err)


def test_secret_reference_needs_exactly_one_source(minimal: dict[str, Any]) -> None:
    minimal["mqtt"] = {"username": "u", "password": {"env": "A", "file": "/run/secrets/a"}}
    assert "exactly one" in str(error_of(minimal))


@pytest.mark.parametrize(
    "host", ["localhost", "broker.plant1.local", "10.0.0.7", "::1", "[fe80::1]", "mqtt-1."]
)
def test_broker_hosts_that_exist_are_accepted(minimal: dict[str, Any], host: str) -> None:
    minimal["mqtt"] = {"host": host}
    assert parse(minimal).mqtt.host == host


def test_config_is_immutable(minimal: dict[str, Any]) -> None:
    config = parse(minimal)
    with pytest.raises(Exception, match="frozen"):
        config.station.id = "x"


def test_sparkplug_is_off_by_default_and_true_keeps_validating(minimal: dict[str, Any]) -> None:
    assert parse(minimal).sparkplug_ids() is None
    minimal["mqtt"] = {"sparkplug": True}
    ids = parse(minimal).sparkplug_ids()
    assert ids is not None
    assert (ids.group_id, ids.node_id, ids.device_id) == ("plant", "l1-st1", "inspection")
    assert ids.client_id == "edge-st1-spb"  # its own connection, beside the JSON client edge-st1
    minimal["mqtt"] = {"sparkplug": False}
    assert parse(minimal).sparkplug_ids() is None


def test_sparkplug_section_names_the_ids(minimal: dict[str, Any]) -> None:
    minimal["mqtt"] = {"sparkplug": {"group_id": "essen", "node_id": "aoi-2", "device_id": "cam1"}}
    ids = parse(minimal).sparkplug_ids()
    assert ids is not None and (ids.group_id, ids.node_id, ids.device_id) == ("essen", "aoi-2", "cam1")
    minimal["mqtt"] = {"sparkplug": {"enabled": False, "group_id": "essen"}}
    assert parse(minimal).sparkplug_ids() is None


def test_a_bad_sparkplug_id_is_reported_once_at_its_path(minimal: dict[str, Any]) -> None:
    # '/', '+' and '#' would change the Sparkplug topic's shape (spBv1.0/<group>/<type>/<node>/<device>).
    minimal["mqtt"] = {"sparkplug": {"node_id": "l1/st1"}}
    err = error_of(minimal)
    assert [i.path for i in err.issues] == ["mqtt.sparkplug.section.node_id"], str(err)
    minimal["mqtt"] = {"sparkplug": "yes"}
    assert error_of(minimal).issues, "a string is neither true/false nor a section"
