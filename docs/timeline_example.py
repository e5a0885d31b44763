"""Build the example recording behind ``docs/timeline.png`` from RAVDESS.

Writes, into OUT (audio never enters the repository):

- ``recording.wav``: 24 clips of actors 19-24 (calm, happy, angry, sad in turn), each trimmed as
  the feature extractor trims clips, with 1 s of quiet noise before, between and after them
  (-80 dBFS, the level of the clips' own background);
- ``clips.csv``: where each clip is in the recording and its true emotion;
- ``train.csv``: a manifest of the same four emotions from actors 1-18 only, so that a model
  trained on it has never heard the speakers of the recording.

Usage::

    python docs/timeline_example.py ../shared/data/ravdess example
    ser train example/train.csv --classes calm,happy,angry,sad --cv-folds 0 --out example/held-out.joblib
    ser timeline example/recording.wav --model example/held-out.joblib --output example/timeline.csv --plot docs/timeline.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile

from ser_classic import audio
from ser_classic.corpus import read_corpus
from ser_classic.features import FeatureConfig
from ser_classic.features.conditioning import speech_band, speech_bounds

EMOTIONS = ["calm", "happy", "angry", "sad"]
RECORDING_ACTORS = range(19, 25)
TRAINING_ACTORS = range(1, 19)
PAUSE_SECONDS = 1.0


def main(ravdess: Path, out: Path) -> None:
    corpus = read_corpus(ravdess.resolve(), "ravdess")
    out.mkdir(parents=True, exist_ok=True)
    training = corpus[
        corpus["label"].isin(EMOTIONS) & corpus["speaker"].isin([f"Actor_{a:02d}" for a in TRAINING_ACTORS])
    ]
    training[["path", "label", "speaker"]].to_csv(out / "train.csv", index=False)

    config = FeatureConfig()
    rate = config.sample_rate
    rng = np.random.default_rng(0)

    def pause() -> np.ndarray:
        return (1e-4 * rng.standard_normal(int(PAUSE_SECONDS * rate))).astype(np.float32)

    parts, rows, position = [pause()], [], PAUSE_SECONDS
    for turn, actor in enumerate(RECORDING_ACTORS):
        for emotion in EMOTIONS:
            strong = corpus[
                (corpus["actor"] == actor) & (corpus["label"] == emotion) & (corpus["intensity"] == "strong")
            ]
            path = sorted(strong["path"])[turn % len(strong)]
            clip = audio.load(path, sample_rate=rate)
            start, end = speech_bounds(speech_band(clip, config), config)
            clip = clip[start:end]
            rows.append(
                {
                    "start": round(position, 3),
                    "end": round(position + clip.size / rate, 3),
                    "emotion": emotion,
                    "path": path,
                }
            )
            parts += [clip, pause()]
            position += clip.size / rate + PAUSE_SECONDS
    soundfile.write(out / "recording.wav", np.concatenate(parts), rate, subtype="FLOAT")
    pd.DataFrame(rows).to_csv(out / "clips.csv", index=False)
    print(f"wrote {out / 'recording.wav'} ({position:.1f} s, {len(rows)} clips), clips.csv, train.csv")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
