"""Labelled corpora as one table: ``path, label, speaker`` plus metadata columns.

Four readers produce the same shape: RAVDESS and CREMA-D by their file names, a folder per
label, and a CSV manifest; :func:`read_corpora` joins several into one table with a ``corpus``
column. Labels share one vocabulary (:data:`RAVDESS_EMOTIONS`' names). Class sets are data
(:data:`EMOTION_SETS`, plus ``shared``: the classes every corpus has), chosen with
:func:`select_classes`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from .audio import AUDIO_EXTENSIONS
from .errors import CorpusError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "RAVDESS_EMOTIONS",
    "CREMA_D_EMOTIONS",
    "EMOTION_SETS",
    "parse_ravdess_name",
    "parse_crema_d_name",
    "read_ravdess",
    "read_crema_d",
    "read_label_folders",
    "read_manifest",
    "read_file_list",
    "read_corpus",
    "read_corpora",
    "select_classes",
    "LABEL_SYNONYMS",
    "canonical_label",
    "audio_formats",
    "find_audio_files",
    "count_audio_files",
]

#: RAVDESS emotion codes (the ``EE`` field) and their labels.
RAVDESS_EMOTIONS: dict[str, str] = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}

#: CREMA-D emotion codes (the ``EEE`` field) and their labels, in the same vocabulary.
CREMA_D_EMOTIONS: dict[str, str] = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}

#: Named class subsets used in the literature; any comma-separated list works as well.
#: ``shared`` (not listed here) keeps the classes that every corpus of the table has.
EMOTION_SETS: dict[str, tuple[str, ...]] = {
    "ravdess8": tuple(RAVDESS_EMOTIONS.values()),
    "ravdess7": tuple(label for label in RAVDESS_EMOTIONS.values() if label != "surprised"),
    "crema6": tuple(sorted(CREMA_D_EMOTIONS.values())),
    "basic4": ("neutral", "happy", "sad", "angry"),
}

#: Other words people use for the labels of :data:`RAVDESS_EMOTIONS` (lower case).
LABEL_SYNONYMS: dict[str, str] = {
    "anger": "angry", "mad": "angry", "fear": "fearful", "afraid": "fearful", "scared": "fearful",
    "happiness": "happy", "joy": "happy", "sadness": "sad", "disgusted": "disgust", "surprise": "surprised",
    "neutrality": "neutral",
}


def canonical_label(label: str) -> str:
    """A label in the corpora's vocabulary: case and surrounding blanks ignored, the usual
    synonyms (anger -> angry, fear -> fearful, happiness -> happy, sadness -> sad, ...)
    mapped; any other label is kept, in lower case."""
    word = str(label).strip().lower()
    return LABEL_SYNONYMS.get(word, word)


_RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_CREMA_D_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_([A-Z]{2})$")
_VOCAL_CHANNELS = {"01": "speech", "02": "song"}
_log = logging.getLogger(__name__)
_INTENSITIES = {"01": "normal", "02": "strong"}


def audio_formats() -> str:
    """The file endings read from folders, for messages: ``.aif, .aiff, .flac, ...``."""
    return ", ".join(sorted(AUDIO_EXTENSIONS))


def find_audio_files(paths: Iterable[str | PathLike[str]]) -> list[Path]:
    """Expand folders recursively into their audio files (sorted); files are kept as given.

    A file named explicitly is kept whatever its ending, so that a bad file gets an error row
    instead of vanishing. Symbolic links to folders are followed; a folder already read (a
    link back to a folder above it, a loop, or a second link to the same folder) is skipped
    with a warning naming the link.
    """
    found: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            found.extend(sorted(_audio_files_under(entry)))
        else:
            found.append(entry)
    return found


def count_audio_files(paths: Iterable[str | PathLike[str]]) -> int:
    """How many files :func:`find_audio_files` gives for ``paths``, without its warnings: for
    sizing the work before it starts."""
    return sum(sum(1 for _ in _audio_files_under(entry, warn=False)) if entry.is_dir() else 1 for entry in map(Path, paths))


def _audio_files_under(root: Path, *, warn: bool = True) -> Iterator[Path]:
    """The paths with an audio ending below ``root``, each real folder read once (by its first
    name in sorted order); ``warn``: log each folder skipped."""
    log = _log.warning if warn else _log.debug
    visited = {os.path.realpath(root)}
    for folder, subfolders, files in os.walk(root, followlinks=True):
        kept = []
        for name in sorted(subfolders):
            path = os.path.join(folder, name)
            real = os.path.realpath(path)
            if real not in visited:
                visited.add(real)
                kept.append(name)
            elif os.path.commonpath([real, os.path.realpath(folder)]) == real:
                log("%s: skipped, a link back to %s above it (a loop)", path, real)
            else:
                log("%s: skipped, the same folder as %s, already read", path, real)
        subfolders[:] = kept
        # a folder named like audio is listed too: its row then says it is a folder
        yield from (Path(folder, name) for name in [*kept, *files] if Path(name).suffix.lower() in AUDIO_EXTENSIONS)


def parse_ravdess_name(path: str | PathLike[str]) -> dict[str, object]:
    """Metadata from a RAVDESS name ``MM-VV-EE-II-SS-RR-AA.ext``.

    Raises
    ------
    CorpusError
        If the name does not follow the RAVDESS scheme.
    """
    stem = Path(path).stem
    match = _RAVDESS_NAME.match(stem)
    if match is None or match.group(3) not in RAVDESS_EMOTIONS or match.group(2) not in _VOCAL_CHANNELS:
        raise CorpusError("not a RAVDESS file name (MM-VV-EE-II-SS-RR-AA)", path)
    _, channel, emotion, intensity, statement, repetition, actor = match.groups()
    actor_number = int(actor)
    return {
        "label": RAVDESS_EMOTIONS[emotion],
        "speaker": f"Actor_{actor}",
        "vocal_channel": _VOCAL_CHANNELS[channel],
        "intensity": _INTENSITIES.get(intensity, intensity),
        "statement": int(statement),
        "repetition": int(repetition),
        "actor": actor_number,
        "gender": "male" if actor_number % 2 else "female",
    }


def read_ravdess(root: str | PathLike[str]) -> pd.DataFrame:
    """All RAVDESS-named audio files under ``root`` (speech and song alike)."""
    return _read_named(root, _RAVDESS_NAME, parse_ravdess_name, "RAVDESS-named (MM-VV-EE-II-SS-RR-AA)")


def _read_named(
    root: str | PathLike[str], pattern: re.Pattern[str], parse: Callable[[Path], dict[str, object]], kind: str
) -> pd.DataFrame:
    """The audio files under ``root`` whose names match ``pattern``, with ``parse``'s metadata."""
    rows = [{"path": str(path), **parse(path)} for path in find_audio_files([root]) if pattern.match(path.stem)]
    if not rows:
        raise CorpusError(f"no {kind} audio files ({audio_formats()}) found", root)
    return _as_table(rows)


