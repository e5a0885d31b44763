"""Does the equipment decide the answer? The same speech with everyday recording defects, through `ser predict`.

    python benchmarks/robustness.py ../shared/data/ravdess --crema-d ../shared/data/crema-d --before 8eced05
    # rewrites the equipment section of docs/robustness.md

60 speech clips of actors 19-24 (every 6th, ``tests/conditions.py``) are saved as 16-bit WAV at
48 kHz once clean and once with each defect of :data:`ser_classic.defects.CONDITIONS` (DC
offsets, mains hum, a click, white, pink and babble noise at 20 and 10 dB SNR against the
speech's level, a low and a high input gain, stereo with one silent channel). Babble mixes six
CREMA-D clips (voices no RAVDESS clip has). Then ``ser predict FOLDER --format csv`` runs in a
new process on each folder with the bundled default model, and the table gives, per defect, the
share of clips whose label equals the clean copy's and how many got "no speech".

``--before REV`` runs the same commands with the code and bundled model of git revision REV
(checked out in a temporary worktree, run by this interpreter with the worktree first on the
path): the table shows both, from one run. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pandas as pd
import soundfile
from readme_section import write_json, write_section

from ser_classic.defects import CONDITIONS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conditions import CLEAN, babble_talkers, folder_name, held_out_clips, write_conditions  # noqa: E402

_log = logging.getLogger("robustness")
ROOT = Path(__file__).resolve().parents[1]
#: The code that runs ``ser`` in a new process from a checkout (its ``__version__`` comes from
#: the installed metadata, which any checkout of this project shares).
_SER_MAIN = "import sys; from ser_classic.cli import main; sys.argv[0] = 'ser'; main()"


@contextmanager
def checkout(revision: str) -> object:
    """A temporary git worktree of ``revision``, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="ser-before-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), revision], check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)], check=False, capture_output=True)


def labels(folder: Path, code: Path | None) -> pd.Series:
    """``ser predict FOLDER`` in a new process (the code of ``code``, a checkout, or this one):
    the emotion of each file, by file stem."""
    command = [sys.executable, "-c", _SER_MAIN, "predict", str(folder), "--format", "csv", "--jobs", "2"]
    environment = {**os.environ, "PYTHONPATH": str(code or ROOT)}
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=tempfile.gettempdir())
    if result.returncode not in (0, 1):  # 1: some file got an error row (no speech is one)
        raise SystemExit(f"{shlex.join(command)} failed (exit code {result.returncode}):\n{result.stderr[-3000:]}")
    _log.info("%s: %s in %.1f s", code or "this checkout", folder.name, time.perf_counter() - started)
    frame = pd.read_csv(io.StringIO(result.stdout), keep_default_na=False)
    return frame.set_index(frame["path"].map(lambda path: Path(path).stem))["emotion"]


def agreement(folders: dict[str, Path], code: Path | None) -> dict[str, dict[str, float]]:
    """Per condition: share of labels equal to the clean copy's, and the count of "no speech"."""
    clean = labels(folders[CLEAN], code)
    results = {}
    for condition in CONDITIONS:
        found = labels(folders[condition], code).reindex(clean.index)
        results[condition] = {"same": float((found == clean).mean()), "no_speech": int((found == "no speech").sum())}
    results[CLEAN] = {"same": 1.0, "no_speech": int((clean == "no speech").sum())}
    return results


def render(results: dict[str, dict[str, dict[str, float]]], n_clips: int, before: str | None) -> str:
    columns = (["before"] if before else []) + ["after"]
    header = "| what was added | where it comes from | " + " | ".join(
        f"same label ({name}) | no speech ({name})" for name in columns) + " |"
    lines = [
        "### Before and after version 5, measured",
        "",
        f"`python benchmarks/robustness.py ../shared/data/ravdess --crema-d ../shared/data/crema-d"
        f"{f' --before {before}' if before else ''}` made this table. {n_clips} speech clips of RAVDESS actors 19-24",
        "(every 6th) were saved as 16-bit WAV at 48 kHz, clean and with one defect each; `ser predict` (a new process,",
        "the bundled `default` model) classified every folder. *Same label*: the share of clips whose label equals the",
        "clean copy's. *No speech*: how many got the emotion `no speech`. SNRs are against the speech's own level",
        "(its frames within 30 dB of its loud ones, `ser_classic.augmentation.speech_power`), not the whole clip's;",
        "babble mixes six CREMA-D clips." + (f" *before*: the code and bundled model of `{before}`; *after*: this version." if before else ""),
        "",
        header,
        "|---|---|" + "---|---|" * len(columns),
    ]
    for condition, description in [(name, CONDITIONS[name].description) for name in CONDITIONS] + [(CLEAN, "the clean copies")]:
        cells = []
        for name in columns:
            entry = results[name][condition]
            cells += [f"{entry['same']:.0%}", f"{entry['no_speech']:.0f} of {n_clips}"]
        lines.append(f"| {condition} | {description} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ravdess", type=Path)
    parser.add_argument("--crema-d", type=Path, required=True, help="CREMA-D folder: the babble's voices")
    parser.add_argument("--before", help="git revision whose code and bundled model make the 'before' columns")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "robustness.md")
    parser.add_argument("--json", type=Path, default=ROOT / "reports" / "robustness.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    clips = held_out_clips(args.ravdess)
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ser-robustness-")))
        rate = int(soundfile.info(clips[0]).samplerate)
        write_conditions(clips, babble_talkers(args.crema_d, rate), scratch)
        folders = {name: scratch / folder_name(name) for name in [CLEAN, *CONDITIONS]}
        results = {}
        if args.before:
            results["before"] = agreement(folders, stack.enter_context(checkout(args.before)))
        results["after"] = agreement(folders, None)
    text = render(results, len(clips), args.before)
    print(text)
    write_section(args.out, "equipment", text)
    write_json(args.json, {"before_revision": args.before, "n_clips": len(clips), **results})


if __name__ == "__main__":
    main()
