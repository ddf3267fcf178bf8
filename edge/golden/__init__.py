"""Golden banks built from a station config: enrollment, calibration, self-test, content-addressed cache."""
