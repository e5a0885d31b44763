"""A model card for people: Markdown text and a confusion-matrix picture from the card's data.

The card (``NAME.card.json``, see :mod:`ser_classic.models`) is the one source: nothing here
is re-typed or re-computed from the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from typing import Any

__all__ = [
    "feature_groups",
    "feature_group_sizes",
    "training_corpora",
    "card_markdown",
    "confusion_summary",
    "plot_card_confusion",
]

#: Score key on the card -> column title.
_METRICS = (
    ("accuracy", "accuracy"),
    ("f1_weighted", "weighted F1"),
    ("f1_macro", "macro F1"),
    ("recall_worst", "worst class recall"),
)


def feature_groups(names: Sequence[str]) -> dict[str, str]:
    """Feature name -> its group in :data:`ser_classic.features.FEATURE_GROUPS` (the groups
    explanations attribute to).

    A feature belongs to the track whose name is its longest prefix (``mfcc_delta_01_mean``
    is ``mfcc_delta``, not ``mfcc``); names matching no track are in the group ``"other"``.
    """
    from .features.descriptions import FEATURE_GROUPS, track_of

    group_of = {track: group for group, members in FEATURE_GROUPS.items() for track in members.tracks}
    return {name: group_of.get(track_of(name), "other") for name in names}


def feature_group_sizes(names: Sequence[str]) -> dict[str, int]:
    """Number of features in each group (see :func:`feature_groups`), in the groups' order."""
    from .features.descriptions import FEATURE_GROUPS

    sizes = dict.fromkeys(FEATURE_GROUPS, 0)
    for group in feature_groups(names).values():
        sizes[group] = sizes.get(group, 0) + 1
    return sizes


def training_corpora(training: dict[str, Any]) -> str:
    """The training corpora of a card's ``training`` part: names with clip counts when recorded,
    else the paths given (cards written before several corpora were read)."""
    if training.get("corpora"):
        return ", ".join(f"{name} ({count} clips)" for name, count in training["corpora"].items())
    corpus = training.get("corpus", "?")
    return ", ".join(corpus) if isinstance(corpus, list) else str(corpus)


def _per_corpus_rows(per_corpus: dict[str, dict[str, float]]) -> list[str]:
    rows = ["| clips of | accuracy | UAR | weighted F1 |", "|---|---|---|---|"]
    rows += [f"| {corpus} | {s['accuracy']:.3f} | {s['uar']:.3f} | {s['f1_weighted']:.3f} |" for corpus, s in per_corpus.items()]
    return rows


def _score_rows(evaluation: dict[str, Any]) -> list[str]:
    rows = ["| protocol | folds | " + " | ".join(label for _, label in _METRICS) + " |", "|---|---|" + "---|" * len(_METRICS)]
    for protocol, scores in evaluation.items():
        mean, std = scores.get("mean", {}), scores.get("std", {})
        cells = [f"{mean[key]:.3f} ± {std.get(key, 0.0):.3f}" if key in mean else "n/a" for key, _ in _METRICS]
        rows.append(f"| **{protocol}** | {scores.get('n_splits', '?')} | " + " | ".join(cells) + " |")
    rows.append("")
    rows += [f"- **{protocol}**: {scores.get('protocol_description', '')}" for protocol, scores in evaluation.items()]
    return rows


def _per_class_rows(per_class: dict[str, dict[str, float]]) -> list[str]:
    rows = ["| class | precision | recall | F1 | clips |", "|---|---|---|---|---|"]
    rows += [
        f"| {label} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['support']} |"
        for label, s in per_class.items()
    ]
    return rows


def _feature_rows(card: dict[str, Any]) -> list[str]:
    """The card's features per group, with each group's family: the groups explanations name."""
    from .features.descriptions import FEATURE_GROUPS

    sizes = feature_group_sizes(card.get("feature_names", []))
    rows = [f"#### Features ({card.get('n_features', sum(sizes.values()))})", "", "| group | family | features |", "|---|---|---|"]
    rows += [f"| {group} | {FEATURE_GROUPS[group].family if group in FEATURE_GROUPS else 'other'} | {count} |" for group, count in sizes.items() if count]
    return rows


def card_markdown(card: dict[str, Any], *, protocol: str = "speaker") -> str:
    """The card as Markdown: what the model is, what it was trained on, how well it scored.

    Parameters
    ----------
    card : dict
        A model card as :func:`ser_classic.models.read_card` returns it.
    protocol : str
        Whose per-class scores to list (the honest, speaker-independent one by default).
    """
    training = card.get("training", {})
    evaluation = card.get("evaluation", {})
    classes = card.get("classes", [])
    lines = [
        f"### Model `{card.get('name', '?')}`",
        "",
        f"- **Classifier**: {card.get('classifier', '?')} ({'; '.join(card.get('pipeline', []))})",
        f"- **Classes** ({len(classes)}): {', '.join(classes)}",
        f"- **Trained on**: {training.get('n_clips', '?')} clips, {training.get('n_speakers', '?')} speakers "
        f"from {training_corpora(training)}",
        f"- **Augmentation**: {training.get('augmentation', 'none')}",
        f"- **Created**: {card.get('created', '?')}, seed {card.get('seed', '?')}",
        f"- **Artifact SHA-256**: `{card.get('artifact', {}).get('sha256', '?')}` (checked before loading)",
        "",
        "#### Cross-validated scores",
        "",
    ]
    if evaluation:
        lines += _score_rows(evaluation)
    else:
        lines.append("This card holds no evaluation: nothing tells how far to trust this model.")
    if "per_corpus" in evaluation.get(protocol, {}):
        lines += ["", f"#### Each corpus's clips ({protocol} protocol)", "", *_per_corpus_rows(evaluation[protocol]["per_corpus"])]
    if protocol in evaluation and "per_class" in evaluation[protocol]:
        lines += ["", f"#### Per class ({protocol} protocol)", "", *_per_class_rows(evaluation[protocol]["per_class"])]
    lines += ["", *_feature_rows(card)]
    return "\n".join(lines) + "\n"


def confusion_summary(card: dict[str, Any], protocol: str = "speaker") -> dict[str, Any] | None:
    """``{"classes", "confusion_matrix"}`` of a protocol when the card holds its confusion matrix."""
    scores = card.get("evaluation", {}).get(protocol, {})
    if "confusion_matrix" not in scores:
        return None
    return {"classes": scores.get("classes", card.get("classes", [])), "confusion_matrix": scores["confusion_matrix"]}


def plot_card_confusion(card: dict[str, Any], path: str | PathLike[str], protocol: str = "speaker") -> bool:
    """Write the card's confusion matrix of ``protocol`` as a PNG; ``False`` when the card has none."""
    from .evaluation import plot_confusion

    summary = confusion_summary(card, protocol)
    if summary is None:
        return False
    plot_confusion(summary, path, f"{card.get('name', 'model')}: {protocol} protocol, all folds pooled")
    return True
