"""Batch prediction over files and folders: one row per input file, errors included."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from functools import partial
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .atomic import leftover_temporary
from .corpus import find_audio_files
from .errors import NoSpeechError, SERError
from .features.extractor import warm_up
from .model_file import ModelFile
from .outputs import RESUMABLE_FORMATS, read_rows
from .parallel import helper_process

if TYPE_CHECKING:
    import pandas as pd

    from .models import Model

__all__ = [
    "NO_SPEECH",
    "MIN_PITCH_RANGE_SEMITONES",
    "MIN_VOICED_FRACTION",
    "classify_vector",
    "model_and_vectors",
    "prediction_columns",
    "predict_files",
    "resumable_rows",
    "speaker_of",
    "speech_check",
]

#: The group of every file of a run, for a model with per-batch normalization.
BATCH = "the files of this run"
#: The ``emotion`` of a row whose file holds no speech.
NO_SPEECH = "no speech"
#: A clip with fewer voiced frames than this share of its frames (silence trimmed) holds no
#: speech: dithered silence, hum and noise have none; the least voiced clip of RAVDESS and
#: CREMA-D has 17%.
MIN_VOICED_FRACTION = 0.05
#: A clip whose pitch (10th to 90th percentile over its voiced frames) spans less than this many
#: semitones is a steady tone, not speech: mains hum's harmonics measure 0.04; the flattest clip
#: of RAVDESS and CREMA-D spans 0.36.
MIN_PITCH_RANGE_SEMITONES = 0.2

_log = logging.getLogger(__name__)


def prediction_columns(classes: Sequence[str]) -> list[str]:
    """``path, emotion, confidence, p_<class>..., error``."""
    return ["path", "emotion", "confidence", *[f"p_{label}" for label in classes], "error"]


def predict_files(
    paths: Iterable[str | PathLike[str]],
    model: Model | ModelFile,
    *,
    n_jobs: int | None = 1,
    progress: bool = False,
    cache_dir: str | PathLike[str] | None = None,
    skip: Collection[str] = (),
    speakers: Mapping[str, str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Classify audio files; folders are searched recursively for audio files.

    Yields one row per file, in order, as soon as the file is done: ``path``, ``emotion``,
    ``confidence`` (the top probability), ``p_<class>`` (summing to 1) and ``error`` (empty, or
    why the file could not be classified; the other fields are then ``None``). A file without
    speech (:func:`speech_check`) gets the emotion :data:`NO_SPEECH` and a note in ``error``.
    A bad file never stops the batch. Files whose path, as a row would name it, is in ``skip`` are left out
    (see :func:`resumable_rows`).

    Given a :class:`~ser_classic.model_file.ModelFile`, the model is loaded (:func:`~ser_classic.models.load_model`,
    whose :class:`~ser_classic.errors.ModelError` comes before the first row) while a helper
    process prepares the feature extraction, when ``n_jobs`` allows two processes and the files
    are too few for a pool (see :func:`~ser_classic.parallel.helper_process`): the start-up of
    a few files then costs the slower of the two, not their sum.

    A model trained with per-speaker normalization standardizes each speaker's files with the
    statistics of those files (see :mod:`ser_classic.normalization`): a file's row then comes
    once all files of its speaker are done. A model trained with per-batch normalization
    standardizes all the files of the run together: rows then come once every file is done. The speaker of a file is ``speakers[str(path)]``,
    else its folder (:func:`speaker_of`); a speaker with fewer than
    :data:`~ser_classic.normalization.MIN_CLIPS_PER_SPEAKER` files gets a warning.
    """
    found = find_audio_files(paths)
    # skipped files still count in their speaker's statistics, as in the run that wrote their rows
    normalized = model.speaker_norm or model.batch_norm
    targets = found if normalized else [path for path in found if str(path) not in skip]
    with model_and_vectors(targets, model, n_jobs=n_jobs, progress=progress, cache_dir=cache_dir) as (loaded, results):
        if normalized:
            groups = {str(path): BATCH for path in found} if loaded.batch_norm else speakers or {}
            rows = _classify_by_speaker(found, results, loaded, groups)
            yield from (row for row in rows if row["path"] not in skip)
        else:
            yield from (classify_vector(path, values, loaded) for path, values in results)


