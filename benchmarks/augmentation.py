"""Does training-only data augmentation help? RAVDESS speech (1440 clips, 8 classes), one command.

    python benchmarks/augmentation.py ../shared/data/ravdess     # rewrites the results in benchmarks/augmentation.md

Every recipe of :data:`ser_classic.augmentation.RECIPES` (settings fixed before any result was
seen) makes ``--copies`` augmented copies of every clip; their features are cached as parquet
files under ``<cache>/augmentation/``, keyed by recipe, number of copies and extractor settings
(which include the extractor version), so a rerun only trains. Original clips use the regular
feature cache of :class:`ser_classic.features.FeatureExtractor`.

Cross-validation: the folds of :mod:`ser_classic.evaluation` (6-fold GroupKFold by actor; random
stratified 5-fold, seed 0), the same folds for every row. A training fold gets the original
training clips plus the augmented copies of *those clips only*; a test fold holds original clips
only, so neither a test clip nor any copy of it is ever trained on. Rows: no augmentation, each
single recipe, the a-priori combination ``mix``, and ``best``, the chain of the singles that beat
no augmentation on the speaker-independent folds (chosen on those same folds, so optimistic).

Per-speaker normalization (``copy-set``): training originals are standardized with their
speaker's statistics, and copy ``k`` of a speaker's clips with the statistics of that copy set
(speaker, ``k``): each copy set is a "virtual speaker" recorded under one condition, and that is
exactly how a test speaker is treated (its clips standardized with their own statistics, whatever
the microphone or voice). The alternative, ``original`` statistics, leaves each augmentation's
systematic offset (noise raises flatness, speed moves F0) in the normalized copies, a shift the
test clips never show; it is measured too. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from readme_section import write_json, write_section

from ser_classic import audio
from ser_classic.augmentation import RECIPES, Recipe, augment, chain
from ser_classic.corpus import read_corpus
from ser_classic.evaluation import Evaluation
from ser_classic.features import FeatureExtractor
from ser_classic.features.config import FeatureConfig
from ser_classic.features.extractor import extract_vector, feature_names

_log = logging.getLogger("augmentation")

SEED = 0
N_SPLITS = {"speaker": 6, "random": 5}
SINGLES = ("noise", "gain", "speed", "pitch", "stretch", "mask")
#: Order in which helpful singles are chained into ``best``: changes of time and pitch first,
#: then level, then additive noise and masking (as a recording chain would apply them).
CHAIN_ORDER = ("speed", "pitch", "stretch", "gain", "noise", "mask")
A_PRIORI = "mix"
NORMALIZATIONS = ("off", "copy-set", "original")
METRICS = ("accuracy", "f1_weighted", "recall_worst")
HERE = Path(__file__).resolve().parent
#: The marked section of the findings page that a run rewrites; the rest of the page is prose.
SECTION = "augmentation-results"


# ---------------------------------------------------------------------------------------------
# Features


def ravdess_speech(root: str | Path) -> pd.DataFrame:
    """RAVDESS speech clips (no song): ``path, label, speaker, ...``."""
    table = read_corpus(root, "ravdess")
    return table[table["vocal_channel"] == "speech"].reset_index(drop=True)


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def clip_rng(recipe: Recipe, path: str) -> np.random.Generator:
    """The generator of one clip's copies: seeded by the run seed, the recipe and the file name,
    so copies do not depend on which worker makes them or in which order."""
    return np.random.default_rng([SEED, _stable_int(recipe.digest()), _stable_int(Path(path).name)])


def _copies_of_clip(path: str, recipes: Sequence[Recipe], n_copies: int, config: FeatureConfig) -> list[np.ndarray]:
    """Per recipe, the feature vectors of ``n_copies`` augmented copies of one clip: ``(n_copies, n_features)``."""
    signal = audio.load(path, sample_rate=config.sample_rate)
    vectors = []
    for recipe in recipes:
        copies = augment(signal, recipe, n_copies=n_copies, rng=clip_rng(recipe, path), sample_rate=config.sample_rate)
        rows = np.vstack([extract_vector(copy, config) for copy in copies])
        if not np.all(np.isfinite(rows)):
            raise ValueError(f"non-finite features for {path} with recipe {recipe.name}")
        vectors.append(rows)
    return vectors


def _cache_path(cache_dir: Path, recipe: Recipe, n_copies: int, config: FeatureConfig) -> Path:
    return cache_dir / "augmentation" / f"{recipe.name}-{recipe.digest()}-x{n_copies}-{config.digest()}.parquet"


def augmented_features(
    paths: Sequence[str], recipes: Sequence[Recipe], n_copies: int, cache_dir: Path, n_jobs: int
) -> dict[str, np.ndarray]:
    """Recipe name -> features of the copies, ``(n_clips, n_copies, n_features)`` in ``paths`` order."""
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    config, names = FeatureConfig(), feature_names()
    result: dict[str, np.ndarray] = {}
    missing = []
    for recipe in recipes:
        target = _cache_path(cache_dir, recipe, n_copies, config)
        if target.is_file():
            table = pd.read_parquet(target)
            if list(table.columns) == names and set(table.index.get_level_values("path")) >= set(paths):
                values = table.loc[[(path, k) for path in paths for k in range(n_copies)]].to_numpy()
                result[recipe.name] = values.reshape(len(paths), n_copies, len(names))
                continue
        missing.append(recipe)
    if not missing:
        return result
    started = time.perf_counter()
    jobs = (delayed(_copies_of_clip)(path, missing, n_copies, config) for path in paths)
    per_clip = list(tqdm(Parallel(n_jobs=n_jobs, return_as="generator", batch_size=8)(jobs), total=len(paths),
                         desc=f"augmented features ({', '.join(r.name for r in missing)})", unit="clip"))
    _log.info("augmented features of %d recipe(s) x %d copies in %.0f s", len(missing), n_copies, time.perf_counter() - started)
    for position, recipe in enumerate(missing):
        values = np.stack([clip[position] for clip in per_clip])
        index = pd.MultiIndex.from_product([list(paths), range(n_copies)], names=["path", "copy"])
        target = _cache_path(cache_dir, recipe, n_copies, config)
        target.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(values.reshape(-1, len(names)), index=index, columns=names).to_parquet(target)
        result[recipe.name] = values
    return result


# ---------------------------------------------------------------------------------------------
# Cross-validation


def splits(protocol: str, labels: np.ndarray, speakers: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds of :func:`ser_classic.evaluation.evaluate` for ``protocol``."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    if protocol == "speaker":
        return list(GroupKFold(n_splits=N_SPLITS["speaker"]).split(labels, labels, groups=speakers))
    return list(StratifiedKFold(n_splits=N_SPLITS["random"], shuffle=True, random_state=SEED).split(labels, labels))


def _standardize(values: np.ndarray, groups: np.ndarray, statistics_of: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
    """Rows minus their group's mean over their group's std, via :mod:`ser_classic.normalization`,
    or with given ``(mean, std)`` per group."""
    from ser_classic.normalization import standardize_per_speaker

    if statistics_of is None:
        return standardize_per_speaker(pd.DataFrame(values), groups).to_numpy()
    mean = np.vstack([statistics_of[g][0] for g in groups])
    std = np.vstack([statistics_of[g][1] for g in groups])
    return (values - mean) / std


def fit_fold(
    original: np.ndarray,
    copies: np.ndarray | None,
    labels: np.ndarray,
    speakers: np.ndarray,
    train_index: np.ndarray,
    test_index: np.ndarray,
    classifier: str,
    normalization: str,
    protocol: str,
) -> np.ndarray:
    """Predicted labels of one test fold: train on the fold's originals plus their copies."""
    from threadpoolctl import threadpool_limits

    from ser_classic.models import build_pipeline, fit_pipeline
    from ser_classic.normalization import speaker_statistics

    train_x, train_y, sources = original[train_index], labels[train_index], train_index
    test_x = original[test_index]
    if normalization != "off":
        train_x = _standardize(train_x, speakers[train_index])
        test_x = _standardize(test_x, speakers[test_index])
    if copies is not None:
        n_copies = copies.shape[1]
        copy_x = copies[train_index].reshape(-1, copies.shape[2])
        copy_speakers = np.repeat(speakers[train_index], n_copies)
        if normalization == "copy-set":
            copy_sets = np.char.add(copy_speakers.astype(str), np.tile([f"#{k}" for k in range(n_copies)], len(train_index)))
            copy_x = _standardize(copy_x, copy_sets)
        elif normalization == "original":
            mean, std = speaker_statistics(pd.DataFrame(original[train_index]), speakers[train_index])
            statistics = {s: (mean.loc[s].to_numpy(), std.loc[s].to_numpy()) for s in mean.index}
            copy_x = _standardize(copy_x, copy_speakers, statistics)
        train_x = np.vstack([train_x, copy_x])
        train_y = np.concatenate([train_y, np.repeat(labels[train_index], n_copies)])
        sources = np.concatenate([train_index, np.repeat(train_index, n_copies)])
    # Calibration folds keep a clip with its copies, and a speaker whole under the speaker protocol.
    groups = speakers[sources] if protocol == "speaker" else sources
    names = feature_names()
    with threadpool_limits(1):
        pipeline = fit_pipeline(build_pipeline(classifier, seed=SEED), pd.DataFrame(train_x, columns=names), train_y, groups)
        return np.asarray(pipeline.predict(pd.DataFrame(test_x, columns=names)), dtype=str)


