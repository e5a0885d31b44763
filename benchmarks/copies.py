"""Which training copies? Held-out accuracy, answers on utterance prefixes, and robustness.

    python benchmarks/copies.py ../shared/data/ravdess --crema-d ../shared/data/crema-d   # ~25 min on 2 cores, copies cached

The experiment that chose ``--augment speed-prefix`` for the bundled models (docs/development.md),
not a page of the docs. Prints one JSON line per result.

1. **Held out.** RAVDESS actors 1-18 train the ensemble of ``ser train`` (8 classes), actors
   19-24 (360 clips) are predicted, for each set of training copies in :data:`VARIANTS`:
   accuracy and UAR of whole clips; for prefixes of each test clip's speech (its first 0.75,
   1.0 and 1.5 s, described as ``ser listen`` describes a window, ``within_speech=True``) the
   share whose label equals the whole clip's, and their accuracy; and the share of test clips
   whose label stays the clean clip's under four :data:`ser_classic.defects.CONDITIONS`
   (white noise at 20 and 10 dB SNR, pink noise at 10 dB, peak -40 dBFS), each saved as 16-bit
   samples. Prefix copies of a training clip are cut from its speech the same way.
2. **Live** (with ``--crema-d``). A model of the bundled ``default``'s setup (RAVDESS and
   CREMA-D, 6 shared classes, every speaker) per variant in :data:`LIVE_VARIANTS`, then the
   recording of ``tests/test_live.py`` (48 RAVDESS clips of actors 21-24, 136 s) through a
   :class:`~ser_classic.live.StreamingAnalyser` with ``too-short`` rows for the first 0.75 s of
   an utterance and without them, against :func:`~ser_classic.timeline.timeline` on the same
   recording: the share of speech rows that carry the timeline's emotion (all of them, and
   those with an emotion).

The feature cache (the user's, as ``ser`` uses) holds the clips' vectors and the speed and
speed-noise copies after a first run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import recall_score

from ser_classic import audio
from ser_classic.defects import CONDITIONS
from ser_classic.features.augmented import augmented_features
from ser_classic.features.conditioning import speech_band, speech_bounds
from ser_classic.features.config import FeatureConfig
from ser_classic.features.extractor import extract_vector, feature_names
from ser_classic.models import Model, train
from ser_classic.parallel import ordered_map
from ser_classic.training import CorpusData, load_corpus_data

PREFIX_SECONDS = (0.75, 1.0, 1.5)
DEFECTS = ("white noise, 20 dB SNR", "white noise, 10 dB SNR", "pink noise, 10 dB SNR", "peak -40 dBFS")
#: name -> the copies it trains on: "sn0".."sn2" the speed-noise copies (x1.0, x0.9, x1.1, each
#: with noise), "sp0", "sp1" the clean speed copies (x0.9, x1.1), "p<seconds>" prefix copies.
VARIANTS = {
    "speed-noise (the earlier default)": ("sn0", "sn1", "sn2"),
    "speed": ("sp0", "sp1"),
    "speed + one noisy copy": ("sp0", "sp1", "sn0"),
    "speed-noise + prefixes 0.75, 1.5 s": ("sn0", "sn1", "sn2", "p0.75", "p1.5"),
    "speed + one noisy copy + prefixes 0.75, 1.5 s": ("sp0", "sp1", "sn0", "p0.75", "p1.5"),  # now --augment speed-prefix
    "speed + one noisy copy + prefixes 0.75, 1.0, 1.5 s": ("sp0", "sp1", "sn0", "p0.75", "p1.0", "p1.5"),
}
LIVE_VARIANTS = ("speed-noise (the earlier default)", "speed + one noisy copy + prefixes 0.75, 1.5 s")
CONFIG = FeatureConfig()


def prefix_vectors(path: str) -> np.ndarray:
    """Vectors of the first :data:`PREFIX_SECONDS` of a clip's speech: ``(len(PREFIX_SECONDS), n_features)``."""
    signal = audio.load(path, sample_rate=CONFIG.sample_rate)
    start, end = speech_bounds(speech_band(signal, CONFIG), CONFIG)
    speech = signal[start:end]
    return np.array([extract_vector(speech[: min(round(s * CONFIG.sample_rate), speech.size)], CONFIG, within_speech=True) for s in PREFIX_SECONDS])


