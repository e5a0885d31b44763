"""Golden feature vectors: a few clips' vectors as this extractor version computes them.

``tests/golden_vectors.json`` holds them with the :data:`~ser_classic.features.EXTRACTOR_VERSION`
that made them; ``test_features.py`` re-extracts the clips and compares. A change of the vectors
that does not raise the version fails there (a stale feature cache and the bundled models would
otherwise go on as if nothing changed); raising the version fails there too, until the file is
written again with

    python tests/golden_vectors.py        # after raising EXTRACTOR_VERSION, and only then
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import DATA_ROOT

from ser_classic.features import EXTRACTOR_VERSION, FeatureExtractor

GOLDEN_FILE = Path(__file__).with_name("golden_vectors.json")
#: Clips under the data folder: a loud and a quiet RAVDESS clip (48 kHz), a stereo one, a CREMA-D clip (16 kHz).
GOLDEN_CLIPS = (
    "ravdess/Actor_01/03-01-05-02-01-01-01.flac",
    "ravdess/Actor_20/03-01-02-01-02-01-20.flac",
    "ravdess/Actor_20/03-01-03-01-02-01-20.flac",
    "crema-d/1001_DFA_ANG_XX.flac",
)


def extract_golden() -> dict[str, list[float]]:
    """Clip -> its vector, computed now."""
    extractor = FeatureExtractor()
    return {clip: extractor.extract_file(DATA_ROOT / clip).tolist() for clip in GOLDEN_CLIPS}


if __name__ == "__main__":
    GOLDEN_FILE.write_text(json.dumps({"extractor_version": EXTRACTOR_VERSION, "vectors": extract_golden()}, indent=1) + "\n")
    print(f"wrote {GOLDEN_FILE} for extractor version {EXTRACTOR_VERSION}")
