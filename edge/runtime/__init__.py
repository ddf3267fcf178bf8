"""Station runtime: the hot loop (capture -> queue -> inspection -> outbox), its wiring, metrics and demo.

See ``docs/runtime.md``. Entry points: :class:`edge.runtime.app.StationApp` (``edge run``),
:class:`edge.runtime.pipeline.Pipeline` (the loop itself), :func:`edge.runtime.bench.bench_end_to_end`.
"""