def defect_vectors(item: tuple[int, str]) -> np.ndarray:
    """Vectors of a clip with each of :data:`DEFECTS`, as 16-bit samples at 48 kHz."""
    seed, path = item
    clip = audio.load(path, sample_rate=48000)
    rng = np.random.default_rng(seed)
    vectors = []
    for name in DEFECTS:
        changed = np.round(np.clip(CONDITIONS[name].apply(clip, 48000, rng, []), -1.0, 1.0) * 32767) / 32767
        vectors.append(extract_vector(audio.resample(changed.astype(np.float32), 48000, CONFIG.sample_rate), CONFIG))
    return np.array(vectors)


def copy_tables(data: CorpusData) -> dict[str, pd.DataFrame]:
    """Every copy :data:`VARIANTS` names, aligned with ``data.features``."""
    paths = list(data.table["path"])
    names = feature_names(CONFIG)
    prefixes = np.array(list(ordered_map(prefix_vectors, paths, n_jobs=2)))
    tables = {f"sn{k}": table for k, table in enumerate(data.copies)}
    tables |= {f"sp{k}": table for k, table in enumerate(augmented_features(paths, "speed", config=CONFIG, n_jobs=2))}
    tables |= {f"p{s}": pd.DataFrame(prefixes[:, k], columns=names, index=data.features.index) for k, s in enumerate(PREFIX_SECONDS)}
    return tables


def fit(data: CorpusData, rows: np.ndarray, copies: dict[str, pd.DataFrame], variant: str) -> Model:
    labels = data.table["label"].to_numpy()
    return train(data.features.iloc[rows], labels[rows], classifier="ensemble", feature_config=CONFIG,
                 augmented=[copies[name].iloc[rows] for name in VARIANTS[variant]], augmentation=variant)  # fmt: skip


def labels_of(model: Model, vectors: np.ndarray) -> np.ndarray:
    probabilities = model.predict_proba(pd.DataFrame(vectors, columns=feature_names(CONFIG))).to_numpy()
    return np.asarray(model.classes)[probabilities.argmax(axis=1)]


def held_out(ravdess: Path) -> None:
    data = load_corpus_data([ravdess], augment="speed-noise", n_jobs=2)
    copies = copy_tables(data)
    actors = data.table["speaker"].astype(str).str.extract(r"(\d+)$")[0].astype(int).to_numpy()
    train_rows, test_rows = np.flatnonzero(actors <= 18), np.flatnonzero(actors >= 19)
    truth = data.table["label"].to_numpy()[test_rows]
    paths = list(data.table["path"])
    defects = np.array(list(ordered_map(defect_vectors, [(int(i), paths[i]) for i in test_rows], n_jobs=2)))
    for variant in VARIANTS:
        started = time.monotonic()
        model = fit(data, train_rows, copies, variant)
        whole = labels_of(model, data.features.iloc[test_rows].to_numpy())
        result = {"part": "held out", "copies": variant, "accuracy": round(float(np.mean(whole == truth)), 3),
                  "uar": round(float(recall_score(truth, whole, average="macro")), 3)}  # fmt: skip
        for seconds in PREFIX_SECONDS:
            first = labels_of(model, copies[f"p{seconds}"].iloc[test_rows].to_numpy())
            result[f"first {seconds:g} s: same as whole"] = round(float(np.mean(first == whole)), 3)
            result[f"first {seconds:g} s: accuracy"] = round(float(np.mean(first == truth)), 3)
        for k, name in enumerate(DEFECTS):
            result[name] = round(float(np.mean(labels_of(model, defects[:, k]) == whole)), 3)
        result["seconds"] = round(time.monotonic() - started)
        print(json.dumps(result), flush=True)


