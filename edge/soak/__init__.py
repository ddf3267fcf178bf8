"""``edge soak``: the station under injected faults on loopback, and what held (:mod:`edge.soak.cli`).

A tool above the station, like the demo and the bench: it builds the encoders (``export/``), generates the
synthetic SKU (:mod:`edge.synthetic`) and runs ``edge run`` as a subprocess against a real broker.
"""