def parse_crema_d_name(path: str | PathLike[str]) -> dict[str, object]:
    """Metadata from a CREMA-D name ``AAAA_SSS_EEE_LL.ext`` (actor, sentence, emotion, level).

    Raises
    ------
    CorpusError
        If the name does not follow the CREMA-D scheme.
    """
    match = _CREMA_D_NAME.match(Path(path).stem)
    if match is None:
        raise CorpusError("not a CREMA-D file name (AAAA_SSS_EEE_LL)", path)
    actor, sentence, emotion, level = match.groups()
    return {"label": CREMA_D_EMOTIONS[emotion], "speaker": actor, "sentence": sentence, "intensity": level}


def read_crema_d(root: str | PathLike[str]) -> pd.DataFrame:
    """All CREMA-D-named audio files under ``root``; the speaker is the actor number."""
    return _read_named(root, _CREMA_D_NAME, parse_crema_d_name, "CREMA-D-named (AAAA_SSS_EEE_LL)")


def read_label_folders(root: str | PathLike[str]) -> pd.DataFrame:
    """``root/<label>/**/<audio>``: the first folder is the label, the next (if any) the speaker.

    Files directly in ``<label>/`` get the speaker ``unknown``.
    """
    root_path = Path(root)
    rows = []
    for path in find_audio_files([root_path]):
        parts = path.relative_to(root_path).parts
        if len(parts) < 2:
            continue
        speaker = parts[1] if len(parts) > 2 else "unknown"
        rows.append({"path": str(path), "label": parts[0], "speaker": speaker})
    if not rows:
        raise CorpusError(f"no audio files in label folders (expected ROOT/<label>/ holding {audio_formats()} files)", root)
    return _as_table(rows)


