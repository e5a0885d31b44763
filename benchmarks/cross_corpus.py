"""Generalization beyond one corpus and one file format: RAVDESS and CREMA-D, in one run.

    pip install -e ".[bench]"            # opensmile, for the eGeMAPS rows
    python benchmarks/cross_corpus.py ../shared/data/ravdess ../shared/data/crema-d

Writes its section of ``docs/cross-corpus.md`` (and ``reports/cross-corpus.json``). Three parts:

1. **Formats.** The real ``ser train --classifier svm`` on RAVDESS actors 1-18 (FLAC), then
   ``ser predict`` on actors 19-24 as FLAC and as converted by sox (``sox in.flac -b 16 -r RATE
   out.wav``, which dithers; ``sox in.flac -r 44100 -C 128 out.mp3``) and, when ffmpeg is
   installed, AAC in ``.m4a`` (``ffmpeg -i in.flac -c:a aac -b:a 128k out.m4a``). Accuracy over the
   corpus's 8 classes, and the share of labels equal to the FLAC files'. Needs ``sox`` (with its
   MP3 format) on the PATH; ffmpeg is optional.
2. **Cross-corpus.** The 6 classes both corpora have, unweighted average recall (UAR):
   speaker-independent within each corpus (5 folds by actor on CREMA-D, 6 on RAVDESS), and
   leave-one-corpus-out both ways, for eGeMAPSv02 and our features, with an RBF SVM (C=1,
   balanced, after a standard scaler) and with the bundled models' classifier (the ensemble, trained
   without the bundled models' copies: fitting 6 rows per clip in every fold would take hours), without
   normalization, with per-corpus ("batch") and with per-speaker standardization.
3. **One model for both corpora.** The bundled classifier (no copies) trained on both corpora,
   speaker-independent (6 folds by speaker over both), scored on each corpus's clips, against
   the same configuration trained on that corpus alone.

Features are cached (``--cache-dir``). Not part of the test suite; about 40 minutes on 2 cores
with an empty cache.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from held_out import TEST_ACTORS, TRAIN_ACTORS, link_split, run_ser
from readme_section import write_json, write_section
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from ser_classic.corpus import parse_ravdess_name, read_corpora, read_corpus, select_classes
from ser_classic.evaluation import evaluate
from ser_classic.features import FeatureExtractor
from ser_classic.features.augmented import augmented_features

_log = logging.getLogger("cross_corpus")

ROOT = Path(__file__).resolve().parents[1]
#: The bundled models' classifier (ser_classic/bundled/ser-default.card.json), without their training copies.
BUNDLED = {"classifier": "ensemble", "augment": "none"}
#: Name -> (shell command template, file ending); {src} and {dst} are filled in.
FORMATS: dict[str, tuple[list[str], str]] = {
    "WAV 16-bit 44.1 kHz": (["sox", "{src}", "-b", "16", "-r", "44100", "{dst}"], ".wav"),
    "WAV 16-bit 22.05 kHz": (["sox", "{src}", "-b", "16", "-r", "22050", "{dst}"], ".wav"),
    "WAV 16-bit 16 kHz": (["sox", "{src}", "-b", "16", "-r", "16000", "{dst}"], ".wav"),
    "MP3 128 kbit/s": (["sox", "{src}", "-r", "44100", "-C", "128", "{dst}"], ".mp3"),
    "AAC 128 kbit/s (.m4a)": (["ffmpeg", "-loglevel", "error", "-i", "{src}", "-c:a", "aac", "-b:a", "128k", "{dst}"], ".m4a"),
    "WAV 16-bit 8 kHz (telephone band)": (["sox", "{src}", "-b", "16", "-r", "8000", "{dst}"], ".wav"),
}
NORMALIZATIONS = ("none", "batch", "speaker")


# ---------------------------------------------------------------------------------------------
# 1. Formats


def convert(test: Path, folder: Path, command: list[str], ending: str) -> None:
    """Every clip under ``test`` converted by ``command`` into ``folder`` (same sub-folders)."""
    for source in sorted(test.rglob("*.flac")):
        target = folder / source.relative_to(test).with_suffix(ending)
        target.parent.mkdir(parents=True, exist_ok=True)
        filled = [part.format(src=source.resolve(), dst=target) for part in command]
        subprocess.run(filled, check=True, capture_output=True)


def predictions(csv: Path) -> pd.Series:
    """Predicted emotion by clip name (without ending) from a ``ser predict`` CSV."""
    frame = pd.read_csv(csv, keep_default_na=False)
    failed = frame[frame["error"] != ""]
    if len(failed):
        raise SystemExit(f"{csv}: {len(failed)} file(s) failed, e.g. {failed.iloc[0]['path']}: {failed.iloc[0]['error']}")
    return pd.Series(frame["emotion"].to_numpy(), index=[Path(p).stem for p in frame["path"]])


def format_rows(ravdess: Path, cache_dir: Path, jobs: int) -> list[dict[str, Any]]:
    """Part 1: accuracy and agreement with the FLAC labels, per format."""
    common = ["--jobs", str(jobs), "--cache-dir", str(cache_dir.resolve())]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ser-formats-") as scratch_name:
        scratch = Path(scratch_name)
        train, test = scratch / "train", scratch / "test"
        corpus = read_corpus(ravdess, "ravdess")
        link_split(corpus, train, TRAIN_ACTORS)
        link_split(corpus, test, TEST_ACTORS)
        model = scratch / "m.joblib"
        run_ser(["train", str(train), "--out", str(model), "--classifier", "svm", "--cv-folds", "0", *common])
        run_ser(["predict", str(test), "--model", str(model), "--format", "csv", "--output", str(scratch / "flac.csv"), *common])
        reference = predictions(scratch / "flac.csv")
        truth = pd.Series({name: parse_ravdess_name(name + ".flac")["label"] for name in reference.index})
        rows.append({"format": "FLAC 48 kHz (as recorded)", "accuracy": float((reference == truth).mean()), "same": 1.0})
        for name, (command, ending) in FORMATS.items():
            if shutil.which(command[0]) is None:
                _log.warning("%s: no %s on the PATH, row skipped", name, command[0])
                continue
            folder = scratch / re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
            convert(test, folder, command, ending)
            csv = folder.with_suffix(".csv")
            run_ser(["predict", str(folder), "--model", str(model), "--format", "csv", "--output", str(csv), *common])
            predicted = predictions(csv).reindex(reference.index)
            rows.append({
                "format": name,
                "accuracy": float((predicted == truth).mean()),
                "same": float((predicted == reference).mean()),
            })
            _log.info("%s: accuracy %.3f, same label %.2f", name, rows[-1]["accuracy"], rows[-1]["same"])
    return rows


# ---------------------------------------------------------------------------------------------
# 2. Cross-corpus


def svm_c1() -> Any:
    """The baseline of the issue's table: RBF SVM, C=1, balanced classes, after a scaler."""
    return make_pipeline(StandardScaler(), SVC(C=1.0, class_weight="balanced"))


