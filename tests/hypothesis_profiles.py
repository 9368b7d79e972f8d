"""Hypothesis profiles for the property-based tests, chosen with HYPOTHESIS_PROFILE.

`ci` (the default) keeps the whole property suite to a few seconds and is derandomised, so
a CI failure reproduces exactly; `thorough` explores forty times as many inputs, with
fresh random draws each run, for a hunt before a release:

    HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_audio_properties.py \
        tests/test_params_properties.py

Test modules import this module for its side effect of loading the profile.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE_VARIABLE = "HYPOTHESIS_PROFILE"
DEFAULT_PROFILE = "ci"

# Decoding and writing files is slower than hypothesis expects of a pure function, and the
# time per example depends on the machine; a hang is caught by a watchdog instead.
_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}

settings.register_profile("ci", max_examples=100, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("thorough", max_examples=4000, print_blob=True, **_COMMON)
settings.load_profile(os.environ.get(PROFILE_VARIABLE, DEFAULT_PROFILE))