def live(ravdess: Path, crema_d: Path) -> None:
    from ser_classic.live import TOO_SHORT, StreamingAnalyser, file_blocks
    from ser_classic.timeline import NON_SPEECH, segments, timeline

    data = load_corpus_data([ravdess, crema_d], classes="shared", augment="speed-noise", n_jobs=2)
    copies = copy_tables(data)
    everyone = np.arange(len(data.table))
    with tempfile.TemporaryDirectory(prefix="ser-copies-") as folder:
        recording = Path(folder) / "long.wav"
        _write_live_recording(ravdess, recording)
        for variant in LIVE_VARIANTS:
            model = fit(data, everyone, copies, variant)
            merged = segments(timeline(recording, model, window_seconds=3.0, hop_seconds=1.0))
            for min_seconds in (0.75, 0.0):
                analyser = StreamingAnalyser(model, min_emotion_seconds=min_seconds)
                rows = [row for block, rate in file_blocks(recording) for row in analyser.feed(block, rate)] + analyser.close()
                speech = [row for row in rows if row["speech"]]
                agree = [row["emotion"] == _timeline_label(merged, row["start"], row["end"], NON_SPEECH) for row in speech]
                decided = [ok for ok, row in zip(agree, speech) if row["emotion"] != TOO_SHORT]
                print(json.dumps({"part": "live", "copies": variant, "too-short below s": min_seconds, "speech rows": len(speech),
                                  "too-short rows": len(speech) - len(decided), "agree, all speech rows": round(float(np.mean(agree)), 3),
                                  "agree, rows with an emotion": round(float(np.mean(decided)), 3)}), flush=True)  # fmt: skip


def _timeline_label(merged: pd.DataFrame, start: float, end: float, non_speech: str) -> str:
    """The emotion the timeline's segments give most of the speech in ``[start, end]`` (as tests/test_live.py)."""
    overlap = (np.minimum(merged["end"], end) - np.maximum(merged["start"], start)).clip(lower=0)
    speech = (merged["emotion"] != non_speech) & (overlap > 0)
    by_emotion = overlap[speech].groupby(merged.loc[speech, "emotion"]).sum()
    return str(by_emotion.idxmax()) if len(by_emotion) else non_speech


def _write_live_recording(ravdess: Path, path: Path) -> None:
    """The recording of tests/test_live.py: actors 21-24, three clips of each of four emotions."""
    import soundfile

    rate, rng, parts = 48000, np.random.default_rng(0), []
    noise = lambda seconds: (1e-4 * rng.standard_normal(int(seconds * rate))).astype(np.float32)  # noqa: E731
    parts.append(noise(1.5))
    for actor in ("21", "22", "23", "24"):
        for code in ("05", "04", "03", "06"):
            for statement, repetition in ((1, 1), (2, 1), (1, 2)):
                clip, _ = soundfile.read(ravdess / f"Actor_{actor}" / f"03-01-{code}-02-0{statement}-0{repetition}-{actor}.flac", dtype="float32")
                start, end = speech_bounds(speech_band(audio.resample(clip, rate, CONFIG.sample_rate), CONFIG), CONFIG)
                parts += [clip[start * rate // CONFIG.sample_rate : end * rate // CONFIG.sample_rate], noise(0.3)]
            parts.append(noise(1.7))
    soundfile.write(path, np.concatenate(parts), rate, subtype="PCM_16")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ravdess", type=Path, help="The RAVDESS folder (Actor_XX/*.flac).")
    parser.add_argument("--crema-d", type=Path, default=None, help="The CREMA-D folder: also the live part.")
    args = parser.parse_args(argv)
    held_out(args.ravdess)
    if args.crema_d is not None:
        live(args.ravdess, args.crema_d)


if __name__ == "__main__":
    main()
