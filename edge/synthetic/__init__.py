"""A synthetic product line: generated parts with known defects, and a station workspace that replays them.

Below the demo, the bench and the soak (all three stand a station up on generated parts) and below the export
(INT8 calibration falls back to the synthetic golden parts); it imports nothing but the model package.
"""
