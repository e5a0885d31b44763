"""The ``ser`` command line: a thin layer over the library API.

Data goes to stdout (or ``--output``); progress, warnings and errors go to stderr.
Exit codes: 0 all went well, 1 some input files failed (their rows say why), 2 usage or a
fatal error (unreadable model, corpus, ...).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from platformdirs import user_cache_path

app = typer.Typer(
    help="Speech emotion recognition with hand-crafted features and classical models.\n\n"
    "Start with `ser predict FOLDER` to classify recordings with the bundled model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Where `ser train`, `ser evaluate` and `ser features` cache feature vectors: the user's cache
#: folder (e.g. ~/.cache/ser-classic/features on Linux), or $SER_CACHE_DIR; never the current folder.
DEFAULT_CACHE = Path(os.environ.get("SER_CACHE_DIR") or user_cache_path("ser-classic") / "features")

JobsOption = Annotated[int, typer.Option("--jobs", "-j", help="Worker processes (-1: all cores).")]
BackendOption = Annotated[
    str, typer.Option(help="Where features are extracted: local (this machine) or dask (a dask.distributed cluster; the dask extra).")
]
SchedulerOption = Annotated[
    Optional[str],
    typer.Option(help="With --backend dask: address of a running scheduler to join (tcp://host:8786); default: a LocalCluster of --jobs workers."),
]
CacheOption = Annotated[
    Optional[Path],
    typer.Option(help="Feature cache folder (keyed by file content and extractor settings)."),
]
KindOption = Annotated[str, typer.Option(help="Corpus kind: auto, ravdess, crema-d, folders (ROOT/<label>/...) or csv.")]
ClassesOption = Annotated[
    Optional[str],
    typer.Option(help="Classes to keep: shared (those every corpus has), a set name (ravdess8, ravdess7, crema6, basic4) or a list like 'angry,sad'."),
]
CorporaArgument = Annotated[
    list[Path],
    typer.Argument(
        help="Labelled corpora, one or more: RAVDESS or CREMA-D folders (recognized by their file names), "
        "ROOT/<label>/ folders, or CSV manifests (path,label[,speaker,corpus])."
    ),
]
SeedOption = Annotated[int, typer.Option(help="Random seed of every fitted model and random split.")]
BatchNormOption = Annotated[
    bool,
    typer.Option(
        "--batch-norm",
        help="Standardize features per corpus with that corpus's own clips; a model trained so standardizes "
        "the files of each `ser predict` run together (no speaker labels needed, but many files at once).",
    ),
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Also show informational messages on stderr (a dask cluster's start and shutdown, ...).")
]
SpeakerNormOption = Annotated[
    bool,
    typer.Option(
        "--speaker-norm",
        help="Standardize features per speaker with that speaker's own clips (transductive: prediction then needs several clips per speaker).",
    ),
]


def _setup_logging(verbose: bool) -> None:
    """Messages on stderr: warnings and errors, and with ``verbose`` informational ones too.

    The level is set on the handler, not only on the root logger: libraries that set their
    own loggers' levels (dask.distributed logs its cluster's start and shutdown at INFO)
    would otherwise still reach it.
    """
    level = logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("ser: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def _fail(error: Exception) -> typer.Exit:
    typer.echo(f"ser: error: {error}", err=True)
    return typer.Exit(code=2)


def _stopped(stop: KeyboardInterrupt, outcome: str) -> typer.Exit:
    """Say on stderr which signal stopped the command and what it leaves; exit 128 + the
    signal's number, as a shell reports a process the signal ended."""
    import signal

    number = getattr(stop, "signal_number", signal.SIGINT)  # a bare KeyboardInterrupt is Ctrl-C
    typer.echo(f"ser: stopped by {signal.Signals(number).name}: {outcome}", err=True)
    return typer.Exit(code=128 + number)


def _predict_outcome(output: Path | None, fmt: str, classes: list[str], rows_written: int) -> str:
    """What a stopped ``ser predict`` leaves, and how to continue."""
    from .errors import SERError
    from .outputs import RESUMABLE_FORMATS
    from .prediction import resumable_rows

    if output is None:
        return f"{rows_written} file(s) done, their rows written to stdout (--resume needs an --output file)"
    done = 0
    if fmt in RESUMABLE_FORMATS and classes:
        try:
            done = len(resumable_rows(output, fmt, classes))
        except SERError:  # the output of something else, left as it was
            done = 0
    if done:
        return f"{done} file(s) done in {output}; run the same command with --resume to continue from there"
    return f"no file done; {output} left as it was" + (" (only csv and jsonl outputs keep the rows done)" if fmt == "table" else "")


