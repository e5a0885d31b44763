"""The package as a user installs it: a wheel built from this tree, installed (not editable) in a
fresh virtual environment, used from an unrelated folder.

Proves that what ``ser predict`` and ``ser app`` need travels inside the wheel (the bundled
models, the demo), that no cache or file appears in the user's folder, and that the core
environment stays within the size the docs state. Slow (it installs the dependencies from the
package registry), so marked ``slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from demo_support import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: The core environment (``pip install .``) at most, in MB: half of the 1.6 GB it once was.
MAX_ENVIRONMENT_MB = 800

pytestmark = pytest.mark.slow


def _run(*command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _size_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink()) / 1e6


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A fresh venv with the wheel installed (core only), its size, and its ``bin`` folder."""
    root = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", root / "dist", PROJECT_ROOT)
    (wheel,) = (root / "dist").glob("ser_classic-*.whl")
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", venv)
    _run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel)
    return {"wheel": wheel, "venv": venv, "bin": venv / "bin", "size_mb": _size_mb(venv)}


@pytest.fixture()
def elsewhere(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An unrelated working folder, and an environment whose user cache lies inside ``tmp_path``."""
    folder = tmp_path / "somewhere"
    folder.mkdir()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("SER_CACHE_DIR", None)
    env.pop("PYTHONPATH", None)
    return folder, env


def test_the_wheel_carries_the_bundled_models(installed: dict[str, object]) -> None:
    import zipfile

    names = zipfile.ZipFile(installed["wheel"]).namelist()  # type: ignore[arg-type]
    for model in ("default", "ravdess8"):
        assert f"ser_classic/bundled/ser-{model}.joblib" in names
        assert f"ser_classic/bundled/ser-{model}.card.json" in names
        assert f"ser_classic/bundled/ser-{model}.training.npz" in names  # what `ser adapt` refits on


def test_the_core_environment_is_small(installed: dict[str, object]) -> None:
    assert installed["size_mb"] <= MAX_ENVIRONMENT_MB, f"the environment of `pip install .` takes {installed['size_mb']:.0f} MB"


def test_installed_ser_predicts_a_clip_from_another_folder(
    installed: dict[str, object], elsewhere: tuple[Path, dict[str, str]], ravdess_root: Path
) -> None:
    folder, env = elsewhere
    clip = ravdess_root / "Actor_24" / "03-01-05-01-01-01-24.flac"
    ser = Path(installed["bin"]) / "ser"  # type: ignore[arg-type]
    result = _run(ser, "predict", clip, "--format", "jsonl", cwd=folder, env=env)
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["error"] in ("", None) and f"p_{row['emotion']}" in row and 0 < row["confidence"] <= 1
    located = _run(Path(installed["bin"]) / "python", "-c", "import ser_classic; print(ser_classic.__file__)", cwd=folder, env=env)
    assert str(installed["venv"]) in located.stdout, "the installed package, not the source tree, was used"
    assert list(folder.iterdir()) == [], "nothing is written to the user's folder"


def test_installed_ser_app_starts(installed: dict[str, object], elsewhere: tuple[Path, dict[str, str]]) -> None:
    folder, env = elsewhere
    _run(Path(installed["bin"]) / "python", "-m", "pip", "install", "--quiet", f"{installed['wheel']}[app]")
    port = free_port()
    log = folder.parent / "app.log"
    with open(log, "wb") as stream:
        process = subprocess.Popen(
            [str(Path(installed["bin"]) / "ser"), "app", "--port", str(port)], cwd=folder, env=env, stdout=stream, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"ser app exited with code {process.returncode}:\n{log.read_text()}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"ser app did not answer within 120 s:\n{log.read_text()}"
            time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(timeout=30)
