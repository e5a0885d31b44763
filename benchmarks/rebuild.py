"""Do the documented commands rebuild the bundled models? From an empty feature cache, label for label.

    python benchmarks/rebuild.py ../shared/data/ravdess ../shared/data/crema-d
    # rewrites the rebuild section of docs/results.md

The `ser train` commands that docs/results.md gives for the bundled models run in new processes
with an empty feature cache of their own (``SER_CACHE_DIR``), writing to a temporary folder.
Then `ser predict` classifies every clip of both corpora with each rebuilt model and with the
bundled one, and the table gives the share of clips with the same label and the largest
difference of a probability. ``--quick`` adds ``--cv-folds 0`` to the commands: the card's
cross-validated scores are skipped, the model itself is fitted the same way (the scores are
computed on folds apart from the final fit). Not part of the test suite.
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
from pathlib import Path

import pandas as pd
from readme_section import write_json, write_section

from ser_classic.model_file import BUNDLED_MODELS

_log = logging.getLogger("rebuild")
ROOT = Path(__file__).resolve().parents[1]
SER = Path(sys.executable).parent / "ser"


def documented_commands(results_page: Path) -> dict[str, list[str]]:
    """Bundled model name -> the arguments of its `ser train` command in docs/results.md."""
    commands = {}
    for line in results_page.read_text().splitlines():
        if line.startswith("ser train ") and "ser_classic/bundled/ser-" in line:
            arguments = shlex.split(line)[1:]
            name = Path(arguments[arguments.index("--out") + 1]).stem.removeprefix("ser-")
            commands[name] = arguments
    if set(commands) != set(BUNDLED_MODELS):
        raise SystemExit(f"{results_page} gives commands for {sorted(commands)}, the bundled models are {sorted(BUNDLED_MODELS)}")
    return commands


def run(arguments: Sequence[str], environment: dict[str, str]) -> str:
    command = [str(SER), *arguments]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=ROOT)
    if result.returncode not in (0, 1):
        raise SystemExit(f"{shlex.join(command)} failed (exit code {result.returncode}):\n{result.stderr[-3000:]}")
    _log.info("%s: %.0f s", shlex.join(command[:3]), time.perf_counter() - started)
    return result.stdout


def predictions(model: Path, corpora: Sequence[Path], environment: dict[str, str]) -> pd.DataFrame:
    output = run(["predict", *map(str, corpora), "--model", str(model), "--format", "csv", "--jobs", "2",
                  "--cache-dir", environment["SER_CACHE_DIR"]], environment)
    return pd.read_csv(io.StringIO(output), keep_default_na=False).set_index("path")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ravdess", type=Path)
    parser.add_argument("crema_d", type=Path)
    parser.add_argument("--quick", action="store_true", help="skip the cards' cross-validated scores (--cv-folds 0)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    parser.add_argument("--json", type=Path, default=ROOT / "reports" / "rebuild.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    commands = documented_commands(ROOT / "docs" / "results.md")
    rows = []
    with tempfile.TemporaryDirectory(prefix="ser-rebuild-") as scratch:
        environment = {**os.environ, "SER_CACHE_DIR": str(Path(scratch) / "cache")}
        for name, arguments in commands.items():
            out = Path(scratch) / f"ser-{name}.joblib"
            arguments = [str(out) if argument.endswith(f"ser-{name}.joblib") else argument for argument in arguments]
            run([*arguments, *(["--cv-folds", "0"] if args.quick else [])], environment)
            rebuilt = predictions(out, [args.ravdess, args.crema_d], environment)
            shipped = predictions(BUNDLED_MODELS[name], [args.ravdess, args.crema_d], environment)
            probabilities = [column for column in shipped.columns if column.startswith("p_")]
            same = (rebuilt["emotion"] == shipped.loc[rebuilt.index, "emotion"]).mean()
            largest = (rebuilt[probabilities].astype(float) - shipped.loc[rebuilt.index, probabilities].astype(float)).abs().max().max()
            rows.append({"model": name, "command": shlex.join(["ser", *arguments]).replace(str(out), f"ser_classic/bundled/ser-{name}.joblib"),
                         "clips": len(rebuilt), "same_label": float(same), "largest_probability_difference": float(largest)})
    lines = [
        "### Rebuilding the bundled models",
        "",
        "`python benchmarks/rebuild.py ../shared/data/ravdess ../shared/data/crema-d"
        + (" --quick" if args.quick else "") + "` made this table: each command above, run in a new process with an",
        "empty feature cache" + (" and `--cv-folds 0` (no card scores; the same final fit)" if args.quick else "") + ", then `ser predict` on every clip",
        "of both corpora with the rebuilt and the shipped model.",
        "",
        "| model | clips | same label | largest difference of a probability |",
        "|---|---|---|---|",
        *[f"| `{row['model']}` | {row['clips']} | {row['same_label']:.1%} | {row['largest_probability_difference']:.2g} |" for row in rows],
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    write_section(args.out, "rebuild", text)
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
