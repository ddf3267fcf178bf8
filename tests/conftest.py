# Shared fixtures in tests/fixtures/ (importable as `fixtures`: pytest puts tests/ on sys.path).
# mosquitto: a real Mosquitto broker on a free loopback port.
# engines.artifact_set: one exported, gated artifact set per session (`artifacts`) and the `gpu` marker skip.
# engines.fake_tensorrt: fake tensorrt + pycuda modules (`fake_gpu`) for CPU tests of the TensorRT code.
# station_link: the station's own MQTT link on that broker; inspection: encoders and a synthetic SKU.
pytest_plugins = [
    "fixtures.mosquitto",
    "fixtures.station_link",
    "fixtures.inspection",
    "engines.artifact_set",
    "engines.fake_tensorrt",
]
