"""Held-out check of the ``ser`` command: train on RAVDESS actors 1-18, predict actors 19-24.

    python benchmarks/held_out.py ../shared/data/ravdess        # rewrites the heldout section of docs/accuracy.md

The speech clips are linked into ``train/Actor_01..18/`` and ``test/Actor_19..24/`` of a
temporary folder (symbolic links to the files). For svm and the ensemble, each without and with
``--speaker-norm``, and the ensemble trained with ``--augment speed-prefix`` (the bundled models'
configuration), ``--augment speed-noise`` (theirs before) and ``--augment speed``, the installed ``ser`` command then
runs in child processes as a user runs it: ``ser train`` (``--cv-folds 0``) and ``ser predict``
(``--format csv``), both with the feature cache, which is keyed by file content, so reruns are
fast. Accuracy, weighted F1 and the lowest per-class recall are computed against the emotion
code in each file name. The table goes to stdout and between the ``<!-- heldout:begin -->`` /
``<!-- heldout:end -->`` markers of ``--out``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from readme_section import write_section
from sklearn.metrics import accuracy_score, f1_score, recall_score

from ser_classic.corpus import RAVDESS_EMOTIONS, parse_ravdess_name, read_corpus

_log = logging.getLogger("held_out")

TRAIN_ACTORS = range(1, 19)
TEST_ACTORS = range(19, 25)
#: (classifier, per-speaker normalization, ``--augment``), in table order; the first ensemble
#: row is the configuration of the bundled models (what ``ser train`` builds with no option).
CONFIGURATIONS = (
    ("svm", False, "none"), ("svm", True, "none"), ("ensemble", False, "speed-prefix"), ("ensemble", False, "speed-noise"),
    ("ensemble", False, "none"), ("ensemble", True, "none"), ("ensemble", False, "speed"),
)
#: The ``ser`` command installed beside the interpreter running this script.
SER = Path(sys.executable).parent / "ser"


@dataclass
class HeldOutScore:
    """One configuration's scores on the held-out actors."""

    classifier: str
    speaker_norm: bool
    augment: str
    accuracy: float
    f1_weighted: float
    lowest_recall_class: str
    lowest_recall: float


def link_split(corpus: pd.DataFrame, folder: Path, actors: range) -> int:
    """Link the speech clips of ``actors`` (a :func:`read_corpus` table) into ``folder/Actor_XX/``;
    how many were linked."""
    table = corpus[(corpus["vocal_channel"] == "speech") & corpus["actor"].isin(actors)]
    if table.empty:
        raise SystemExit(f"no speech clips of actors {actors[0]}-{actors[-1]}")
    for row in table.itertuples():
        speaker_folder = folder / row.speaker
        speaker_folder.mkdir(parents=True, exist_ok=True)
        (speaker_folder / Path(row.path).name).symlink_to(Path(row.path).resolve())
    return len(table)


def run_ser(arguments: Sequence[str]) -> None:
    """Run ``ser ARGUMENTS`` as a child process; a failure ends the benchmark with its output."""
    command = [str(SER), *arguments]
    _log.info("%s", shlex.join(command))
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{shlex.join(command)} failed (exit code {result.returncode}):\n{result.stderr}")
    _log.info("done in %.0f s", time.perf_counter() - started)


def score(predictions: Path, classifier: str, speaker_norm: bool, augment: str, n_clips: int) -> HeldOutScore:
    """Scores of a ``ser predict`` CSV against the emotion code in each file name."""
    frame = pd.read_csv(predictions, keep_default_na=False)
    if len(frame) != n_clips or (frame["error"] != "").any():
        raise SystemExit(f"{predictions}: {len(frame)} rows for {n_clips} clips, {(frame['error'] != '').sum()} with errors")
    truth = [parse_ravdess_name(path)["label"] for path in frame["path"]]
    classes = list(RAVDESS_EMOTIONS.values())
    recalls = recall_score(truth, frame["emotion"], labels=classes, average=None, zero_division=0)
    lowest = int(recalls.argmin())
    return HeldOutScore(
        classifier=classifier,
        speaker_norm=speaker_norm,
        augment=augment,
        accuracy=accuracy_score(truth, frame["emotion"]),
        f1_weighted=f1_score(truth, frame["emotion"], labels=classes, average="weighted", zero_division=0),
        lowest_recall_class=classes[lowest],
        lowest_recall=float(recalls[lowest]),
    )