@contextmanager
def model_and_vectors(
    paths: Sequence[str | PathLike[str]],
    model: Model | ModelFile,
    *,
    n_jobs: int | None = 1,
    progress: bool = False,
    cache_dir: str | PathLike[str] | None = None,
) -> Iterator[tuple[Model, Iterator[tuple[str, np.ndarray | SERError]]]]:
    """The loaded model and, lazily and in order, each file's feature vector or the error naming
    it (:func:`speech_check` applied): what classifying or explaining files starts from.

    Given a :class:`~ser_classic.model_file.ModelFile`, the model loads while a helper process
    prepares the extraction (see :func:`predict_files`); the vectors must be consumed inside the block.
    """
    # cached vectors need no warm-up: then nothing would be gained while the model loads
    helper = (
        helper_process(partial(warm_up, model.feature_config), n_jobs=n_jobs, n_items=len(paths))
        if isinstance(model, ModelFile) and cache_dir is None
        else nullcontext()
    )
    with helper:
        # scikit-learn and pandas are imported here, after the fork: the helper goes without them
        from .features.transformer import FeatureExtractor
        from .models import load_model

        loaded = load_model(model) if isinstance(model, ModelFile) else model
        extractor = FeatureExtractor(model.feature_config, cache_dir=cache_dir, n_jobs=n_jobs)
        names = loaded.feature_names
        yield loaded, (
            (path, speech_check(values, names, path)) for path, values in extractor.iter_files(paths, progress=progress)
        )


def speech_check(values: np.ndarray | SERError, names: Sequence[str], path: str) -> np.ndarray | SERError:
    """``values`` (a vector of the features ``names``), or a :class:`~ser_classic.errors.NoSpeechError`
    when the clip holds no speech: fewer voiced frames than :data:`MIN_VOICED_FRACTION`
    (silence, noise, hum below the pitch range), or a pitch that stays within
    :data:`MIN_PITCH_RANGE_SEMITONES` over all its voiced frames (a steady tone: a harmonic of
    mains hum inside the speech band, a beep; no voice holds its pitch so)."""
    if isinstance(values, SERError):
        return values
    voiced = values[list(names).index("voiced_fraction")]
    if voiced < MIN_VOICED_FRACTION:
        return NoSpeechError(
            f"no speech found ({voiced:.0%} of the frames are voiced, at least {MIN_VOICED_FRACTION:.0%} are needed): "
            "silence, hum or noise is not classified",
            path,
        )
    pitch_range = values[list(names).index("f0_semitone_range")]
    if pitch_range < MIN_PITCH_RANGE_SEMITONES:
        return NoSpeechError(
            f"no speech found (a steady tone: its pitch stays within {pitch_range:.2f} semitones, a voice moves at least "
            f"{MIN_PITCH_RANGE_SEMITONES:g}): hum or a beep is not classified",
            path,
        )
    return values


def speaker_of(path: str | PathLike[str], speakers: Mapping[str, str]) -> str:
    """``speakers[str(path)]`` when given, else the absolute path of the file's folder."""
    return speakers.get(str(path)) or str(Path(path).absolute().parent)


