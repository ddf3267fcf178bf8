"""The artifact contract shared by the export toolchain and the engines: names, manifest, device fingerprint.

``export/`` writes artifact sets and TensorRT engines; :mod:`edge.engines` checks them before it loads
anything. Neither owns the contract, so it sits below both (on :mod:`edge.model` only).
"""
