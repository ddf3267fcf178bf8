"""Operator review station: archive index, review web UI, dispositions, golden-bank feedback loop.

``edge.review.index`` is the only way anything reads the archive (the runtime writes through it, the UI reads
through it); the web modules (``server``, ``views``, ``auth``) import nothing from the runtime's hot path.
"""