AugmentOption = Annotated[
    str,
    typer.Option(
        "--augment",
        help="Add augmented copies of every training clip (training folds only, never test folds): none, or a "
        "recipe: speed-prefix (the bundled models': copies at speed x0.9 and x1.1, one with noise at 5-30 dB SNR, "
        "and the first 0.75 s and 1.5 s of the speech, as `ser listen` hears an utterance begin), speed-noise (3 noisy "
        "copies, two of them also at speed x0.9 and x1.1), speed (x0.9 and x1.1), pitch, stretch, gain, "
        "noise (2 noisy copies), mask, mix.",
    ),
]


#: What the worker server loads before forking workers: the command's main module (as each
#: worker would) and the warmed-up extraction code.
WORKER_PRELOAD = ("__main__", "ser_classic.features.preload")


def _workers(jobs: int, backend: str = "local", n_files: int | None = None) -> Any:
    """The worker server of a command (see :func:`ser_classic.parallel.worker_server`), opened
    before anything heavy is imported, so that workers warm up while the command starts."""
    from .parallel import worker_server

    return worker_server(WORKER_PRELOAD, n_jobs=jobs if backend == "local" else 1, n_items=n_files)


def _corpus_data(corpus: list[Path], kind: str, classes: str | None, augment: str, jobs: int, cache_dir: Path | None) -> Any:
    from .training import load_corpus_data

    return load_corpus_data(corpus, kind=kind, classes=classes, augment=augment, n_jobs=jobs, cache_dir=cache_dir, progress=True)


def _prediction_inputs(paths: list[Path], manifest: Path | None, speaker_column: str) -> tuple[list[Path], dict[str, str]]:
    """Files and folders to classify (arguments, then the manifest's rows) and the manifest's speakers."""
    from .corpus import read_file_list
    from .errors import SERError

    if manifest is None:
        if not paths:
            raise SERError("give audio files or folders to classify, or a --manifest")
        return paths, {}
    listed = read_file_list(manifest, speaker_column=speaker_column)
    speakers = {path: speaker for path, speaker in zip(listed["path"], listed["speaker"]) if speaker}
    return [*paths, *map(Path, listed["path"])], speakers