def run_row(
    spec: dict[str, Any], original: np.ndarray, copies: np.ndarray | None, labels: np.ndarray, speakers: np.ndarray, n_jobs: int
) -> dict[str, Any]:
    """Cross-validate one (protocol, classifier, recipe, normalization); folds run in parallel."""
    from joblib import Parallel, delayed

    started = time.perf_counter()
    folds = splits(spec["protocol"], labels, speakers)
    predictions = Parallel(n_jobs=n_jobs)(
        delayed(fit_fold)(original, copies, labels, speakers, train, test, spec["classifier"], spec["normalization"], spec["protocol"])
        for train, test in folds
    )
    y_pred = np.empty(len(labels), dtype=object)
    fold_of = np.empty(len(labels), dtype=int)
    for fold, ((_, test), predicted) in enumerate(zip(folds, predictions)):
        y_pred[test] = predicted
        fold_of[test] = fold
    evaluation = Evaluation(
        protocol=spec["protocol"], classifier=spec["classifier"], classes=sorted(set(labels)), n_splits=len(folds),
        seed=SEED, y_true=labels, y_pred=y_pred.astype(str), fold_of=fold_of, speaker_norm=spec["normalization"] != "off",
    )
    fold_scores = evaluation.fold_scores()
    result = {
        **spec,
        "folds": fold_scores,
        "mean": {m: float(np.mean([f[m] for f in fold_scores])) for m in METRICS},
        "std": {m: float(np.std([f[m] for f in fold_scores])) for m in METRICS},
        "seconds": time.perf_counter() - started,
    }
    _log.info(
        "%-7s %-8s %-9s %-8s acc %.3f  F1w %.3f  worst %.3f  (%.0f s)", spec["protocol"], spec["classifier"],
        spec["recipe"], spec["normalization"], result["mean"]["accuracy"], result["mean"]["f1_weighted"],
        result["mean"]["recall_worst"], result["seconds"],
    )
    return result


