"""Golden-part enrollment at the station (``edge enroll``)."""