@app.command()
def predict(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Audio files and/or folders (searched recursively).")] = None,
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Model file (.joblib) or bundled model name: default (6 emotions, RAVDESS + CREMA-D; used when omitted) or ravdess8 (8 emotions, RAVDESS).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here (atomically) instead of stdout.")] = None,
    output_format: Annotated[
        Optional[str], typer.Option("--format", "-f", help="csv, jsonl or table; default from --output's ending, table on a terminal.")
    ] = None,
    manifest: Annotated[
        Optional[Path],
        typer.Option(help="CSV of files to classify: column path (relative to the CSV) and, for a per-speaker model, a speaker column."),
    ] = None,
    speaker_column: Annotated[str, typer.Option("--speaker", help="The --manifest column naming each file's speaker.")] = "speaker",
    jobs: JobsOption = -1,
    cache_dir: CacheOption = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue a stopped CSV or JSONL --output: keep its rows, classify only the files not in it."),
    ] = False,
    backend: BackendOption = "local",
    scheduler: SchedulerOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Classify the emotion of each recording: one row per file.

    Columns: path, emotion, confidence, p_<class>... (summing to 1), error. A file that cannot
    be classified gets a row with the reason in `error`; the others are still classified and
    the exit code is 1.

    A model trained with --speaker-norm standardizes each speaker's files together: the speaker
    is the --manifest's speaker column, else the file's folder; give several files (10 or more)
    of each speaker.

    A stopped run (Ctrl-C, SIGTERM, SIGHUP) keeps the rows done in a CSV or JSONL --output, and
    --resume continues from them; so does it after a run killed outright (SIGKILL), from the
    temporary file .NAME.tmp that run left beside the output.

    Example: ser predict ../shared/data/ravdess/Actor_01 --format csv --output predictions.csv
    """
    from itertools import chain, islice

    from .corpus import count_audio_files
    from .errors import SERError
    from .interruption import stop_on_signals
    from .model_file import ModelFile, resolve_model
    from .outputs import RESUMABLE_FORMATS, format_for, write_rows
    from .parallel import parallel_backend
    from .prediction import predict_files, prediction_columns, resumable_rows

    _setup_logging(verbose)
    fmt, classes, failed, written = "", [], 0, 0

    def counted(rows: Any) -> Any:
        nonlocal failed, written
        for row in rows:
            yield row
            written += 1  # the writer asks for the next row once this one is out
            failed += bool(row["error"])

    try:
        with stop_on_signals():
            fmt = format_for(output, output_format)
            model_file = ModelFile.open(resolve_model(model))
            classes = list(model_file.classes)
            inputs, speakers = _prediction_inputs(paths or [], manifest, speaker_column)
            with _workers(jobs, backend, count_audio_files(inputs)), parallel_backend(backend, scheduler=scheduler, n_workers=jobs):
                kept = resumable_rows(output, fmt, classes) if resume else []
                rows = predict_files(
                    inputs, model_file, n_jobs=jobs, progress=True, cache_dir=cache_dir, skip={row["path"] for row in kept}, speakers=speakers
                )
                first = list(islice(rows, 1))  # loads the model: one that cannot be unpickled fails before any output
                total = write_rows(
                    counted(chain(kept, first, rows)), prediction_columns(classes), fmt, output,
                    keep_on_interrupt=output is not None and fmt in RESUMABLE_FORMATS, resumed_rows=len(kept),
                )
    except SERError as error:
        raise _fail(error) from None
    except KeyboardInterrupt as stop:
        raise _stopped(stop, _predict_outcome(output, fmt, classes, written)) from None
    if total == 0:
        from .corpus import audio_formats

        typer.echo(f"ser: no audio files found ({audio_formats()})", err=True)
        raise typer.Exit(code=1)
    if failed:
        typer.echo(f"ser: {failed} of {total} file(s) could not be classified (see the error column)", err=True)
        raise typer.Exit(code=1)


@app.command()
def train(
    corpus: CorporaArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write (.joblib); its card goes beside it.")],
    classifier: Annotated[
        str, typer.Option(help="ensemble (soft voting of svm, logreg and mlp: the bundled models' configuration), svm, mlp, xgboost or logreg.")
    ] = "ensemble",
    kind: KindOption = "auto",
    classes: ClassesOption = None,
    cv_folds: Annotated[int, typer.Option(help="Speaker-grouped folds for the scores on the card (0: skip).")] = 6,
    random_split: Annotated[
        bool, typer.Option("--random-split", help="Also score random stratified 5-fold (speaker-dependent, for comparison only) on the card.")
    ] = False,
    seed: SeedOption = 0,
    jobs: JobsOption = -1,
    cache_dir: CacheOption = DEFAULT_CACHE,
    speaker_norm: SpeakerNormOption = False,
    batch_norm: BatchNormOption = False,
    augment: AugmentOption = "speed-prefix",
    verbose: VerboseOption = False,
) -> None:
    """Train a model on a labelled corpus and write it with its model card.

    With no option this builds the bundled models' configuration (the soft-voting ensemble,
    trained on the clips and 5 copies of each: --augment speed-prefix). The card records
    the training data and the cross-validated scores of the
    same configuration: speaker-independent (folds grouped by speaker, fitted --jobs at a time,
    a progress bar estimating the time left) and, with --random-split, random stratified
    5-fold (speaker-dependent, for comparison only).

    With several corpora the card also holds each corpus's own speaker-independent scores.

    Example: ser train ../shared/data/ravdess ../shared/data/crema-d --classes shared --out models/my-model.joblib
    """
    _setup_logging(verbose)
    with _workers(jobs):  # first: the workers warm up while the rest is imported
        from .errors import SERError
        from .training import fit_corpus

        try:
            data = _corpus_data(corpus, kind, classes, augment, jobs, cache_dir)
            model = fit_corpus(
                data, classifier=classifier, cv_folds=cv_folds, random_split=random_split, seed=seed, speaker_norm=speaker_norm,
                batch_norm=batch_norm, name=out.stem, n_jobs=jobs, progress=True,
            )
            card_file = model.save(out)
        except SERError as error:
            raise _fail(error) from None
    scores = model.card["evaluation"]
    typer.echo(f"wrote {out} and {card_file}")
    for protocol, result in scores.items():
        typer.echo(f"{protocol:>8}: accuracy {result['mean']['accuracy']:.3f} ± {result['std']['accuracy']:.3f}, "
                   f"weighted F1 {result['mean']['f1_weighted']:.3f}  ({result['protocol_description']})")


@app.command()
def adapt(
    labelled: Annotated[
        list[Path],
        typer.Argument(
            help="Your labelled clips: ROOT/<label>/ folders (optionally ROOT/<label>/<speaker>/), CSV manifests "
            "(path,label[,speaker]), or RAVDESS/CREMA-D folders; linked files are followed, any format `ser predict` reads."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write (.joblib); its card and training table go beside it.")],
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="The base model: a model file (.joblib) or a bundled model name (default, ravdess8); the default model when omitted.")] = None,
    kind: KindOption = "auto",
    seed: SeedOption = 0,
    jobs: JobsOption = -1,
    cache_dir: CacheOption = DEFAULT_CACHE,
    verbose: VerboseOption = False,
) -> None:
    """Adapt a model to your recordings: a few labelled clips of yours make it yours.

    The base model's training clips (their vectors, stored beside it) and yours are fitted together,
    yours standardized with their own statistics (your microphone and room); the result is an
    ordinary model file for ser predict, timeline, explain, info and the demo. An estimate by
    cross-validation over your clips (grouped by speaker when your folders or manifest name
    speakers) compares the base and the adapted model on clips each fold did not see; where your
    clips do not help, the adapted model stays the base. Labels are matched ignoring case, with the
    usual synonyms (anger/angry, fear/fearful, happiness/happy, sadness/sad); a label the base lacks
    becomes a new class from 5 clips on. Unreadable, silent and speechless files are left out, a
    line each.

    Example: ser adapt my-clips/ --out models/mine.joblib    (my-clips/angry/*.wav, my-clips/sad/*.m4a, ...)
    """
    _setup_logging(verbose)
    with _workers(jobs):
        from .adaptation import Estimate
        from .adaptation import adapt as adapt_model
        from .corpus import read_corpora
        from .errors import SERError
        from .model_file import ModelFile, resolve_model

        try:
            base = ModelFile.open(resolve_model(model))
            adapted = adapt_model(read_corpora(labelled, kind), base, cache_dir=cache_dir, n_jobs=jobs, progress=True, name=out.stem, seed=seed)
            card_file = adapted.save(out)
        except SERError as error:
            raise _fail(error) from None
    adaptation = adapted.card["adaptation"]
    clips = ", ".join(f"{label} {count}" for label, count in adaptation["user_clips"].items())
    typer.echo(f"adapted {Path(base.path).name} to {adaptation['n_user_clips']} clips of yours ({clips})")
    typer.echo(Estimate(**adaptation["estimate"]).summary())
    typer.echo(f"wrote {out} and {card_file}")


@app.command()
def evaluate(
    corpus: CorporaArgument,
    protocol: Annotated[
        str,
        typer.Option(help="speaker (folds grouped by speaker; honest), corpus (leave one corpus out; needs 2+ corpora) or random (speaker-dependent)."),
    ] = "speaker",
    classifier: Annotated[str, typer.Option(help="svm, mlp, xgboost, logreg or ensemble (soft voting of svm, logreg and mlp).")] = "svm",
    folds: Annotated[Optional[int], typer.Option(help="Number of folds (default 6 for speaker, 5 for random).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option(help="Report folder (default reports/<classifier>-<protocol>[-speaker-norm]).")] = None,
    kind: KindOption = "auto",
    classes: ClassesOption = None,
    seed: SeedOption = 0,
    jobs: JobsOption = -1,
    cache_dir: CacheOption = DEFAULT_CACHE,
    speaker_norm: SpeakerNormOption = False,
    batch_norm: BatchNormOption = False,
    augment: AugmentOption = "none",
    verbose: VerboseOption = False,
) -> None:
    """Cross-validate a classifier and write report.json, report.md and confusion.png.

    Example: ser evaluate ../shared/data/ravdess ../shared/data/crema-d --classes shared --protocol corpus
    """
    _setup_logging(verbose)
    with _workers(jobs):  # first: the workers warm up while the rest is imported
        from .errors import SERError
        from .evaluation import write_report
        from .training import evaluate_corpus

        try:
            data = _corpus_data(corpus, kind, classes, augment, jobs, cache_dir)
            result = evaluate_corpus(
                data, classifier=classifier, protocol=protocol, n_splits=folds, seed=seed, speaker_norm=speaker_norm,
                batch_norm=batch_norm, n_jobs=jobs, progress=True,
            )
            default_dir = Path("reports") / (
                f"{classifier}-{protocol}" + ("-speaker-norm" if speaker_norm else "") + ("-batch-norm" if batch_norm else "")
                + (f"-{augment}" if data.copies else "")
            )
            paths = write_report(result, out_dir or default_dir, corpus=", ".join(map(str, corpus)))
        except SERError as error:
            raise _fail(error) from None
    summary = result.summary()
    typer.echo(f"{summary['protocol_description']}")
    for metric, value in summary["mean"].items():
        typer.echo(f"{metric:>12}: {value:.3f} ± {summary['std'][metric]:.3f}")
    if protocol == "corpus":
        for fold, scores in zip(summary["fold_corpora"], summary["folds"]):
            typer.echo(f"held-out {fold}: UAR {scores['uar']:.3f}, accuracy {scores['accuracy']:.3f}")
    typer.echo("reports: " + ", ".join(str(p) for p in paths.values()))


@app.command()
def features(
    corpus: CorporaArgument,
    output: Annotated[Path, typer.Option("--output", "-o", help="Feature table to write: .csv, or .parquet (needs the parquet extra: pyarrow).")],
    kind: KindOption = "auto",
    classes: ClassesOption = None,
    jobs: JobsOption = -1,
    cache_dir: CacheOption = DEFAULT_CACHE,
    backend: BackendOption = "local",
    scheduler: SchedulerOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Extract the feature table of a corpus (cached), with its labels and speakers.

    The table is written whole, at the end. A stopped run (Ctrl-C, SIGTERM, SIGHUP) leaves
    --output as it was, and the cache holds the clips already done: run the same command
    again to extract only the others.

    Example: ser features ../shared/data/ravdess --output ravdess.parquet
    """
    _setup_logging(verbose)
    with _workers(jobs, backend):  # first: the workers warm up while the rest is imported
        from .errors import SERError
        from .interruption import stop_on_signals
        from .outputs import write_table
        from .parallel import parallel_backend

        try:
            with stop_on_signals():
                with parallel_backend(backend, scheduler=scheduler, n_workers=jobs):
                    data = _corpus_data(corpus, kind, classes, "none", jobs, cache_dir)
                values = data.features
                combined = data.table.set_index("path").join(values.rename_axis("path"))
                combined.attrs = dict(values.attrs)
                write_table(combined, output)
        except SERError as error:
            raise _fail(error) from None
        except KeyboardInterrupt as stop:
            raise _stopped(stop, f"{output} left as it was; the clips done are cached in {cache_dir}: run the same command again to continue") from None
    typer.echo(f"wrote {output}: {len(combined)} clips x {values.shape[1]} features")


@app.command()
def timeline(
    file: Annotated[Path, typer.Argument(help="A recording of any length (WAV, FLAC, OGG, MP3, ...); read blockwise.")],
    window: Annotated[float, typer.Option(help="Analysis window in seconds.")] = 3.0,
    hop: Annotated[float, typer.Option(help="Step between windows in seconds (at most --window).")] = 1.0,
    smoothing: Annotated[float, typer.Option(help="Moving average of the probabilities over this many seconds, within each speech region (0: off).")] = 0.0,
    merged: Annotated[bool, typer.Option("--segments", help="Write merged segments (start, end, emotion, confidence) instead of windows.")] = False,
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Model file (.joblib) or bundled model name: default (6 emotions, RAVDESS + CREMA-D; used when omitted) or ravdess8 (8 emotions, RAVDESS).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here (atomically) instead of stdout.")] = None,
    output_format: Annotated[Optional[str], typer.Option("--format", "-f", help="csv or jsonl; default from --output's ending, else csv.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Also write a PNG plot of the timeline here.")] = None,
    jobs: JobsOption = 1,
    verbose: VerboseOption = False,
) -> None:
    """Emotion over time in a long recording, over its speech only.

    Rows: start, end (seconds), speech, emotion, confidence, p_<class>... One row per analysis
    window inside speech (windows overlap when --hop < --window), and one row per pause between
    speech regions with emotion `non-speech` and no probabilities. Progress goes to stderr.
    The rows are written at the end: a stopped run (Ctrl-C, SIGTERM, SIGHUP) leaves --output
    as it was.

    Example: ser timeline interview.flac --window 3 --hop 1 --output timeline.csv --plot timeline.png
    """
    import math

    from . import audio
    from .errors import SERError
    from .interruption import stop_on_signals
    from .models import load_model
    from .outputs import format_for, write_rows
    from .timeline import plot_timeline, segments, timeline_columns
    from .timeline import timeline as compute_timeline

    _setup_logging(verbose)
    try:
        with stop_on_signals():
            fmt = format_for(output, output_format) if output_format or output else "csv"
            if fmt not in {"csv", "jsonl"}:
                raise SERError(f"unknown format {fmt!r} for a timeline; choose csv or jsonl")
            loaded = load_model(model)
            frame = compute_timeline(file, loaded, window_seconds=window, hop_seconds=hop, smoothing=smoothing, n_jobs=jobs, progress=True)
            table = segments(frame) if merged else frame
            columns = list(table.columns) if merged else timeline_columns(loaded.classes)
            rows = (
                {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()}
                for row in table.round({"start": 3, "end": 3}).to_dict("records")
            )
            write_rows(rows, columns, fmt, output)
            if plot is not None:
                short = audio.file_info(file).duration_seconds <= audio.MAX_DURATION_SECONDS
                signal = audio.load(file, sample_rate=loaded.feature_config.sample_rate) if short else None
                plot_timeline(frame, plot, signal=signal, sample_rate=loaded.feature_config.sample_rate, title=f"{file.name}: emotion over time")
    except SERError as error:
        raise _fail(error) from None
    except KeyboardInterrupt as stop:
        left = f"{output} left as it was" if output is not None else "the rows on stdout are incomplete"
        raise _stopped(stop, f"{left}: run the same command again") from None


def _live_line(row: dict[str, Any]) -> str:
    """A live row as one short line for a person watching a terminal."""
    when = f"{row['start']:7.1f} -{row['end']:7.1f} s"
    if not row["speech"]:
        return f"{when}  non-speech"
    if row["confidence"] is None:
        return f"{when}  speech, too short yet to tell"
    return f"{when}  {row['emotion']:<10} {row['confidence']:4.0%}  {'█' * round(row['confidence'] * 20)}"


@app.command()
def listen(
    input_file: Annotated[
        Optional[str],
        typer.Option("--input", "-i", help="Listen to this file instead of the microphone, or - for WAV or raw 16-bit mono PCM (see --rate) on standard input."),
    ] = None,
    device: Annotated[Optional[str], typer.Option(help="Microphone: an index or part of a name from --list-devices (default: the system's default input).")] = None,
    list_devices: Annotated[bool, typer.Option("--list-devices", help="List the devices that can record, and exit.")] = False,
    realtime: Annotated[bool, typer.Option("--realtime", help="With --input FILE: at the recording's pace, as if it were being spoken now (default: as fast as possible).")] = False,
    rate: Annotated[Optional[int], typer.Option(help="Sample rate in Hz of raw audio on standard input (--input -); a WAV header states its own.")] = None,
    duration: Annotated[Optional[float], typer.Option(help="Stop after this many seconds of audio.")] = None,
    window: Annotated[float, typer.Option(help="Analysis window in seconds.")] = 3.0,
    hop: Annotated[float, typer.Option(help="One row every this many seconds (at most --window).")] = 1.0,
    smoothing: Annotated[float, typer.Option(help="Mean of the probabilities over the windows of the last this many seconds of the same speech (0: off).")] = 0.0,
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Model file (.joblib) or bundled model name: default (6 emotions, RAVDESS + CREMA-D; used when omitted) or ravdess8 (8 emotions, RAVDESS).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Also write the rows here, each as it comes (the file is replaced).")] = None,
    output_format: Annotated[Optional[str], typer.Option("--format", "-f", help="csv, jsonl or table (one short line per row); default from --output's ending, table on a terminal, else csv.")] = None,
    verbose: VerboseOption = False,
) -> None:
    """Emotion while someone speaks: the microphone (or a file, or a pipe), one row per hop.

    Every --hop seconds a row is written, as soon as it is due: speech or not, and over
    speech the emotion of the last --window seconds of it. Rows: start, end, speech, emotion,
    confidence, p_<class>..., as `ser timeline` writes them (a speech row's start and end are
    its window's). Rows go to stdout (and to --output, each as it comes) until Ctrl-C,
    SIGTERM, --duration or the end of the input: then the output is complete and the exit
    code 0. A microphone lost mid-stream keeps the rows so far, says so and exits with 2.

    The microphone needs the `live` extra (sounddevice, and PortAudio: on Debian or Ubuntu
    apt-get install libportaudio2).

    Example: ser listen --input interview.flac --realtime --format jsonl --output live.jsonl
    """
    import signal

    from .errors import SERError
    from .interruption import stop_requests
    from .outputs import RowWriter, format_for

    _setup_logging(verbose)
    written = 0
    try:
        with stop_requests() as stop:
            if list_devices:
                from .live import input_devices

                devices = input_devices()
                for found in devices:
                    typer.echo(f"{found['index']:>3} {'*' if found['default'] else ' '} {found['name']}  "
                               f"({found['channels']} channels, {found['default_sample_rate']} Hz)")
                if not devices:
                    raise SERError("no device can record (no microphone found)")
                return
            fmt = format_for(output, output_format) if output_format or output else ("table" if sys.stdout.isatty() else "csv")
            if output is not None and fmt == "table":
                raise SERError("--output takes csv or jsonl rows; table is for a terminal")
            if input_file is None and (realtime or rate is not None):
                raise SERError("--realtime and --rate go with --input")
            from .live import file_blocks, listen as listen_to, microphone_blocks, stdin_blocks
            from .models import load_model
            from .timeline import timeline_columns

            loaded = load_model(model)
            columns = timeline_columns(loaded.classes)
            if input_file == "-":
                source, what = stdin_blocks(sys.stdin.buffer, sample_rate=rate), "standard input"
            elif input_file is not None:
                source, what = file_blocks(Path(input_file), realtime=realtime, stop=stop), input_file
            else:
                device_key = int(device) if device is not None and device.isdigit() else device
                source = microphone_blocks(device_key, stop=stop)
                what = "the default microphone" if device is None else f"microphone {device}"
            rows = listen_to(source, loaded, window_seconds=window, hop_seconds=hop, smoothing=smoothing, duration_seconds=duration, stop=stop)
            with open(output, "w", encoding="utf-8", newline="") if output is not None else nullcontext(None) as saved:
                to_file = RowWriter(saved, columns, fmt) if saved is not None else None
                to_stdout = None if output is not None or fmt == "table" else RowWriter(sys.stdout, columns, fmt)
                terminal = fmt == "table" or (output is not None and sys.stdout.isatty())
                typer.echo(f"ser: listening to {what}; Ctrl-C stops", err=True)
                for row in rows:
                    for writer in (to_file, to_stdout):
                        if writer is not None:
                            writer.write(row)
                    if terminal:
                        typer.echo(_live_line(row))
                        sys.stdout.flush()
                    written += 1
    except SERError as error:
        if written:
            typer.echo(f"ser: {written} row(s) written before the error", err=True)
        raise _fail(error) from None
    except OSError as error:  # the output's disk or pipe
        raise _fail(SERError(f"cannot write the rows ({error.strerror or error})", output)) from None
    except KeyboardInterrupt as stop_now:
        raise _stopped(stop_now, f"{written} row(s) written") from None
    if stop.is_set() and stop.signal_number is not None:
        typer.echo(f"ser: stopped by {signal.Signals(stop.signal_number).name}: {written} row(s) written", err=True)


@app.command()
def explain(
    clip: Annotated[Path, typer.Argument(help="An audio file (WAV, FLAC, OGG, MP3, ...).")],
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Model file (.joblib) or bundled model name: default (6 emotions, RAVDESS + CREMA-D; used when omitted) or ravdess8 (8 emotions, RAVDESS).")] = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help="text (a few lines) or json.")] = "text",
    speaker_clips: Annotated[
        Optional[list[Path]],
        typer.Option("--speaker-clips", help="For a model trained with --speaker-norm: the speaker's other recordings (files or folders; 10 or more)."),
    ] = None,
    cache_dir: CacheOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Say why the model gives a recording its emotion, in terms a person can check.

    First line: the emotion, its probability and the measurable features that raised it most,
    each with the clip's value and its percentile among the training clips, e.g.
    "angry (0.71): pitch range very high (11.2 semitones, 93rd percentile), ...". Then how much
    each feature group moved the probability from its average over the model's reference clips.
    This explains the model, not the speaker's feelings (docs/explanations.md).

    Example: ser explain ../shared/data/ravdess/Actor_01/03-01-05-02-01-01-01.flac --format json
    """
    from .errors import SERError
    from .explanation import explain as explain_clip
    from .model_file import ModelFile, resolve_model

    _setup_logging(verbose)
    try:
        if output_format not in {"text", "json"}:
            raise SERError(f"unknown format {output_format!r}; choose text or json")
        model_file = ModelFile.open(resolve_model(model))
        result = explain_clip(clip, model_file, speaker_clips=speaker_clips or [], cache_dir=cache_dir, n_jobs=-1)
    except SERError as error:
        raise _fail(error) from None
    typer.echo(result.to_text() if output_format == "text" else json.dumps(result.to_dict(), indent=2))


@app.command()
def info(
    model: Annotated[Optional[Path], typer.Argument(help="Model file (.joblib) or bundled model name: default (6 emotions, RAVDESS + CREMA-D; used when omitted) or ravdess8 (8 emotions, RAVDESS).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole card as JSON.")] = False,
) -> None:
    """Show a model's card: classes, training data, protocol scores, versions.

    Example: ser info ravdess8
    """
    from .errors import SERError
    from .model_card import training_corpora
    from .model_file import read_card, resolve_model

    try:
        card = read_card(resolve_model(model))
    except SERError as error:
        raise _fail(error) from None
    if as_json:
        typer.echo(json.dumps(card, indent=2))
        return
    training = card.get("training", {})
    lines = [
        f"model      {resolve_model(model)}",
        f"classifier {card.get('classifier')}  ({'; '.join(card.get('pipeline', []))})",
        f"classes    {', '.join(card.get('classes', []))}",
        f"features   {card.get('n_features')} (extractor version {card.get('feature_config', {}).get('version')})"
        + (", standardized per speaker: predict several clips per speaker at once" if card.get("speaker_norm") else "")
        + (", standardized per batch: predict many clips at once" if card.get("batch_norm") else ""),
        f"trained on {training.get('n_clips')} clips, {training.get('n_speakers')} speakers from {training_corpora(training)}",
        f"augmented  {training.get('augmentation', 'none')}",
        f"created    {card.get('created')}",
        f"sha256     {card.get('artifact', {}).get('sha256')}",
    ]
    adaptation = card.get("adaptation")
    if adaptation:
        from .adaptation import Estimate

        base = adaptation["base"]
        lines.append(f"adapted    from {base.get('file', base.get('name'))} (sha256 {base.get('sha256')}) with {adaptation['n_user_clips']} clips of "
                     f"{adaptation['n_user_speakers'] or 'unknown'} speaker(s): "
                     + ", ".join(f"{label} {count}" for label, count in adaptation["user_clips"].items()))
        lines.append(f"estimate   {Estimate(**adaptation['estimate']).summary()}")
    for protocol, scores in card.get("evaluation", {}).items():
        mean, std = scores["mean"], scores["std"]
        lines.append(
            f"{protocol:<10} accuracy {mean['accuracy']:.3f} ± {std['accuracy']:.3f}, weighted F1 {mean['f1_weighted']:.3f}, "
            f"macro F1 {mean['f1_macro']:.3f}, worst recall {mean['recall_worst']:.3f}  [{scores['protocol_description']}]"
        )
        for corpus, corpus_scores in scores.get("per_corpus", {}).items():
            lines.append(f"{'':<10} on {corpus}'s clips: accuracy {corpus_scores['accuracy']:.3f}, UAR {corpus_scores['uar']:.3f}")
    typer.echo("\n".join(lines))



@app.command("app")
def serve_app(
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 serves this machine only.")] = "127.0.0.1",
    port: Annotated[Optional[int], typer.Option(help="Port (default: 7860 or the next free one).")] = None,
    share: Annotated[bool, typer.Option(help="Also open a public gradio.live link.")] = False,
    max_seconds: Annotated[Optional[float], typer.Option(help="Longest recording accepted, in seconds (default: the demo's).")] = None,
    max_megabytes: Annotated[Optional[float], typer.Option(help="Largest upload accepted, in MB (default: the demo's).")] = None,
    concurrency: Annotated[Optional[int], typer.Option(help="Analyses running at once; more requests wait in the queue (default: the demo's).")] = None,
    models_dir: Annotated[
        Optional[Path],
        typer.Option(exists=True, file_okay=False, help="Folder of the selectable models (*.joblib); default: the bundled models."),
    ] = None,
    keep_minutes: Annotated[
        Optional[float], typer.Option(min=0.02, help="Uploads are deleted once this old, in minutes (default: the demo's).")
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Start the web demo (needs Gradio, from the `app` extra). `python app_gradio.py` in the source tree is this command.

    Example: ser app --port 7860
    """
    import importlib.util

    from .errors import SERError

    if importlib.util.find_spec("gradio") is None:
        raise _fail(SERError("the demo needs Gradio: pip install 'ser-classic[app]'"))
    from .demo import launch

    _setup_logging(verbose)
    settings = {
        "max_seconds": max_seconds, "max_megabytes": max_megabytes, "concurrency": concurrency, "models_dir": models_dir,
        "keep_uploads_minutes": keep_minutes,
    }  # fmt: skip
    launch(host=host, port=port, share=share, **{name: value for name, value in settings.items() if value is not None})


def main() -> None:
    """Entry point of the ``ser`` command."""
    import atexit
    import gc

    # Registered first, run last: the interpreter's shutdown then skips collecting the objects
    # of scikit-learn and pandas (about half a second). Flushing and atexit handlers still
    # happen; finalizers of objects alive at exit are not guaranteed by Python anyway.
    atexit.register(gc.freeze)
    app()