# ---------------------------------------------------------------------------------------------
# Report


def _baseline(results: list[dict[str, Any]], row: dict[str, Any]) -> dict[str, Any]:
    normalization = "off" if row["normalization"] == "off" else "copy-set"
    return next(
        r for r in results
        if r["recipe"] == "none" and r["protocol"] == row["protocol"] and r["classifier"] == row["classifier"]
        and r["normalization"] == normalization
    )


def _delta(results: list[dict[str, Any]], row: dict[str, Any]) -> str:
    if row["recipe"] == "none":
        return "-"
    base = _baseline(results, row)
    differences = 100 * np.array([f["accuracy"] - b["accuracy"] for f, b in zip(row["folds"], base["folds"])])
    return f"{differences.mean():+.1f} ± {differences.std():.1f} ({int(np.sum(differences > 0))}/{len(differences)})"


def _normalization_label(row: dict[str, Any]) -> str:
    if row["recipe"] == "none":
        return "off" if row["normalization"] == "off" else "per speaker"
    return row["normalization"]


def markdown(results: list[dict[str, Any]], context: dict[str, Any]) -> str:
    """The findings page: settings, one table per protocol and classifier, timings."""
    descriptions = {name: recipe.description for name, recipe in RECIPES.items()}
    descriptions["none"] = "no augmentation"
    descriptions["best"] = context["best_description"]
    descriptions["union"] = context.get("union_description", "")
    lines = [
        f"Command: `{context['command']}` ({context['minutes']:.0f} min on 2 cores, "
        f"{context['feature_minutes']:.1f} min of it computing or reading the cached features). "
        "*time* is the wall time of a row's cross-validation, folds in 2 processes.",
        "",
        f"RAVDESS speech, {context['n_clips']} clips, 8 classes, {context['n_features']} features per clip "
        f"(`feature_names()`, extractor {context['extractor']}). Each recipe adds {context['n_copies']} augmented "
        "copies of every *training* clip of a fold; test folds hold original clips only, and no copy of a "
        "test clip is ever in its training fold. Every row of a protocol uses the same folds "
        "(speaker: 6-fold GroupKFold by actor, 4 actors held out per fold; random: stratified 5-fold, "
        "seed 0, speaker-dependent, for comparison only). The recipe settings were fixed before any result "
        "was seen (`ser_classic.augmentation.RECIPES`); none was tuned on these folds. `best` is the "
        "exception: the chain of the singles whose mean speaker-independent accuracy (SVM, with and "
        "without normalization, averaged) beat no augmentation, applied one after the other to each copy; "
        "and `union`, the copies of those singles side by side instead of chained. Both are selected on "
        "the test folds, so their gains are optimistic. The random-protocol and ensemble rows use the "
        "recipe with the largest such gain.",
        "",
        "Normalization: `off`; `copy-set` (training originals standardized per speaker; copy *k* of a "
        "speaker's clips with the statistics of that copy set, a virtual speaker recorded under one "
        "condition, which is how a test speaker's clips are treated); `original` (copies standardized "
        "with their speaker's original statistics, which leaves each augmentation's systematic shift in "
        "the training data, a shift test clips never show). Test clips are always standardized with "
        "their own speaker's statistics in the test fold.",
        "",
        "Columns: means over folds; *Δ acc* is the mean per-fold accuracy difference to no augmentation "
        "with the same classifier and normalization (`copy-set` and `original` rows against the "
        "normalized baseline), in points, ± its standard deviation over folds, with the number of folds "
        "it improved. A test fold holds 240 (speaker) or 288 (random) clips: one clip is 0.4 points.",
        "",
        "| recipe | what | normalization | accuracy | weighted F1 | worst class recall | Δ acc (folds better) | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    header = lines[-2:]
    lines = lines[:-2]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in results:
        groups.setdefault((row["protocol"], row["classifier"]), []).append(row)
    for (protocol, classifier), rows in groups.items():
        title = "speaker-independent, 6 folds by actor" if protocol == "speaker" else "random stratified 5-fold (speaker-dependent, for comparison only)"
        lines += ["", f"## {classifier.upper() if classifier == 'svm' else classifier}, {title}", "", *header]
        for row in sorted(rows, key=lambda r: (NORMALIZATIONS.index(r["normalization"]), r["recipe"] != "none")):
            mean, std = row["mean"], row["std"]
            lines.append(
                f"| {row['recipe']} | {descriptions.get(row['recipe'], '')} | {_normalization_label(row)} | "
                f"{mean['accuracy']:.3f} ± {std['accuracy']:.3f} | {mean['f1_weighted']:.3f} | {mean['recall_worst']:.3f} | "
                f"{_delta(results, row)} | {row['seconds']:.0f} s |"
            )
    lines += ["", "Feature time per recipe and copy count is in the log; the cost is dominated by decoding the "
              "48 kHz FLAC files (about 0.1 s per clip), not by the augmentations (per copy of one RAVDESS clip: "
              f"pitch shift, phase vocoder + resampling, {context['timings_ms']['pitch']:.0f} ms, speed perturbation "
              f"{context['timings_ms']['speed']:.1f} ms, time stretch {context['timings_ms']['stretch']:.0f} ms, "
              f"frequency masking {context['timings_ms']['mask']:.0f} ms, noise {context['timings_ms']['noise']:.1f} ms)."]
    return "\n".join(lines) + "\n"


def transform_timings(path: str) -> dict[str, float]:
    """Milliseconds per copy of each single recipe on one clip (warm, this process)."""
    config = FeatureConfig()
    signal = audio.load(path, sample_rate=config.sample_rate)
    timings = {}
    for name in SINGLES:
        rng = np.random.default_rng(SEED)
        augment(signal, name, n_copies=1, rng=rng)
        started = time.perf_counter()
        augment(signal, name, n_copies=20, rng=rng)
        timings[name] = (time.perf_counter() - started) / 20 * 1000
    return timings


# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="RAVDESS folder (Actor_XX/03-01-...).")
    parser.add_argument("--cache-dir", type=Path, default=Path("features/cache"), help="Feature cache folder.")
    parser.add_argument("--copies", type=int, default=2, help="Augmented copies of each training clip.")
    parser.add_argument("--jobs", type=int, default=2, help="Worker processes, for features and for folds.")
    parser.add_argument("--no-ensemble", action="store_true", help="Skip the ensemble rows.")
    parser.add_argument("--out", type=Path, default=HERE / "augmentation.md", help="Findings page (Markdown); its results section is rewritten.")
    parser.add_argument("--json", type=Path, default=Path("reports") / "augmentation.json", help="All results as JSON.")
    parser.add_argument("--from-json", action="store_true", help="Only rewrite the page from the JSON of a previous run.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.from_json:
        previous = json.loads(args.json.read_text())
        write_section(args.out, SECTION, markdown(previous["rows"], previous["context"]))
        _log.info("rewrote %s from %s", args.out, args.json)
        return 0
    started = time.perf_counter()

    table = ravdess_speech(args.corpus)
    paths = table["path"].tolist()
    labels, speakers = table["label"].to_numpy(dtype=str), table["speaker"].to_numpy(dtype=str)
    original = FeatureExtractor(cache_dir=args.cache_dir, n_jobs=args.jobs).extract_files(paths, progress=True).to_numpy()
    copies: dict[str, np.ndarray | None] = {"none": None}
    copies.update(augmented_features(paths, [RECIPES[name] for name in (*SINGLES, A_PRIORI)], args.copies, args.cache_dir, args.jobs))
    feature_seconds = time.perf_counter() - started

    def run(protocol: str, classifier: str, recipe: str, normalization: str) -> dict[str, Any]:
        spec = {"protocol": protocol, "classifier": classifier, "recipe": recipe, "normalization": normalization}
        return run_row(spec, original, copies[recipe], labels, speakers, args.jobs)

    results = []
    for recipe in ("none", *SINGLES, A_PRIORI):
        for normalization in NORMALIZATIONS:
            if not (recipe == "none" and normalization == "original"):
                results.append(run("speaker", "svm", recipe, normalization))

    def gain_of(recipe: str) -> float:
        rows = {r["normalization"]: r["mean"]["accuracy"] for r in results if r["recipe"] == recipe and r["protocol"] == "speaker"}
        base = {r["normalization"]: r["mean"]["accuracy"] for r in results if r["recipe"] == "none" and r["protocol"] == "speaker"}
        return float(np.mean([rows["off"] - base["off"], rows["copy-set"] - base["copy-set"]]))

    helpful = [name for name in CHAIN_ORDER if gain_of(name) > 0]
    if len(helpful) >= 2:
        best_recipe = chain("best", helpful, "chain of the singles that helped: " + " + ".join(helpful))
        feature_started = time.perf_counter()
        copies["best"] = augmented_features(paths, [best_recipe], args.copies, args.cache_dir, args.jobs)["best"]
        feature_seconds += time.perf_counter() - feature_started
        for normalization in NORMALIZATIONS:
            results.append(run("speaker", "svm", "best", normalization))
        best_description = best_recipe.description + " (selected on the test folds)"
        # The other way to combine: no chaining, each helpful single's copies side by side.
        copies["union"] = np.concatenate([copies[name] for name in helpful], axis=1)
        for normalization in ("off", "copy-set"):
            results.append(run("speaker", "svm", "union", normalization))
    else:
        best_description = f"singles that helped: {helpful or 'none'}; no combination to build"
    union_description = (f"the {args.copies} copies of each of {' and '.join(helpful)} side by side, "
                         f"{args.copies * len(helpful)} copies per clip (selected on the test folds)")
    candidates = [name for name in (*SINGLES, A_PRIORI, "best", "union") if name in copies and name != "none"]
    top = max(candidates, key=gain_of)
    _log.info("helpful singles %s; best recipe %s (%+.3f)", helpful, top, gain_of(top))

    for normalization in ("off", "copy-set"):
        for recipe in ("none", top):
            results.append(run("random", "svm", recipe, normalization))
    if not args.no_ensemble:
        for normalization in ("off", "copy-set"):
            for recipe in ("none", top):
                results.append(run("speaker", "ensemble", recipe, normalization))

    minutes = (time.perf_counter() - started) / 60
    command = f"python benchmarks/augmentation.py {args.corpus} --copies {args.copies} --jobs {args.jobs}"
    from ser_classic.features.config import EXTRACTOR_VERSION

    context = {
        "command": command, "minutes": minutes, "feature_minutes": feature_seconds / 60, "n_clips": len(paths),
        "n_features": original.shape[1], "extractor": f"version {EXTRACTOR_VERSION}, settings {FeatureConfig().digest()}",
        "n_copies": args.copies, "best_description": best_description, "union_description": union_description, "timings_ms": transform_timings(paths[0]),
    }
    write_section(args.out, SECTION, markdown(results, context))
    write_json(args.json, {"context": context, "helpful": helpful, "top": top, "rows": results})
    _log.info("wrote %s and %s in %.1f min", args.out, args.json, minutes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
