"""The model, defined once: torch modules, their IO contract, the model spec and id, the backbone catalog.

The bottom of the import graph for everything that touches the encoders: ``export/`` builds artifacts from
it, ``edge.engines`` loads those artifacts against its IO contract, the inspection feeds it. It imports
nothing from the runtime, the engines or ``export/`` (``tests/test_layers.py`` keeps that true).
"""