def uar_cells(
    features: pd.DataFrame, table: pd.DataFrame, classifier: Any, normalization: str, copies: Sequence[pd.DataFrame] = ()
) -> dict[str, float]:
    """UAR within each corpus (folds by speaker) and leave-one-corpus-out both ways."""
    options = {"speaker_norm": normalization == "speaker", "batch_norm": normalization == "batch"}
    cells = {}
    for corpus, folds in (("crema-d", 5), ("ravdess", 6)):
        inside = (table["corpus"] == corpus).to_numpy()
        result = evaluate(
            features[inside], table["label"][inside], table["speaker"][inside], classifier=classifier, n_splits=folds,
            corpora=table["corpus"][inside], augmented=[c[inside] for c in copies], **options,
        )
        cells[corpus] = result.summary()["mean"]["uar"]
    result = evaluate(
        features, table["label"], table["speaker"], classifier=classifier, protocol="corpus", corpora=table["corpus"],
        augmented=list(copies), **options,
    )
    for held_out, scores in zip(result.fold_corpora, result.fold_scores()):
        cells["ravdess -> crema-d" if held_out == "crema-d" else "crema-d -> ravdess"] = scores["uar"]
    return cells


def cross_corpus_rows(
    feature_sets: dict[str, pd.DataFrame], table: pd.DataFrame, copies: Sequence[pd.DataFrame]
) -> list[dict[str, Any]]:
    """Part 2: every feature set x classifier x normalization."""
    rows = []
    runs: list[tuple[str, str, Callable[[], Any], Sequence[pd.DataFrame]]] = [
        (name, "svm C=1", svm_c1, ()) for name in feature_sets
    ]
    runs.append(("ours", f"{BUNDLED['classifier']} (bundled classifier, no copies)", lambda: BUNDLED["classifier"], copies))
    for features_name, classifier_name, classifier, run_copies in runs:
        for normalization in NORMALIZATIONS:
            started = time.perf_counter()
            cells = uar_cells(feature_sets[features_name], table, classifier(), normalization, run_copies)
            rows.append({"features": features_name, "classifier": classifier_name, "normalization": normalization, **cells})
            _log.info("%s, %s, %s: %s (%.0f s)", features_name, classifier_name, normalization,
                      {k: round(v, 3) for k, v in cells.items()}, time.perf_counter() - started)
    return rows


# ---------------------------------------------------------------------------------------------
# 3. One model for both corpora


def joint_rows(features: pd.DataFrame, table: pd.DataFrame, copies: Sequence[pd.DataFrame]) -> list[dict[str, Any]]:
    """Part 3: the bundled classifier trained on both corpora vs on each alone."""
    joint = evaluate(
        features, table["label"], table["speaker"], classifier=BUNDLED["classifier"], n_splits=6, augmented=list(copies),
    ).scores_by(table["corpus"])
    rows = []
    for corpus, folds in (("crema-d", 5), ("ravdess", 6)):
        inside = (table["corpus"] == corpus).to_numpy()
        alone = evaluate(
            features[inside], table["label"][inside], table["speaker"][inside], classifier=BUNDLED["classifier"],
            n_splits=folds, augmented=[c[inside] for c in copies],
        ).summary()["mean"]
        rows.append({"corpus": corpus, "both corpora": joint[corpus]["uar"], "this corpus alone": alone["uar"]})
        _log.info("%s: both %.3f, alone %.3f", corpus, rows[-1]["both corpora"], rows[-1]["this corpus alone"])
    return rows


