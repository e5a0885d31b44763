"""The robustness conditions (:data:`ser_classic.defects.CONDITIONS`) written as files, as a user's
recorder would save them: one writer for ``tests/test_robustness.py`` and ``benchmarks/robustness.py``."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import soundfile

from ser_classic import audio
from ser_classic.defects import CONDITIONS

#: The clean copies' folder, beside one folder per condition.
CLEAN = "clean"


def folder_name(condition: str) -> str:
    """The folder of a condition's copies: its name in lower case, runs of other characters as
    one ``-`` ("DC offset, 0.5x + 0.4" -> ``dc-offset-0-5x-0-4``)."""
    return re.sub(r"[^a-z0-9]+", "-", condition.lower()).strip("-")


def held_out_clips(ravdess_root: Path) -> list[Path]:
    """The 60 clips of the robustness table: every 6th speech clip of actors 19-24, in name order."""
    return [clip for actor in range(19, 25) for clip in sorted((ravdess_root / f"Actor_{actor}").glob("*.flac"))][::6]


def babble_talkers(crema_d_root: Path, sample_rate: int, count: int = 24) -> list[np.ndarray]:
    """``count`` CREMA-D clips spread over its speakers, at ``sample_rate``: voices no RAVDESS clip has."""
    clips = sorted(crema_d_root.glob("*.flac"))
    return [audio.load(clip, sample_rate=sample_rate) for clip in clips[:: max(1, len(clips) // count)][:count]]


def write_conditions(
    clips: Sequence[Path],
    talkers: Sequence[np.ndarray],
    folder: Path,
    *,
    only: Collection[str] | None = None,
    ending: str = ".wav",
) -> dict[str, list[Path]]:
    """Each clip saved clean and with each condition (those in ``only``, when given), as 16-bit
    WAV (or FLAC, ``ending=".flac"``: the same samples) at the clip's own rate (what a sound card
    gives), samples beyond full scale clipped, into ``folder/<folder_name(condition)>/``:
    condition (or :data:`CLEAN`) -> files, in clip order.

    Clip ``k`` draws its noise from a generator seeded with ``k``, so every run writes the same
    files. ``talkers`` (for babble) must be at the clips' rate.
    """
    conditions = {name: condition for name, condition in CONDITIONS.items() if only is None or name in only}
    written: dict[str, list[Path]] = {CLEAN: [], **{name: [] for name in conditions}}
    for index, clip in enumerate(clips):
        signal, sample_rate = soundfile.read(clip, dtype="float64")
        signal = audio.to_mono(signal)
        copies = {CLEAN: signal}
        for name, condition in conditions.items():
            copies[name] = condition.apply(signal, sample_rate, np.random.default_rng(index), talkers)
        for name, copy in copies.items():
            target = folder / folder_name(name) / f"{clip.stem}{ending}"
            target.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(target, np.clip(copy, -1.0, 1.0), sample_rate, subtype="PCM_16")
            written[name].append(target)
    return written
