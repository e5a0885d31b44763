"""What a worker server loads before it forks workers (see
:func:`ser_classic.parallel.worker_server`): importing this module imports the extraction code
and runs it once on a synthetic tone (:func:`~ser_classic.features.extractor.warm_up`), so
every worker forked after starts with SciPy's FFT and signal modules and the filter banks ready.

Importing it *is* its work, so nothing in the package imports it: the CLI names it to the
server. The garbage collector is paused meanwhile (collecting would free next to nothing) and
what was built is frozen after, so that no worker's collection walks through it and copies
its pages.
"""

import gc

import soundfile  # noqa: F401  (workers decode the files they are handed)
import soxr  # noqa: F401  (and resample them)

from . import files  # noqa: F401  (the function pool workers are handed lives there)
from .config import FeatureConfig
from .extractor import warm_up

gc.disable()
try:
    warm_up(FeatureConfig())
finally:
    gc.freeze()
    gc.enable()