def read_manifest(manifest: str | PathLike[str]) -> pd.DataFrame:
    """A CSV with columns ``path,label[,speaker,...]``; relative paths are taken from its folder."""
    import pandas as pd

    manifest_path = Path(manifest)
    try:
        table = pd.read_csv(manifest_path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise CorpusError(f"cannot read CSV manifest ({error})", manifest) from None
    missing = {"path", "label"} - set(table.columns)
    if missing:
        raise CorpusError(f"manifest lacks column(s) {sorted(missing)}", manifest)
    if table.empty:
        raise CorpusError("manifest has no rows", manifest)
    table["path"] = [
        str(path if Path(path).is_absolute() else manifest_path.parent / path) for path in table["path"]
    ]
    if "speaker" not in table.columns:
        table["speaker"] = "unknown"
    return _as_table(table.to_dict("records"))


def read_file_list(manifest: str | PathLike[str], *, speaker_column: str = "speaker") -> pd.DataFrame:
    """Files to classify from a CSV with a ``path`` column and, optionally, ``speaker_column``.

    Relative paths are taken from the CSV's folder. Returns columns ``path`` and ``speaker``
    (``None`` where the CSV has no such column or the cell is empty), in the CSV's order.
    """
    import pandas as pd

    manifest_path = Path(manifest)
    try:
        table = pd.read_csv(manifest_path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise CorpusError(f"cannot read CSV manifest ({error})", manifest) from None
    if "path" not in table.columns:
        raise CorpusError("manifest lacks the column 'path'", manifest)
    paths = [str(path if Path(path).is_absolute() else manifest_path.parent / path) for path in table["path"]]
    speakers = table[speaker_column] if speaker_column in table.columns else [""] * len(table)
    return pd.DataFrame({"path": paths, "speaker": [speaker or None for speaker in speakers]})


#: The corpus kinds :func:`read_corpus` reads.
CORPUS_KINDS = ("ravdess", "crema-d", "folders", "csv")


def read_corpus(source: str | PathLike[str], kind: str = "auto") -> pd.DataFrame:
    """Read a corpus of kind ``ravdess``, ``crema-d``, ``folders`` or ``csv``; ``auto`` guesses.

    ``auto``: a ``.csv`` file is a manifest; a folder whose audio files all carry RAVDESS (or
    all CREMA-D) names is that corpus; any other folder is folder-per-label. The table gets a
    ``corpus`` column (a manifest's own ``corpus`` column is kept): the kind for RAVDESS and
    CREMA-D, the folder's or file's name otherwise.
    """
    path = Path(source)
    if not path.exists():
        raise CorpusError("no such file or folder", source)
    if kind == "auto":
        kind = _guess_kind(path)
    readers = {"ravdess": read_ravdess, "crema-d": read_crema_d, "folders": read_label_folders, "csv": read_manifest}
    if kind not in readers:
        raise CorpusError(f"unknown corpus kind {kind!r}; choose from {list(CORPUS_KINDS)}", source)
    table = readers[kind](path)
    if "corpus" not in table.columns:
        table.insert(3, "corpus", kind if kind in ("ravdess", "crema-d") else path.stem)
    return table


def _guess_kind(path: Path) -> str:
    if path.is_file():
        return "csv"
    stems = [file.stem for file in find_audio_files([path])]
    for kind, pattern in (("ravdess", _RAVDESS_NAME), ("crema-d", _CREMA_D_NAME)):
        if stems and all(pattern.match(stem) for stem in stems):
            return kind
    return "folders"


def read_corpora(sources: Sequence[str | PathLike[str]], kind: str = "auto") -> pd.DataFrame:
    """One table of several corpora (each read by :func:`read_corpus` with ``kind``).

    With more than one corpus, speakers are prefixed with their corpus (``crema-d/1001``), so
    that two corpora's speaker names never merge; two sources with the same corpus name are
    refused.
    """
    import pandas as pd

    if not sources:
        raise CorpusError("no corpus given")
    tables = [read_corpus(source, kind) for source in sources]
    if len(tables) == 1:
        return tables[0]
    names = [name for table in tables for name in table["corpus"].unique()]
    if len(set(names)) < len(names):
        raise CorpusError(f"two corpora share a name ({sorted(names)}): give manifests a 'corpus' column")
    table = pd.concat(tables, ignore_index=True)
    table["speaker"] = table["corpus"].astype(str) + "/" + table["speaker"].astype(str)
    return table


def select_classes(corpus: pd.DataFrame, classes: str | Sequence[str] | None) -> pd.DataFrame:
    """Keep the rows whose label is in ``classes``.

    ``classes`` is a name from :data:`EMOTION_SETS`, ``shared`` (the labels that every corpus
    of the table has), a comma-separated list, a sequence, or ``None`` for every label present.
    """
    if classes is None:
        return corpus
    if classes == "shared":
        per_corpus = corpus.groupby("corpus")["label"].agg(set) if "corpus" in corpus.columns else [set(corpus["label"])]
        wanted = tuple(sorted(set.intersection(*per_corpus)))
    elif isinstance(classes, str):
        wanted = EMOTION_SETS.get(classes) or tuple(c.strip() for c in classes.split(",") if c.strip())
    else:
        wanted = tuple(classes)
    unknown = sorted(set(wanted) - set(corpus["label"]))
    if unknown:
        raise CorpusError(f"class(es) {unknown} not in the corpus (it has {sorted(set(corpus['label']))})")
    return corpus[corpus["label"].isin(wanted)].reset_index(drop=True)


def _as_table(rows: Iterable[dict[str, object]] | Iterator[dict[str, object]]) -> pd.DataFrame:
    import pandas as pd

    table = pd.DataFrame(list(rows))
    first = ["path", "label", "speaker"]
    table = table[first + [c for c in table.columns if c not in first]]
    return table.sort_values("path", kind="stable").reset_index(drop=True)