# ---------------------------------------------------------------------------------------------
# The page


def markdown(results: dict[str, Any], *, command: str, minutes: float) -> str:
    lines = [
        "# Results: formats and corpora",
        "",
        f"Made by `{command}` ({minutes:.0f} min on {results['cores']} cores); the script's docstring says how.",
        "Rerun it after any change to the features or the bundled configuration.",
        "",
        "## The same speech in other file formats",
        "",
        "`ser train --classifier svm` on RAVDESS actors 1-18 (FLAC), `ser predict` on the 360 clips of",
        "actors 19-24 as recorded and as converted; 8 classes. *same label*: share of clips whose label",
        "equals the one predicted from the FLAC file.",
        "",
        "| format | accuracy | same label as FLAC |",
        "|---|---|---|",
        *[f"| {r['format']} | {r['accuracy']:.3f} | {r['same']:.0%} |" for r in results["formats"]],
        "",
        "## Across corpora",
        "",
        "RAVDESS (24 actors, studio, 48 kHz) and CREMA-D (91 actors, varied rooms and microphones,",
        "16 kHz), the 6 classes both have (angry, disgust, fearful, happy, neutral, sad; chance 0.167).",
        "Unweighted average recall (UAR). *Within*: folds grouped by actor inside one corpus.",
        "*A -> B*: trained on all of A, tested on all of B, one clip at a time unless normalized.",
        "*batch*: each corpus standardized by its own clips' statistics (what a folder of one user's",
        "recordings allows without speaker labels); *speaker*: each speaker by their own clips'.",
        "",
        "| features | classifier | normalization | CREMA-D within | RAVDESS within | RAVDESS -> CREMA-D | CREMA-D -> RAVDESS |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {r['features']} | {r['classifier']} | {r['normalization']} | {r['crema-d']:.3f} | {r['ravdess']:.3f} | "
            f"{r['ravdess -> crema-d']:.3f} | {r['crema-d -> ravdess']:.3f} |"
            for r in results["cross_corpus"]
        ],
        "",
        "## One model for both corpora",
        "",
        "The bundled classifier (soft-voting ensemble of SVM, logistic regression and MLP, no",
        "normalization, no training copies), 6 classes,",
        "UAR on each corpus's clips: trained on both corpora (6 folds grouped by speaker over both) and",
        "trained on that corpus alone (5 folds by actor on CREMA-D, 6 on RAVDESS).",
        "",
        "| corpus | trained on both corpora | trained on this corpus alone |",
        "|---|---|---|",
        *[f"| {r['corpus']} | {r['both corpora']:.3f} | {r['this corpus alone']:.3f} |" for r in results["joint"]],
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ravdess", type=Path, help="RAVDESS folder (Actor_XX/03-01-...).")
    parser.add_argument("crema_d", type=Path, help="CREMA-D folder (AAAA_SSS_EEE_LL files).")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "features" / "cache", help="Feature cache folder.")
    parser.add_argument("--jobs", type=int, default=-1, help="Worker processes (-1: all cores).")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "cross-corpus.md", help="Results page to write.")
    parser.add_argument("--json", type=Path, default=ROOT / "reports" / "cross-corpus.json", help="Raw results.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = time.perf_counter()
    from accuracy import opensmile_features

    results: dict[str, Any] = {"cores": os.cpu_count()}
    results["formats"] = format_rows(args.ravdess, args.cache_dir, args.jobs)
    table = select_classes(read_corpora([args.ravdess, args.crema_d]), "shared")
    paths = table["path"].tolist()
    ours = FeatureExtractor(cache_dir=args.cache_dir, n_jobs=args.jobs).extract_files(paths, progress=True).reset_index(drop=True)
    egemaps = opensmile_features(paths, "eGeMAPSv02", args.cache_dir, args.jobs).reset_index(drop=True)
    copies = (
        []
        if BUNDLED["augment"] == "none"
        else [c.reset_index(drop=True) for c in augmented_features(paths, BUNDLED["augment"], cache_dir=args.cache_dir, n_jobs=args.jobs, progress=True)]
    )
    results["cross_corpus"] = cross_corpus_rows({"eGeMAPSv02": egemaps, "ours": ours}, table, copies)
    results["joint"] = joint_rows(ours, table, copies)
    minutes = (time.perf_counter() - started) / 60
    command = f"python benchmarks/cross_corpus.py {args.ravdess} {args.crema_d}"
    write_json(args.json, results)
    write_section(args.out, "crosscorpus", markdown(results, command=command, minutes=minutes))
    _log.info("wrote %s in %.1f min", args.out, minutes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