def _classify_by_speaker(
    files: Sequence[Path], results: Iterable[tuple[str, Any]], model: Model, speakers: Mapping[str, str]
) -> Iterator[dict[str, Any]]:
    """Rows in file order; each speaker's files are normalized together once all are extracted."""
    from .normalization import MIN_CLIPS_PER_SPEAKER, small_speakers

    speaker_list = [speaker_of(path, speakers) for path in files]
    for speaker, count in small_speakers(speaker_list).items():
        _log.warning(
            "%s: only %d file(s): normalization statistics from fewer than %d clips are unreliable",
            speaker if speaker == BATCH else f"speaker {speaker}", count, MIN_CLIPS_PER_SPEAKER,
        )
    remaining = Counter(speaker_list)
    pending: dict[str, list[tuple[int, str, Any]]] = {}
    ready: dict[int, dict[str, Any]] = {}
    next_index = 0
    for index, (path, values) in enumerate(results):
        speaker = speaker_list[index]
        pending.setdefault(speaker, []).append((index, path, values))
        remaining[speaker] -= 1
        if remaining[speaker] == 0:
            ready.update(_classify_speaker(pending.pop(speaker), speaker, model))
        while next_index in ready:
            yield ready.pop(next_index)
            next_index += 1


def _classify_speaker(items: list[tuple[int, str, Any]], speaker: str, model: Model) -> dict[int, dict[str, Any]]:
    """Rows (by file index) of one speaker's files, standardized with the good ones' statistics."""
    import pandas as pd

    good = [(index, path, values) for index, path, values in items if not isinstance(values, SERError)]
    rows = {index: classify_vector(path, values, model) for index, path, values in items if isinstance(values, SERError)}
    if good:
        table = pd.DataFrame([values for _, _, values in good], columns=model.feature_names, index=[path for _, path, _ in good])
        probabilities = model.predict_proba(table, speakers=[speaker] * len(good))
        rows.update({index: _row(path, probabilities.iloc[position]) for position, (index, path, _) in enumerate(good)})
    return rows


def resumable_rows(output: str | PathLike[str] | None, fmt: str, classes: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of earlier, possibly stopped or killed, runs into ``output`` that a resumed run keeps.

    CSV and JSONL output can be resumed. The rows come from the temporary file a killed run
    left beside ``output`` (:func:`~ser_classic.atomic.leftover_temporary`), the newest, then
    from ``output``; each must have this model's columns; a path that occurs more than once
    is kept once (its first row). Pass their paths as ``skip`` to :func:`predict_files` and
    write these rows first (``--resume`` in the CLI): the leftover is then taken over.

    Raises
    ------
    SERError
        No CSV or JSONL output, or one that is not a prediction file of a model with these classes.
    """
    if output is None or fmt not in RESUMABLE_FORMATS:
        raise SERError("--resume needs a CSV or JSONL --output file (.csv, .jsonl) to continue")
    columns = prediction_columns(classes)
    kept: dict[str, dict[str, Any]] = {}
    sources = [path for path in (leftover_temporary(output), Path(output)) if path is not None]
    for source in sources:
        for row in read_rows(source, fmt):
            if list(row) != columns:
                raise SERError(f"its rows have other columns than this model's ({', '.join(columns)}): cannot resume", source)
            kept.setdefault(row["path"], row)
    return list(kept.values())


def classify_vector(path: str, values: np.ndarray | SERError, model: Model) -> dict[str, Any]:
    """The row of one file (see :func:`predict_files`) from its feature vector, or from the
    error that stood in its way (a :class:`~ser_classic.errors.NoSpeechError` gives :data:`NO_SPEECH`).

    Files are classified one at a time: a matrix product over one row rounds differently from
    one over many, and a file's probabilities must not depend on which files share its run.
    """
    import pandas as pd

    if isinstance(values, SERError):
        _log.warning("%s", values)
        emotion = NO_SPEECH if isinstance(values, NoSpeechError) else None
        return {"path": path, "emotion": emotion, "confidence": None, "error": values.reason}
    # one 2-D block: a list of one vector would be sanitized column by column (~3 ms a file)
    table = pd.DataFrame(np.asarray(values, dtype=np.float64)[np.newaxis, :], columns=model.feature_names, index=[path])
    return _row(path, model.predict_proba(table).iloc[0])


def _row(path: str, row: pd.Series) -> dict[str, Any]:
    """The output row of a classified file from its probabilities."""
    return {
        "path": path,
        "emotion": str(row.idxmax()),
        "confidence": float(row.max()),
        **{f"p_{label}": float(value) for label, value in row.items()},
        "error": "",
    }