def table(scores: Sequence[HeldOutScore]) -> str:
    """The Markdown table of all configurations."""
    lines = [
        "| classifier | `--augment` | per-speaker norm. | held-out accuracy | weighted F1 | lowest class recall |",
        "|---|---|---|---|---|---|",
    ]
    for s in scores:
        lines.append(
            f"| {s.classifier} | {s.augment} | {'yes' if s.speaker_norm else 'no'} | {s.accuracy:.3f} | {s.f1_weighted:.3f} | "
            f"{s.lowest_recall_class} {s.lowest_recall:.2f} |"
        )
    return "\n".join(lines)


def markdown(scores: Sequence[HeldOutScore], *, n_train: int, n_test: int, command: str) -> str:
    """The results section: how the check was made, and its table."""
    return "\n".join(
        [
            f"### Held-out check: train on actors {TRAIN_ACTORS[0]}-{TRAIN_ACTORS[-1]}, "
            f"predict actors {TEST_ACTORS[0]}-{TEST_ACTORS[-1]}",
            "",
            f"`{command}` made this table. It links the {n_train} clips",
            f"of actors {TRAIN_ACTORS[0]}-{TRAIN_ACTORS[-1]} and the {n_test} clips of actors "
            f"{TEST_ACTORS[0]}-{TEST_ACTORS[-1]} into two folders, `train/Actor_XX/` and",
            "`test/Actor_XX/` (symbolic links to the files). Then, for",
            "each configuration, it runs the `ser` command (with the feature cache, `--cache-dir`):",
            "",
            "```bash",
            "ser train train/ --out m.joblib --classifier {svm,ensemble} --augment {none,speed-prefix,speed-noise,speed} [--speaker-norm] --cv-folds 0",
            "ser predict test/ --model m.joblib --format csv --output predictions.csv",
            "```",
            "",
            f"Accuracy is computed from the emotion code in the file names (`03-01-EE-...`). "
            f"{len(RAVDESS_EMOTIONS)} classes,",
            f"{n_test} clips, {len(TEST_ACTORS)} unseen actors:",
            "",
            table(scores),
            "",
            "The ensemble with `speed-prefix` is what `ser train` builds with no option (the bundled models'",
            f"configuration). These {len(TEST_ACTORS)} actors are a single split, so these numbers are noisier than the",
            "6-fold cross-validation by actor.",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="RAVDESS folder (Actor_XX/03-01-...).")
    parser.add_argument("--cache-dir", type=Path, default=Path("features/cache"), help="Feature cache folder.")
    parser.add_argument("--jobs", type=int, default=-1, help="Worker processes of `ser train` and `ser predict` (-1: all cores).")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "accuracy.md", help="File whose heldout section is rewritten."
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not SER.is_file():
        raise SystemExit(f"{SER}: no `ser` command beside this Python; install ser-classic into it")
    started = time.perf_counter()

    common = ["--jobs", str(args.jobs), "--cache-dir", str(args.cache_dir.resolve())]
    scores = []
    with tempfile.TemporaryDirectory(prefix="ser-held-out-") as scratch_name:
        scratch = Path(scratch_name)
        train, test = scratch / "train", scratch / "test"
        corpus = read_corpus(args.corpus, "ravdess")
        n_train, n_test = link_split(corpus, train, TRAIN_ACTORS), link_split(corpus, test, TEST_ACTORS)
        for classifier, speaker_norm, augment in CONFIGURATIONS:
            folder = scratch / f"{classifier}-{augment}{'-speaker-norm' if speaker_norm else ''}"
            folder.mkdir()
            model, predictions = folder / "m.joblib", folder / "p.csv"
            norm = ["--speaker-norm"] if speaker_norm else []
            run_ser(["train", str(train), "--out", str(model), "--classifier", classifier, "--augment", augment, *norm, "--cv-folds", "0", *common])
            run_ser(["predict", str(test), "--model", str(model), "--format", "csv", "--output", str(predictions), *common])
            scores.append(score(predictions, classifier, speaker_norm, augment, n_test))

    print(table(scores))
    write_section(args.out, "heldout", markdown(scores, n_train=n_train, n_test=n_test, command=f"python benchmarks/held_out.py {args.corpus}"))
    _log.info("wrote %s in %.1f min", args.out, (time.perf_counter() - started) / 60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
