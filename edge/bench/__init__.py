"""``edge bench``: latency of the inspection per stage, of the encoders per precision, of the whole station.

A tool above the station: it builds the encoders it measures (``export/``) and stands a station up on the
synthetic SKU (:mod:`edge.synthetic`), as ``edge demo`` does.
"""
