"""Import-level behaviour of the package."""

import subprocess
import sys


def test_import_is_lazy_and_exposes_feature_extractor() -> None:
    code = "import sys, ser_classic; assert 'sklearn' not in sys.modules; from ser_classic import FeatureExtractor; print(FeatureExtractor.__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "FeatureExtractor"
