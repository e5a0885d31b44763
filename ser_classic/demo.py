"""The web demo (Gradio): upload or record speech and see its emotion, probabilities and signal.

Run ``ser app`` (or ``python app_gradio.py`` in the source tree, the same command) and open
http://127.0.0.1:7860. A thin layer over the library: one upload is one
:func:`ser_classic.analysis.analyze_clip` (the row ``ser predict`` gives the file, the tracks
of the pictures and the timeline), drawn with :mod:`ser_classic.plots` and
:mod:`ser_classic.timeline`; the Model tab is :mod:`ser_classic.model_card`. The Live tab streams
the browser's microphone through :class:`ser_classic.live.StreamingAnalyser`, one
:class:`LiveSession` per browser tab (:func:`live_step` is its whole handler). The Adapt tab is
one :func:`ser_classic.adaptation.adapt` (:func:`adapt_clips`), whose model its page then analyses with.

:func:`analyze` is the whole request handler; it never raises, so the web page shows a message
instead of a traceback, and tests can call it directly.
"""

from __future__ import annotations

import functools
import gc
import html
import logging
import os
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from . import audio
from .errors import AudioError, ModelError, SERError
from .models import DEFAULT_MODEL_PATH, Model, load_model, read_card

if TYPE_CHECKING:
    import gradio
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure
    from PIL.Image import Image

    from .analysis import ClipAnalysis
    from .live import StreamingAnalyser

__all__ = [
    "Limits", "Analysis", "LiveSession", "available_models", "analyze", "analyze_session", "live_step", "live_view", "model_view",
    "build_app", "launch", "Adaptation", "adapt_clips", "adapted_model_view", "clip_table", "guess_label",
]  # fmt: skip

_log = logging.getLogger("ser_classic.app")

#: Folder searched for ``*.joblib`` models; only these can be chosen (never a client's path).
MODELS_DIR = DEFAULT_MODEL_PATH.parent
#: Length of one analysis window of the emotion timeline; longer recordings get a timeline.
TIMELINE_WINDOW_SECONDS = 3.0
#: Analyses running at once; more requests wait in the queue.
DEFAULT_CONCURRENCY = 2
#: Requests that may wait in the queue before new ones are turned away.
QUEUE_SIZE = 64
#: Uploads (and the files Gradio makes for the page) are deleted once this old (Gradio's
#: ``delete_cache``); the page reads an upload again when another model is chosen, so it must
#: outlive a visit.
KEEP_UPLOADS_MINUTES = 10.0
#: How often Gradio looks for files to delete: at most this, and at least ten times per keeping time.
CACHE_CHECK_SECONDS = 60
#: Browser sessions whose last outputs the server keeps (Gradio's ``state_session_capacity``);
#: the oldest go first. The page needs none of them back.
SESSIONS_KEPT = 100
#: glibc malloc arenas of the server (its default is 8 per core): each thread that analyses
#: grows an arena of its own to that analysis's peak, and keeps it.
MALLOC_ARENAS = 2
#: The Live tab's running timeline shows this many seconds of rows.
LIVE_SHOWN_SECONDS = 60.0
#: The Live tab's colour for speech too short yet to tell (a lighter grey than non-speech's).
TOO_SHORT_COLOUR = (0.93, 0.93, 0.93, 1.0)
#: How often (seconds) the browser sends the microphone's audio in the Live tab.
LIVE_STREAM_EVERY_SECONDS = 0.5
#: Longest live session (seconds of processing; Gradio's time limit of a stream).
LIVE_TIME_LIMIT_SECONDS = 900
#: Put in the page's head: the browser is asked for the microphone's sound as it is, without
#: echo cancellation, noise suppression or automatic gain. The models learnt from unprocessed
#: recordings, and automatic gain flattens the loudness that tells anger from calm.
UNPROCESSED_MICROPHONE = """<script>
(() => {
  const devices = navigator.mediaDevices;
  if (!devices || !devices.getUserMedia) return;
  const ask = devices.getUserMedia.bind(devices);
  devices.getUserMedia = (constraints) => ask(constraints && constraints.audio === true
    ? {...constraints, audio: {echoCancellation: false, noiseSuppression: false, autoGainControl: false}}
    : constraints);
})();
</script>"""
#: Upload formats named on the page; every ending in :data:`ser_classic.audio.AUDIO_EXTENSIONS` is accepted.
UPLOAD_TYPES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus", ".amr", ".wma", ".mp4", ".mov", ".webm", ".mkv")


@dataclass(frozen=True)
class Limits:
    """What one request may hold; larger or longer uploads get an error message.

    The defaults keep one analysis (clip features, pictures and timeline) within seconds.
    """

    max_seconds: float = 120.0
    max_megabytes: float = 25.0

    @property
    def max_bytes(self) -> int:
        return int(self.max_megabytes * 1_000_000)


class Analysis(NamedTuple):
    """The outputs of one request, in the order of the page's output components.

    ``result`` is the machine-readable answer (also returned to API clients); its ``error``
    is empty on success, else the one-line reason also shown in ``summary``.
    """

    summary: str
    probabilities: dict[str, float] | None
    result: dict[str, Any]
    waveform: Figure | None
    spectrogram: Figure | None
    f0: Figure | None
    file_info: str
    timeline: Image | None
    segments: pd.DataFrame | None
    why: str = ""
    why_figure: Figure | None = None

    @property
    def error(self) -> str:
        return self.result.get("error", "")


def available_models(models_dir: str | os.PathLike[str] = MODELS_DIR) -> dict[str, Path]:
    """Model name (file stem) -> path for every ``*.joblib`` in ``models_dir``, bundled default first."""
    folder = Path(models_dir)
    paths = sorted(folder.glob("*.joblib"), key=lambda path: (path.name != DEFAULT_MODEL_PATH.name, path.name))
    return {path.stem: path for path in paths}


_model_lock = threading.Lock()
#: pyplot keeps global state: the library's pyplot drawings (timeline, confusion) run one at a time.
_pyplot_lock = threading.Lock()


@functools.lru_cache(maxsize=8)
def _load_model(path: str, mtime_ns: int, size: int) -> Model:
    """One verified load per model file version (the key changes when the file does)."""
    return load_model(path)


def _model(model_name: str | None, models_dir: Path, model_path: str | os.PathLike[str] | None = None) -> tuple[str, Model]:
    if model_path is not None or model_name == ADAPTED_CHOICE:
        return _adapted_model(model_name, model_path)
    models = available_models(models_dir)
    if not models:
        raise ModelError("no models (*.joblib) in the models folder")
    name = model_name or next(iter(models))
    if name not in models:
        raise ModelError(f"unknown model {name!r}; choose one of {', '.join(models)}")
    status = models[name].stat()
    with _model_lock:
        return name, _load_model(str(models[name]), status.st_mtime_ns, status.st_size)


def _png_image(draw: Callable[[Path], Any]) -> Image:
    """Run ``draw(path)`` that writes a PNG and return the picture, leaving no file behind."""
    from PIL import Image as PILImage

    with tempfile.TemporaryDirectory(prefix="ser-app-") as folder:
        path = Path(folder) / "picture.png"
        with _pyplot_lock:
            draw(path)
        with PILImage.open(path) as picture:
            picture.load()
            return picture.copy()


#: mallopt(3) option: the most arenas glibc makes for threads.
_M_ARENA_MAX = -8
#: Longest a request waits for the server's warm-up (seconds).
WARM_UP_TIMEOUT_SECONDS = 120.0
#: Set once the process has analysed a clip: the next collection freezes what exists then.
_warm = threading.Event()
_frozen = threading.Event()


def _limit_malloc_arenas() -> None:
    """At server start, before its threads allocate: at most :data:`MALLOC_ARENAS` glibc arenas.

    The server analyses in whichever of its worker threads is free, and glibc gives each thread
    an arena of its own, which grows to the largest analysis it ran and keeps what is freed;
    with a few arenas shared by all threads, freed memory is reused instead. Where the C
    library is not glibc (no ``mallopt``), nothing changes.
    """
    import ctypes

    mallopt = getattr(ctypes.CDLL(None), "mallopt", None) if sys.platform == "linux" else None
    if mallopt is not None:
        mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


def _release_memory() -> None:
    """Before each served request: collect the garbage of the previous ones.

    A request leaves its matplotlib figures in reference cycles (each artist points back to its
    figure): megabytes that Python's collector would keep for many requests, and for which the
    heap would grow. The first collection after a clip was analysed freezes what exists then
    (modules, models, compiled code; and what requests in flight hold, kept for good), so that
    later collections walk only what was made since: milliseconds instead of a tenth of a second.
    """
    _after_warm_up()
    gc.collect()
    if _warm.is_set() and not _frozen.is_set():
        _frozen.set()
        gc.freeze()


#: The warm-up started with the server (:func:`launch`), which requests wait for: it changes the
#: process's BLAS thread count while it runs, and a request beside it could round differently.
_warming: threading.Thread | None = None


def _after_warm_up() -> None:
    """Wait for the server's warm-up, if one is running."""
    if _warming is not None:
        _warming.join(timeout=WARM_UP_TIMEOUT_SECONDS)


def _warm_up(models_dir: Path) -> None:
    """While the server waits for its first visitor: the first model loaded and the extractor
    warmed up (its imports, filter banks and caches), so that the first upload, and a live
    stream's first seconds, take as long as the later ones."""
    from .features.extractor import warm_up

    try:
        _, model = _model(None, models_dir)
        warm_up(model.feature_config)
    except Exception:  # the first request then reports what is wrong
        _log.info("warm-up failed", exc_info=True)


def _info_fields(info: audio.AudioInfo) -> dict[str, Any]:
    return {
        "duration_seconds": round(info.duration_seconds, 3),
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "format": info.format,
        "subtype": info.subtype,
        "size_bytes": info.size_bytes,
    }


def _info_markdown(name: str, info: audio.AudioInfo) -> str:
    rows = {
        "file": f"`{name}`",
        "duration": f"{info.duration_seconds:.2f} s",
        "sample rate": f"{info.sample_rate} Hz",
        "channels": "1 (mono)" if info.channels == 1 else str(info.channels),
        "format": f"{info.format} ({info.subtype})",
        "size": f"{info.size_bytes / 1000:.0f} kB",
    }
    return "| file info | |\n|---|---|\n" + "".join(f"| {key} | {value} |\n" for key, value in rows.items())


def _check_limits(info: audio.AudioInfo, limits: Limits) -> None:
    if info.duration_seconds > limits.max_seconds:
        raise AudioError(
            f"too long: {info.duration_seconds:.1f} s, this demo accepts up to {limits.max_seconds:g} s "
            "(use `ser timeline` for long recordings)"
        )
    if info.size_bytes > limits.max_bytes:
        raise AudioError(f"too large: {info.size_bytes / 1e6:.1f} MB, this demo accepts up to {limits.max_megabytes:g} MB")


def _trust_note(model: Model) -> str:
    if "adaptation" in model.card:
        return _adapted_note(model.card)
    speaker = model.card.get("evaluation", {}).get("speaker", {}).get("mean", {})
    if "accuracy" not in speaker:
        return "This model's card holds no speaker-independent score: see the Model tab."
    return (
        f"On speakers it never heard, this model is right {speaker['accuracy']:.0%} of the time over "
        f"{len(model.classes)} classes (see the Model tab)."
    )


def _failure(
    name: str, reason: str, model_name: str | None, info: audio.AudioInfo | None, *, no_speech: bool = False
) -> Analysis:
    from .prediction import NO_SPEECH

    title = f"Cannot analyse `{name}`" if name else "Nothing to analyse"
    summary = f"## {NO_SPEECH}\n\n{reason}" if no_speech else f"### Error: {title}\n\n{reason}"
    return Analysis(
        summary=summary,
        probabilities=None,
        result={
            "file": name,
            "model": model_name,
            **({"emotion": NO_SPEECH} if no_speech else {}),
            "error": reason,
            **({"file_info": _info_fields(info)} if info else {}),
        },
        waveform=None,
        spectrogram=None,
        f0=None,
        file_info=_info_markdown(name, info) if info else "",
        timeline=None,
        segments=None,
    )


def _emotion_over_time(clip: ClipAnalysis) -> tuple[Image | None, pd.DataFrame | None]:
    """The timeline's segments, and its chart when the clip has speech shares (a chart of a
    single window would only repeat the clip's result); ``None`` without a timeline."""
    from .timeline import plot_timeline, segments

    if clip.timeline is None:
        return None, None
    table = segments(clip.timeline).round({"start": 2, "end": 2, "confidence": 3})
    if clip.speech_shares is None:
        return None, table
    signal, sample_rate = clip.tracks.signal, clip.tracks.config.sample_rate
    return _png_image(lambda path: plot_timeline(clip.timeline, path, signal=signal, sample_rate=sample_rate)), table


def _summary(row: dict[str, Any], shares: pd.Series | None, model_name: str, model: Model, info: audio.AudioInfo) -> str:
    """The headline: the emotions over time (share of the speech time) when the recording has a
    timeline, then the whole-clip label, named as such; else the whole-clip label alone."""
    whole = f"confidence **{row['confidence']:.0%}** · model `{model_name}` · {info.duration_seconds:.1f} s of audio"
    if shares is None:
        return f"## {row['emotion']}\n\n{whole}\n\n{_trust_note(model)}"
    parts = [f"{emotion} {share:.0%}" for emotion, share in shares.items()]
    parts[0] += " of the speech"
    return (
        f"## {', '.join(parts)}\n\n"
        f"Share of the speech time per emotion, from {TIMELINE_WINDOW_SECONDS:g} s windows (see the timeline below).\n\n"
        f"Whole clip as one label: **{row['emotion']}**, {whole}. A recording that changes emotion mixes "
        f"its parts in this one label.\n\n{_trust_note(model)}"
    )


def analyze(
    path: str | os.PathLike[str] | None,
    model_name: str | None = None,
    *,
    models_dir: str | os.PathLike[str] = MODELS_DIR,
    limits: Limits = Limits(),
    model_path: str | os.PathLike[str] | None = None,
) -> Analysis:
    """Classify one recording and draw it; never raises.

    Parameters
    ----------
    path : str or PathLike, optional
        The uploaded or recorded file (Gradio's own temporary copy).
    model_name : str, optional
        A name from :func:`available_models`; the bundled default when ``None``.
    models_dir : str or PathLike
        Where the selectable models are.
    limits : Limits
        Largest upload accepted, in megabytes and seconds.
    model_path : str or PathLike, optional
        A model file of the server's own, used instead of ``models_dir``'s: the model a page
        adapted (:func:`adapt_clips`); ``model_name`` is then its name on the page.

    Returns
    -------
    Analysis
        On failure every picture is ``None`` and ``summary`` and ``result["error"]`` say why.
    """
    from .analysis import analyze_clip
    from .explanation import explanation_markdown
    from .plots import explanation_figure, f0_figure, mel_spectrogram_figure, waveform_figure

    name = Path(path).name if path else ""
    info = None
    try:
        if not path:
            raise AudioError("no audio: upload a file or record with the microphone first")
        info = audio.file_info(path)
        _check_limits(info, limits)
        model_name, model = _model(model_name, Path(models_dir), model_path)
        clip = analyze_clip(path, model, window_seconds=TIMELINE_WINDOW_SECONDS, max_seconds=limits.max_seconds, explain=True)
        if not clip.has_speech:
            return _failure(name, clip.row["error"], model_name, info, no_speech=True)
        pictures = (waveform_figure(clip.tracks), mel_spectrogram_figure(clip.tracks), f0_figure(clip.tracks))
        why = (explanation_markdown(clip.explanation), explanation_figure(clip.explanation))
        timeline_picture, timeline_segments = _emotion_over_time(clip)
    except SERError as error:
        return _failure(name, error.reason, model_name, info)
    except Exception as error:  # the page shows a message, the log keeps the traceback
        _log.exception("analysis of %s failed", name)
        return _failure(name, f"unexpected error ({type(error).__name__}: {error})", model_name, info)
    row, shares = clip.row, clip.speech_shares
    return Analysis(
        summary=_summary(row, shares, model_name, model, info),
        probabilities=clip.probabilities,
        result={
            "file": name,
            "model": model_name,
            "emotion": row["emotion"],
            "confidence": row["confidence"],
            "probabilities": clip.probabilities,
            **({"speech_shares": shares.round(4).to_dict()} if shares is not None else {}),
            # without its "path": Gradio's clients take any object with a "path" for a file to fetch
            "explanation": {key: value for key, value in clip.explanation.to_dict().items() if key != "path"},
            "file_info": _info_fields(info),
            "error": "",
        },
        waveform=pictures[0],
        spectrogram=pictures[1],
        f0=pictures[2],
        file_info=_info_markdown(name, info),
        timeline=timeline_picture,
        segments=timeline_segments,
        why=why[0],
        why_figure=why[1],
    )


def model_view(model_name: str | None, models_dir: str | os.PathLike[str] = MODELS_DIR) -> tuple[str, Image | None]:
    """The Model tab: the card as Markdown and its confusion matrix (``None`` if the card has none)."""
    from .model_card import card_markdown, confusion_summary, plot_card_confusion

    models = available_models(models_dir)
    name = model_name or next(iter(models), "")
    if name not in models:
        return f"### Error\n\nunknown model {name!r}", None
    try:
        card = read_card(models[name])
        text = card_markdown(card)
        if confusion_summary(card) is None:
            return text + "\n_The card holds no confusion matrix (retrain with `ser train` to add one)._\n", None
        return text, _png_image(lambda path: plot_card_confusion(card, path))
    except SERError as error:
        return f"### Error: cannot read the card of `{name}`\n\n{error.reason}", None
    except Exception as error:  # a hand-edited card can be malformed in many ways
        _log.exception("the card of %s cannot be shown", name)
        return f"### Error: cannot show the card of `{name}`\n\n{type(error).__name__}: {error}", None


class LiveSession:
    """One browser tab's live stream: its :class:`~ser_classic.live.StreamingAnalyser`, the rows
    of the last :data:`LIVE_SHOWN_SECONDS`, and the last ``max_seconds`` of its audio (as the
    browser sent it) for an analysis of the whole session afterwards. Bounded memory."""

    def __init__(self, model_name: str, model: Model, max_seconds: float, model_path: str | os.PathLike[str] | None = None) -> None:
        from .live import StreamingAnalyser

        self.model_name, self.classes, self.model_path = model_name, model.classes, model_path
        self.analyser: StreamingAnalyser = StreamingAnalyser(model, window_seconds=TIMELINE_WINDOW_SECONDS)
        self.rows: deque[dict[str, Any]] = deque()
        self.max_seconds = max_seconds
        self._audio: deque[np.ndarray] = deque()
        self._audio_samples = 0
        self.sample_rate: int | None = None
        self.closed = False

    def feed(self, samples: np.ndarray, sample_rate: int) -> list[dict[str, Any]]:
        """Analyse the next chunk; keep its audio and its rows."""
        import numpy as np

        rows = self.analyser.feed(samples, sample_rate)
        self.sample_rate = sample_rate
        mono = samples if samples.ndim == 1 else samples.mean(axis=1).astype(samples.dtype)
        self._audio.append(np.asarray(mono))
        self._audio_samples += mono.shape[0]
        while self._audio and self._audio_samples - self._audio[0].shape[0] >= self.max_seconds * sample_rate:
            self._audio_samples -= self._audio.popleft().shape[0]
        return self._keep(rows)

    def close(self) -> list[dict[str, Any]]:
        """End the stream: the last rows."""
        if self.closed:
            return []
        self.closed = True
        return self._keep(self.analyser.close())

    def _keep(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.rows.extend(rows)
        while self.rows and self.rows[0]["end"] < self.analyser.seconds - LIVE_SHOWN_SECONDS:
            self.rows.popleft()
        return rows

    def clip(self) -> tuple[int, np.ndarray] | None:
        """The session's kept audio as ``(sample_rate, samples)``, or ``None`` before any."""
        import numpy as np

        if not self._audio or self.sample_rate is None:
            return None
        return self.sample_rate, np.concatenate(list(self._audio))


def live_view(session: LiveSession | None, message: str = "") -> tuple[str, str]:
    """The Live tab's headline (Markdown: the current emotion, or no speech) and its running
    timeline (HTML: one cell per row of the last :data:`LIVE_SHOWN_SECONDS`, coloured by
    emotion, each with its times and emotion in ``data-`` attributes and a tooltip)."""
    from .live import NON_SPEECH, TOO_SHORT
    from .timeline import timeline_colours

    if session is None or not session.rows:
        waiting = message or "Press **Record** and speak: a row every second, the emotion of the last 3 s of speech."
        return f"## Listening…\n\n{waiting}", ""
    last = session.rows[-1]
    seconds = session.analyser.seconds
    if last["speech"] and last["confidence"] is None:
        headline = "## speech…\n\ntoo short yet to tell"
    elif last["speech"]:
        headline = f"## {last['emotion']} {last['confidence']:.0%}"
    else:
        headline = "## no speech"
    status = "stopped" if session.closed else "listening"
    headline += f"\n\n{status} · {seconds:.0f} s · model `{session.model_name}`" + (f"\n\n{message}" if message else "")
    colours = {**timeline_colours(session.classes), TOO_SHORT: TOO_SHORT_COLOUR}

    def css(colour: tuple[float, float, float, float]) -> str:
        return f"rgb({round(colour[0] * 255)}, {round(colour[1] * 255)}, {round(colour[2] * 255)})"

    cells = []
    for row in session.rows:
        emotion = row["emotion"]
        if not row["speech"]:
            what = NON_SPEECH
        elif row["confidence"] is None:
            what = "speech, too short yet to tell"
        else:
            what = f"{emotion} {row['confidence']:.0%}"
        tip = f"{row['start']:.1f}-{row['end']:.1f} s: {what}"
        cells.append(
            f'<div class="live-row" data-start="{row["start"]}" data-end="{row["end"]}" data-emotion="{html.escape(emotion)}" '
            f'title="{html.escape(tip)}" style="flex: 1 1 0; background: {css(colours.get(emotion, (0, 0, 0, 1)))}; '
            f'opacity: {0.35 + 0.65 * (row["confidence"] or 1.0):.2f}"></div>'
        )
    empty = max(0, round(LIVE_SHOWN_SECONDS / session.analyser.hop_seconds) - len(cells))
    cells = ['<div style="flex: 1 1 0"></div>'] * empty + cells  # the newest row on the right, at "now"
    legend = " ".join(
        f'<span style="white-space: nowrap"><span style="display: inline-block; width: 0.9em; height: 0.9em; '
        f'background: {css(colour)}"></span> {html.escape(label)}</span>'
        for label, colour in colours.items()
    )
    strip = (
        f'<div style="display: flex; gap: 1px; height: 2.5em">{"".join(cells)}</div>'
        f'<div style="display: flex; justify-content: space-between; font-size: 0.8em">'
        f"<span>{LIVE_SHOWN_SECONDS:.0f} s ago</span><span>now ({seconds:.0f} s)</span></div>"
        f'<div style="font-size: 0.85em">{legend}</div>'
    )
    return headline, strip


def live_step(
    chunk: tuple[int, np.ndarray] | None,
    session: LiveSession | None,
    model_name: str | None,
    *,
    models_dir: str | os.PathLike[str] = MODELS_DIR,
    limits: Limits = Limits(),
    model_path: str | os.PathLike[str] | None = None,
) -> tuple[str, str, LiveSession | None]:
    """The Live tab's handler: one chunk of the browser's microphone in, the tab's headline and
    running timeline out (:func:`live_view`), with the session to keep; never raises.

    A new session starts with the first chunk, or after a stopped one, with the model chosen
    then (``model_path``: the page's adapted model, as :func:`analyze` takes it).
    """
    import numpy as np

    if chunk is None:
        return *live_view(session), session
    try:
        if session is None or session.closed:
            name, model = _model(model_name, Path(models_dir), model_path)
            session = LiveSession(name, model, limits.max_seconds, model_path)
        sample_rate, samples = chunk
        session.feed(np.asarray(samples), int(sample_rate))
    except SERError as error:
        return *live_view(session, f"**Error:** {error.reason}"), session
    except Exception as error:  # the page shows a message, the log keeps the traceback
        _log.exception("live analysis failed")
        return *live_view(session, f"**Error:** unexpected ({type(error).__name__}: {error})"), session
    return *live_view(session), session


def _live_stop(session: LiveSession | None) -> tuple[str, str, LiveSession | None]:
    if session is not None:
        try:
            session.close()
        except SERError as error:
            return *live_view(session, f"**Error:** {error.reason}"), session
    return *live_view(session), session


def analyze_session(
    session: LiveSession | None,
    model_name: str | None = None,
    *,
    models_dir: str | os.PathLike[str] = MODELS_DIR,
    limits: Limits = Limits(),
) -> Analysis:
    """A live session ended and its kept audio analysed as a whole, as :func:`analyze` analyses
    an upload (with the session's model unless ``model_name`` names another); never raises."""
    import soundfile

    clip = None if session is None else session.clip()
    if session is None or clip is None:
        return _failure("", "no audio yet: record with the microphone first", model_name, None)
    try:
        session.close()
    except SERError as error:
        _log.info("the live session's last rows failed: %s", error)
    with tempfile.TemporaryDirectory(prefix="ser-live-") as folder:
        path = Path(folder) / "live session.wav"
        soundfile.write(path, clip[1], clip[0])
        if model_name is None:
            model_name, model_path = session.model_name, session.model_path
        else:
            model_path = None
        return analyze(path, model_name, models_dir=models_dir, limits=limits, model_path=model_path)


# ----------------------------------------------------------------------------- the Adapt tab
#: The Analyse tab's choice of the model its page adapted (the Adapt tab); no model file has this name.
ADAPTED_CHOICE = "yours (adapted)"
#: Name of an adapted model's files (``mine.joblib``, ``mine.card.json``, ``mine.training.npz``) and of their zip.
ADAPTED_NAME = "mine"
#: Most clips one adaptation takes: uploaded files and the audio files of uploaded zips together.
MAX_ADAPT_CLIPS = 300
#: A zip's audio files may hold at most this many times :attr:`Limits.max_bytes` once extracted.
MAX_ZIP_EXPANSION = 4
#: Adapted models kept loaded (the pages analysing with theirs right now); the others load again when used.
ADAPTED_MODELS_LOADED = 2
#: The Adapt tab's table: a row per clip.
CLIP_COLUMNS = ("file", "label", "speaker")
_NO_ADAPTED_MODEL = (
    "this page holds no adapted model (any more: the server deletes them after a while): adapt one in the Adapt tab"
)


@dataclass(frozen=True)
class _Clip:
    """A clip offered for adaptation: an uploaded file, or an audio file inside an uploaded zip."""

    name: str  # the table's "file": the upload's name, or "<zip's name>/<name inside it>"
    path: Path  # the upload (the zip, for a file inside one)
    member: str | None  # the file's name inside the zip
    label: str
    speaker: str


def _named_emotion(text: str) -> str:
    """The first word of ``text`` that names an emotion of the corpora's vocabulary (synonyms
    included), else ``""``."""
    import re

    from .corpus import RAVDESS_EMOTIONS, canonical_label

    vocabulary = set(RAVDESS_EMOTIONS.values())
    return next((label for word in re.findall(r"[A-Za-z]+", text) if (label := canonical_label(word)) in vocabulary), "")


def guess_label(file_name: str) -> tuple[str, str]:
    """The emotion and the speaker a clip's file name gives, ``""`` for what it does not.

    RAVDESS and CREMA-D names give both; any other name its first word naming an emotion
    (``angry take 2.wav``, ``Sadness_3.m4a``: synonyms mapped by
    :func:`~ser_classic.corpus.canonical_label`) and no speaker.
    """
    from .corpus import parse_crema_d_name, parse_ravdess_name
    from .errors import CorpusError

    for parse in (parse_ravdess_name, parse_crema_d_name):
        try:
            fields = parse(file_name)
        except CorpusError:
            continue
        return str(fields["label"]), str(fields["speaker"])
    return _named_emotion(Path(file_name).stem), ""


def _zip_parts(name: str) -> tuple[str, ...]:
    from pathlib import PurePosixPath

    return PurePosixPath(name.replace("\\", "/")).parts


def _zip_clips(path: Path, limits: Limits) -> list[_Clip]:
    """The audio files of an uploaded zip of ``ROOT/<label>/`` folders (optionally
    ``ROOT/<label>/<speaker>/``; the ``ROOT/`` optional too), read from its table of contents.

    Raises
    ------
    CorpusError
        Not a zip; a name that would be extracted outside its folder (absolute, ``..``, a
        link): the whole zip is refused; more than :data:`MAX_ZIP_EXPANSION` times the upload
        limit once extracted, or more than :data:`MAX_ADAPT_CLIPS` audio files.
    """
    import stat
    import zipfile

    from .corpus import RAVDESS_EMOTIONS, canonical_label
    from .errors import CorpusError

    if not path.is_file():
        raise CorpusError("no longer on the server: upload it again", path.name)
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise CorpusError(f"not a readable zip file ({error})", path.name) from None
    found = []
    for entry in entries:
        parts = _zip_parts(entry.filename)
        if entry.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]) or stat.S_ISLNK(entry.external_attr >> 16):
            raise CorpusError(f"refused: {entry.filename!r} would be extracted outside its folder", path.name)
        hidden = parts[0] == "__MACOSX" or parts[-1].startswith(".")  # a Mac's resource forks, .DS_Store
        if not entry.is_dir() and not hidden and Path(parts[-1]).suffix.lower() in audio.AUDIO_EXTENSIONS:
            found.append((entry, parts))
    if len(found) > MAX_ADAPT_CLIPS:
        raise CorpusError(f"{len(found)} audio files: this demo adapts to at most {MAX_ADAPT_CLIPS} clips", path.name)
    extracted_bytes, most = sum(entry.file_size for entry, _ in found), MAX_ZIP_EXPANSION * limits.max_bytes
    if extracted_bytes > most:
        raise CorpusError(f"its audio files hold {extracted_bytes / 1e6:.0f} MB: this demo extracts up to {most / 1e6:.0f} MB", path.name)
    tops = {parts[0] for _, parts in found}
    strip = len(tops) == 1 and all(len(parts) >= 3 for _, parts in found) and canonical_label(next(iter(tops))) not in RAVDESS_EMOTIONS.values()
    clips = []
    for entry, parts in found:
        inside = parts[1:] if strip else parts  # ROOT/ left out
        if len(inside) >= 2:
            label, speaker = canonical_label(inside[0]), inside[1] if len(inside) >= 3 else ""
        else:
            label, speaker = guess_label(inside[0])
        clips.append(_Clip(f"{path.name}/{'/'.join(parts)}", path, entry.filename, label, speaker))
    return clips


def _uploaded_clips(uploads: Sequence[str | os.PathLike[str]] | None, limits: Limits) -> tuple[list[_Clip], list[tuple[str, str]]]:
    """The clips of the uploads (zips opened), their labels and speakers guessed, each with a
    name of its own; and the zips that could not be read, with the reason."""
    import dataclasses

    clips, unread = [], []
    for upload in map(Path, uploads or []):
        if upload.suffix.lower() == ".zip":
            try:
                clips += _zip_clips(upload, limits)
            except SERError as error:
                unread.append((upload.name, error.reason))
        else:
            clips.append(_Clip(upload.name, upload, None, *guess_label(upload.name)))
    seen: dict[str, int] = {}
    for index, clip in enumerate(clips):  # a second upload named a.wav is "a.wav (2)"
        seen[clip.name] = seen.get(clip.name, 0) + 1
        if seen[clip.name] > 1:
            clips[index] = dataclasses.replace(clip, name=f"{clip.name} ({seen[clip.name]})")
    return clips, unread


def clip_table(uploads: Sequence[str | os.PathLike[str]] | None, limits: Limits = Limits()) -> tuple[pd.DataFrame, str]:
    """The Adapt tab's table for these uploads, and a note on it; never raises.

    One row per clip (:data:`CLIP_COLUMNS`): an uploaded audio file, or an audio file inside an
    uploaded zip of ``ROOT/<label>/[<speaker>/]`` folders. The label is prefilled from the
    zip's folder or the file's name (:func:`guess_label`), the speaker from the zip's folder or
    a RAVDESS or CREMA-D name. The note counts the clips, says what is left to fill in and why
    a zip could not be read.
    """
    import pandas as pd

    clips, unread = _uploaded_clips(uploads, limits)
    table = pd.DataFrame([(clip.name, clip.label, clip.speaker) for clip in clips], columns=list(CLIP_COLUMNS))
    unlabelled = sum(not clip.label for clip in clips)
    lines = []
    if clips:
        lines.append(
            f"**{len(clips)} clips**, {len(clips) - unlabelled} labelled from their folders or names"
            + (f"; **fill in the label of the other {unlabelled}** (a clip without one is left out)" if unlabelled else "")
            + ". Check the labels; a speaker per clip is optional (with two or more, the estimate is made on speakers it did not see)."
        )
    if len(clips) > MAX_ADAPT_CLIPS:
        lines.append(f"This demo adapts to at most {MAX_ADAPT_CLIPS} clips: leave some out.")
    if unread:
        lines.append("**Not read**:\n\n" + "".join(f"- `{name}`: {reason}\n" for name, reason in unread))
    return table, "\n\n".join(lines)


class _Collected(logging.Handler):
    """The warnings logged in the thread that made it (a server adapts in one of its threads)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.records.append(record)


def _extract(clip: _Clip, folder: Path, limits: Limits) -> Path:
    """The clip's file: the upload itself, or its copy out of the zip in a folder of its own
    under ``folder`` (its name only: nothing is written outside ``folder``)."""
    import zipfile

    if clip.member is None:
        if not clip.path.exists():
            raise AudioError("no longer on the server: upload it again", clip.name)
        return clip.path
    target = Path(tempfile.mkdtemp(dir=folder)) / _zip_parts(clip.member)[-1]
    with zipfile.ZipFile(clip.path) as archive:
        entry = archive.getinfo(clip.member)
        if entry.file_size > limits.max_bytes:
            raise AudioError(f"too large: {entry.file_size / 1e6:.1f} MB, this demo accepts up to {limits.max_megabytes:g} MB", clip.name)
        with archive.open(entry) as source, open(target, "wb") as sink:
            while chunk := source.read(1 << 20):  # at most file_size bytes: zipfile stops there
                sink.write(chunk)
    return target


class Adaptation(NamedTuple):
    """What the Adapt tab shows once Adapt is pressed.

    ``summary`` (Markdown) gives the clips per class, those left out and why, and the estimate,
    or the error; on success ``download`` is the zip of the model's three files and
    ``model_path`` the model, its card and training table beside it.
    """

    summary: str
    download: Path | None
    model_path: Path | None


def _left_out_markdown(left_out: Sequence[tuple[str, str]], notes: Sequence[str]) -> str:
    text = ""
    if left_out:
        text += f"**Left out** ({len(left_out)}):\n\n" + "".join(f"- `{name}`: {reason}\n" for name, reason in left_out) + "\n"
    if notes:
        text += "**Labels**:\n\n" + "".join(f"- {note}\n" for note in notes) + "\n"
    return text


def _estimate(card: dict[str, Any]) -> str:
    """An adapted model's estimate on the user's clips, in words."""
    from .adaptation import Estimate

    return Estimate(**card["adaptation"]["estimate"]).summary()


def _adapted_note(card: dict[str, Any]) -> str:
    """How far to trust an adapted model."""
    base = card["adaptation"]["base"]
    return f"Adapted from `{base.get('file') or base.get('name')}` to {card['adaptation']['n_user_clips']} clips: {_estimate(card)}."


def adapt_clips(
    uploads: Sequence[str | os.PathLike[str]] | None,
    table: pd.DataFrame | None,
    base_name: str | None,
    folder: str | os.PathLike[str],
    *,
    models_dir: str | os.PathLike[str] = MODELS_DIR,
    limits: Limits = Limits(),
    keep_minutes: float = KEEP_UPLOADS_MINUTES,
    report: Callable[[float, str], object] | None = None,
) -> Adaptation:
    """The Adapt tab's handler: adapt a model of ``models_dir`` to the labelled uploads; never raises.

    One :func:`ser_classic.adaptation.adapt` call, the model saved in ``folder`` as
    ``mine.joblib`` (with ``mine.card.json`` and ``mine.training.npz``) and zipped into
    ``mine.zip`` for download; zips' files are extracted into a temporary folder there and
    deleted once adapted.

    Parameters
    ----------
    uploads : sequence of str or PathLike
        Audio files and zips of ``ROOT/<label>/[<speaker>/]`` folders (see :func:`clip_table`).
    table : pandas.DataFrame, optional
        The clips to adapt to, by the names :func:`clip_table` gives, with their labels and
        speakers (:data:`CLIP_COLUMNS`); a clip without a label is left out. ``None``: every
        clip, labelled as :func:`clip_table` guesses.
    base_name : str, optional
        A name from :func:`available_models`; the first when ``None``.
    folder : str or PathLike
        Where the model goes (an existing folder of the server's, one per adaptation).
    keep_minutes : float
        How long the server keeps the model, for the summary.
    report : callable, optional
        ``report(fraction, text)`` as the work goes on (a progress bar).
    """
    import zipfile

    import pandas as pd

    from .adaptation import adapt

    def step(fraction: float, text: str) -> None:
        if report is not None:
            report(fraction, text)

    left_out: list[tuple[str, str]] = []
    notes: list[str] = []
    base = base_name
    try:
        step(0.0, "Reading your clips")
        clips, unread = _uploaded_clips(uploads, limits)
        left_out += unread
        if not clips:
            raise SERError("no clips: upload audio files, or a zip of ROOT/<label>/ folders, and label them")
        if table is None or len(table) == 0:
            table = pd.DataFrame([(clip.name, clip.label, clip.speaker) for clip in clips], columns=list(CLIP_COLUMNS))
        by_name = {clip.name: clip for clip in clips}
        chosen = []
        for row in table.reindex(columns=list(CLIP_COLUMNS), fill_value="").astype(object).fillna("").itertuples(index=False):
            name, label, speaker = (str(value).strip() for value in row)
            if not name:  # an empty row of the table
                continue
            if name not in by_name:
                left_out.append((name, "not among the uploaded clips"))
            elif not label:
                left_out.append((name, "no label"))
            else:
                chosen.append((by_name[name], label, speaker or "unknown"))
        if len(chosen) > MAX_ADAPT_CLIPS:
            raise SERError(f"{len(chosen)} labelled clips: this demo adapts to at most {MAX_ADAPT_CLIPS}")
        models = available_models(models_dir)
        base = base_name or next(iter(models), None)
        if base not in models:
            raise ModelError(f"unknown base model {base!r}; choose one of {', '.join(models)}")
        with tempfile.TemporaryDirectory(prefix="clips-", dir=folder) as clip_folder:
            rows, names = [], {}
            for clip, label, speaker in chosen:
                try:
                    path = _extract(clip, Path(clip_folder), limits)
                    _check_limits(audio.file_info(path), limits)
                except SERError as error:
                    left_out.append((clip.name, error.reason))
                    continue
                except (OSError, zipfile.BadZipFile) as error:
                    left_out.append((clip.name, f"cannot be extracted ({error})"))
                    continue
                rows.append({"path": str(path), "label": label, "speaker": speaker})
                names[str(path)] = clip.name
            if not rows:
                raise SERError("no usable clip: each was left out (see below)")
            step(0.05, f"Adapting `{base}` to {len(rows)} clips: their features, an estimate by cross-validation, the model")
            # adapt leaves out a file, or a label, with a warning each: collected for the page;
            # one process (a server's thread, forking no pool), one core: analyses keep the other
            collected, adaptation_log = _Collected(), logging.getLogger(adapt.__module__)
            adaptation_log.addHandler(collected)
            try:
                model = adapt(pd.DataFrame(rows), models[base], n_jobs=1, name=ADAPTED_NAME)
            finally:
                adaptation_log.removeHandler(collected)
            for record in collected.records:
                errors = [arg for arg in (record.args or ()) if isinstance(arg, SERError)]
                if errors:
                    left_out.append((names.get(errors[0].path or "", errors[0].path or "?"), errors[0].reason))
                else:
                    notes.append(record.getMessage())
        step(0.95, "Saving your model")
        model_path = Path(folder) / f"{ADAPTED_NAME}.joblib"
        card_file = model.save(model_path)
        table_file = model_path.with_name(f"{ADAPTED_NAME}.training.npz")
        download = model_path.with_suffix(".zip")
        with zipfile.ZipFile(download, "w", zipfile.ZIP_DEFLATED) as bundle:
            for file in (model_path, card_file, table_file):
                bundle.write(file, file.name)
    except SERError as error:
        return Adaptation(f"### Error: cannot adapt `{base}`\n\n{error.reason}\n\n" + _left_out_markdown(left_out, notes), None, None)
    except Exception as error:  # the page shows a message, the log keeps the traceback
        _log.exception("adaptation failed")
        return Adaptation(f"### Error: cannot adapt `{base}`\n\nunexpected error ({type(error).__name__}: {error})", None, None)
    adaptation = model.card["adaptation"]
    counts = "".join(f"| {label} | {count} |\n" for label, count in adaptation["user_clips"].items())
    estimate = _estimate(model.card)
    summary = (
        f"### `{base}` adapted to {adaptation['n_user_clips']} clips of yours\n\n"
        f"| class | your clips |\n|---|---:|\n{counts}\n"
        f"{estimate[:1].upper()}{estimate[1:]}.\n\n"
        + _left_out_markdown(left_out, notes)
        + f"This page now analyses with it: the Analyse tab's model is **{ADAPTED_CHOICE}** (in this browser tab only; "
        f"the server deletes it once {keep_minutes:g} min old). Download **{download.name}** below: `{model_path.name}` with "
        f"its card `{card_file.name}` and its training table `{table_file.name}`; unzip them into one folder (a model "
        f"loads only with its card beside it), then `ser predict --model {model_path.name} clip.wav`."
    )
    return Adaptation(summary, download, model_path)


def adapted_model_view(model_path: str | os.PathLike[str] | None) -> tuple[str, Image | None]:
    """The Model tab for a page's adapted model: its card, and its estimate."""
    if model_path is None or not Path(model_path).is_file():
        return f"### Error\n\n{_NO_ADAPTED_MODEL}", None
    text, picture = model_view(Path(model_path).stem, Path(model_path).parent)
    try:
        return text + f"\n#### Adapted to your clips\n\n{_adapted_note(read_card(model_path))}\n", picture
    except (SERError, KeyError, TypeError):  # the card shown above says what is wrong
        return text, picture


@functools.lru_cache(maxsize=ADAPTED_MODELS_LOADED)
def _load_adapted_model(path: str, mtime_ns: int, size: int) -> Model:
    """One verified load per adapted model file, in a cache of its own: the pages' adapted models
    never push the demo's own out, and a few at most stay in memory."""
    return load_model(path)


def _adapted_model(model_name: str | None, model_path: str | os.PathLike[str] | None) -> tuple[str, Model]:
    """A page's adapted model (a file of the server's, never a client's path)."""
    if model_path is None or not Path(model_path).is_file():
        raise ModelError(_NO_ADAPTED_MODEL)
    status = Path(model_path).stat()
    with _model_lock:
        return model_name or Path(model_path).stem, _load_adapted_model(str(model_path), status.st_mtime_ns, status.st_size)


class _AdaptedModels:
    """Where one server keeps the models its pages adapt: a folder each, under one temporary
    folder (made at the first adaptation, removed when the process exits). A page's model is
    deleted when it adapts another, with the page's state, or once ``keep_seconds`` old."""

    def __init__(self, keep_seconds: float) -> None:
        self.keep_seconds = keep_seconds
        self._root: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()

    def new_folder(self) -> Path:
        """An empty folder for one adaptation; deletes the old ones first."""
        with self._lock:
            if self._root is None:
                self._root = tempfile.TemporaryDirectory(prefix="ser-adapted-")
        self.delete_old()
        return Path(tempfile.mkdtemp(dir=self._root.name))

    def delete_old(self) -> None:
        """Delete the adapted models made more than ``keep_seconds`` ago (a finished one has its zip)."""
        import time

        now = time.time()
        for download in Path(self._root.name).glob(f"*/{ADAPTED_NAME}.zip") if self._root else ():
            try:
                if now - download.stat().st_mtime > self.keep_seconds:
                    self.delete(download.parent)
            except FileNotFoundError:  # deleted meanwhile
                continue

    def delete(self, path: str | os.PathLike[str] | None) -> None:
        """Delete the folder of one adaptation: ``path`` is it, or a file in it."""
        import shutil

        if not path or self._root is None:
            return
        root = Path(self._root.name)
        folder = Path(path) if Path(path).parent == root else Path(path).parent
        if folder.parent == root:  # never anything else
            shutil.rmtree(folder, ignore_errors=True)


def _adapt_note(limits: Limits) -> str:
    return (
        f"Up to {MAX_ADAPT_CLIPS} clips, each up to {limits.max_seconds:g} s and {limits.max_megabytes:g} MB; a zip up to "
        f"{limits.max_megabytes:g} MB ({MAX_ZIP_EXPANSION * limits.max_megabytes:g} MB extracted). Adapting takes tens of "
        "seconds; one adaptation runs at a time."
    )


def _adapt_tab(
    names: list[str],
    model_choice: gradio.Dropdown,
    *,
    models_dir: str | os.PathLike[str],
    limits: Limits,
    keep_uploads_minutes: float,
) -> tuple[gradio.State, _AdaptedModels]:
    """The Adapt tab's content and events (inside ``build_app``'s ``gr.Tab("Adapt")``).

    Returns the page's state (the path of its adapted model, or ``None``), for the Analyse
    tab, and where the server keeps adapted models.
    """
    import gradio as gr

    keep_seconds = max(1, round(60 * keep_uploads_minutes))
    kept = _AdaptedModels(keep_seconds)
    adapted = gr.State(None, time_to_live=keep_seconds, delete_callback=kept.delete)
    gr.Markdown(
        "Make a model yours: a few labelled clips of your microphone, room and voices (a dozen per emotion is a good "
        "start) teach a model far more than any setting. Upload clips and label each, or a zip of `ROOT/<label>/` "
        "folders (`ROOT/<label>/<speaker>/` names speakers too); press **Adapt**. From then on this page analyses with "
        "the adapted model, and you can download it."
    )
    with gr.Row():
        with gr.Column(scale=3):
            files = gr.File(
                file_count="multiple",
                file_types=[*sorted(audio.AUDIO_EXTENSIONS), ".zip"],
                type="filepath",
                label="Your clips (audio files, or a zip of ROOT/<label>/ folders)",
                height=170,
                elem_id="adapt-files",
            )
            table = gr.Dataframe(
                headers=list(CLIP_COLUMNS),
                datatype="str",
                static_columns=[0],  # the file: names a clip uploaded above
                interactive=True,
                label="Label each clip (prefilled from folders and names); the speaker is optional",
                elem_id="adapt-table",
            )
        with gr.Column(scale=2):
            base = gr.Dropdown(names, value=names[0] if names else None, label="Base model", elem_id="adapt-base")
            button = gr.Button("Adapt", variant="primary", elem_id="adapt")
            gr.Markdown(_adapt_note(limits))
    result = gr.Markdown(elem_id="adapt-result")
    download = gr.File(label=f"Your model: {ADAPTED_NAME}.zip (the model, its card and training table)", interactive=False, elem_id="adapt-download")

    def list_clips(uploads: list[str] | None) -> tuple[pd.DataFrame, str]:
        return clip_table(uploads, limits)

    def run_adapt(
        uploads: list[str] | None, clips: pd.DataFrame | None, base_name: str | None, previous: str | None,
        progress: gr.Progress = gr.Progress(),  # not track_tqdm: it patches tqdm for the whole server
    ) -> tuple[str, str | None, str | None, Any]:
        _release_memory()
        folder = kept.new_folder()
        outcome = adapt_clips(
            uploads, clips, base_name, folder, models_dir=models_dir, limits=limits, keep_minutes=keep_uploads_minutes,
            report=lambda fraction, text: progress(fraction, desc=text),
        )
        if outcome.model_path is None:
            kept.delete(folder)
            return outcome.summary, None, previous, gr.update()
        kept.delete(previous)
        return outcome.summary, str(outcome.download), str(outcome.model_path), gr.update(choices=[*names, ADAPTED_CHOICE], value=ADAPTED_CHOICE)

    files.change(list_clips, [files], [table, result], api_visibility="private")
    # one adaptation at a time, beside the analyses: it takes a core and tens of seconds
    button.click(
        run_adapt, [files, table, base, adapted], [result, download, adapted, model_choice], api_name="adapt",
        concurrency_limit=1, concurrency_id="adapt",
    )
    return adapted, kept


def _limits_note(limits: Limits) -> str:
    return (
        f"Up to {limits.max_seconds:g} s and {limits.max_megabytes:g} MB per file, a video's picture included "
        f"({', '.join(t.lstrip('.').upper() for t in UPLOAD_TYPES)}; of a video, its first audio track). Recordings longer than "
        f"{TIMELINE_WINDOW_SECONDS:g} s are also cut into windows of {TIMELINE_WINDOW_SECONDS:g} s: "
        "their emotion over time is charted when speech fills more than one window."
    )


def build_app(
    *,
    models_dir: str | os.PathLike[str] = MODELS_DIR,
    limits: Limits = Limits(),
    concurrency: int = DEFAULT_CONCURRENCY,
    keep_uploads_minutes: float = KEEP_UPLOADS_MINUTES,
) -> gradio.Blocks:
    """The demo page, its queue set up; call ``.launch()`` on it (see :func:`launch`).

    Files uploaded to it, and those Gradio makes for its outputs, are deleted once
    ``keep_uploads_minutes`` old; so are the models its pages adapt (the Adapt tab), each of
    which only its own page analyses with. Each request first frees the garbage of the previous ones
    (and, once a clip was analysed, freezes what exists then out of the garbage collector).
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    names = list(available_models(models_dir))
    first = names[0] if names else None

    def run(path: str | None, model_name: str | None, adapted_path: str | None = None) -> Analysis:
        _release_memory()
        kept.delete_old()
        if path and not Path(path).exists():  # deleted once keep_uploads_minutes old; the page still holds its name
            reason = f"no longer on the server (uploads are kept {keep_uploads_minutes:g} min): upload it again"
            analysis = _failure(Path(path).name, reason, model_name, None)
        else:
            model_path = adapted_path if model_name == ADAPTED_CHOICE else None
            analysis = analyze(path, model_name, models_dir=models_dir, limits=limits, model_path=model_path)
        if not analysis.error:
            _warm.set()
        return analysis._replace(
            timeline=gr.update(value=analysis.timeline, visible=analysis.timeline is not None),
            segments=gr.update(value=analysis.segments, visible=analysis.segments is not None),
        )

    def show_model(model_name: str | None, adapted_path: str | None = None) -> tuple[str, Image | None]:
        if model_name == ADAPTED_CHOICE:
            return adapted_model_view(adapted_path)
        return model_view(model_name, models_dir)

    card_text, confusion_picture = show_model(first)
    keep_seconds = max(1, round(60 * keep_uploads_minutes))
    delete_cache = (max(1, min(CACHE_CHECK_SECONDS, keep_seconds // 10)), keep_seconds)
    with gr.Blocks(title="ser-classic demo", analytics_enabled=False, delete_cache=delete_cache) as demo:
        gr.Markdown(
            "# ser-classic: speech emotion recognition\n"
            "Hand-crafted acoustic features and a classical classifier. Upload a recording of one "
            "speaker or record one with the microphone."
        )
        with gr.Tab("Analyse"):
            with gr.Row():
                with gr.Column(scale=3):
                    recording = gr.Audio(
                        sources=["upload", "microphone"], type="filepath", label="Speech", elem_id="recording"
                    )
                    # The audio widget takes audio types only; videos and other recordings come in here.
                    other_file = gr.File(
                        label="Or a video or another recording (MP4, MOV, WebM, MKV, M4A, AMR, WMA, ...)",
                        file_types=sorted(audio.AUDIO_EXTENSIONS),
                        type="filepath",
                        height=170,
                        elem_id="recording-file",
                    )
                with gr.Column(scale=2):
                    model_choice = gr.Dropdown(names, value=first, label="Model", elem_id="model")
                    analyse = gr.Button("Analyse", variant="primary", elem_id="analyse")
                    gr.Markdown(_limits_note(limits))
            summary = gr.Markdown(elem_id="summary")
            with gr.Row():
                probabilities = gr.Label(label="Probabilities (all classes)", elem_id="probabilities")
                with gr.Column(elem_id="why-panel"):
                    gr.Markdown(
                        "### Why\nHow much each feature group moved the emotion's probability (Shapley values "
                        "against the model's reference clips: it explains the model, not the speaker's feelings)."
                    )
                    why = gr.Markdown(elem_id="why")
                    why_figure = gr.Plot(label="Contribution of each feature group", elem_id="why-figure")
            file_info = gr.Markdown(elem_id="file-info")
            waveform = gr.Plot(label="Waveform (shaded: kept after trimming silence; green: voiced)", elem_id="waveform")
            spectrogram = gr.Plot(label="Mel spectrogram", elem_id="spectrogram")
            f0 = gr.Plot(label="F0 contour", elem_id="f0")
            with gr.Accordion(f"Emotion over time ({TIMELINE_WINDOW_SECONDS:g} s windows over speech)", open=True):
                timeline_picture = gr.Image(label="Timeline", type="pil", interactive=False, visible=False, elem_id="timeline")
                timeline_segments = gr.Dataframe(label="Segments", interactive=False, visible=False, elem_id="segments")
            with gr.Accordion("Result as JSON", open=False):
                result = gr.JSON(label="Result", elem_id="result")
        with gr.Tab("Live"):
            gr.Markdown(
                "Speak into the microphone: every second, whether you are speaking and, over speech, the emotion "
                f"of the last {TIMELINE_WINDOW_SECONDS:g} s of it (`ser listen` does the same in a terminal). "
                f"The strip shows the last {LIVE_SHOWN_SECONDS:.0f} s, grey where there is no speech. The last "
                f"{limits.max_seconds:g} s of the session can be analysed as a whole when you stop."
            )
            live_audio = gr.Audio(sources=["microphone"], type="numpy", streaming=True, label="Microphone", elem_id="live-audio")
            live_now = gr.Markdown(live_view(None)[0], elem_id="live-now")
            live_strip = gr.HTML(elem_id="live-timeline")
            live_whole = gr.Button("Analyse the whole session", elem_id="live-analyse")
            live_summary = gr.Markdown(elem_id="live-summary")
            live_picture = gr.Image(label="The whole session", type="pil", interactive=False, visible=False, elem_id="live-picture")
            live_session = gr.State(None, time_to_live=LIVE_TIME_LIMIT_SECONDS)
        with gr.Tab("Model"):
            card = gr.Markdown(card_text, elem_id="card")
            confusion = gr.Image(
                confusion_picture, label="Confusion matrix (speaker-independent folds)", type="pil", interactive=False
            )
        with gr.Tab("Adapt"):
            adapted, kept = _adapt_tab(names, model_choice, models_dir=models_dir, limits=limits, keep_uploads_minutes=keep_uploads_minutes)

        outputs = [
            summary, probabilities, result, waveform, spectrogram, f0, file_info, timeline_picture, timeline_segments, why, why_figure,
        ]  # fmt: skip
        inputs = [recording, model_choice, adapted]
        analyse.click(run, inputs, outputs, api_name="analyze")
        for event in (recording.upload, recording.stop_recording, model_choice.change):
            event(run, inputs, outputs, api_visibility="private")
        other_file.upload(lambda path: (path, None), [other_file], [recording, other_file], api_visibility="private").then(
            run, inputs, outputs, api_visibility="private"
        )
        model_choice.change(show_model, [model_choice, adapted], [card, confusion], api_visibility="private")

        def live(chunk: Any, session: LiveSession | None, model_name: str | None, adapted_path: str | None) -> tuple[str, str, LiveSession | None]:
            model_path = adapted_path if model_name == ADAPTED_CHOICE else None
            _after_warm_up()
            return live_step(chunk, session, model_name, models_dir=models_dir, limits=limits, model_path=model_path)

        live_outputs = [live_now, live_strip, live_session]
        live_audio.start_recording(lambda session: None if session is None or session.closed else session, [live_session], [live_session], api_visibility="private")
        live_audio.stream(
            live, [live_audio, live_session, model_choice, adapted], live_outputs, stream_every=LIVE_STREAM_EVERY_SECONDS,
            time_limit=LIVE_TIME_LIMIT_SECONDS, concurrency_limit=concurrency, concurrency_id="live", api_visibility="private",
        )  # fmt: skip
        live_audio.stop_recording(_live_stop, [live_session], live_outputs, api_visibility="private")

        def whole(session: LiveSession | None) -> tuple[str, Any]:
            _release_memory()
            analysis = analyze_session(session, models_dir=models_dir, limits=limits)
            return analysis.summary, gr.update(value=analysis.timeline, visible=analysis.timeline is not None)

        live_whole.click(_live_stop, [live_session], live_outputs, api_visibility="private").then(
            whole, [live_session], [live_summary, live_picture], api_visibility="private"
        )
    return demo.queue(default_concurrency_limit=concurrency, max_size=QUEUE_SIZE)


def launch(
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    max_seconds: float = Limits.max_seconds,
    max_megabytes: float = Limits.max_megabytes,
    concurrency: int = DEFAULT_CONCURRENCY,
    models_dir: str | os.PathLike[str] = MODELS_DIR,
    keep_uploads_minutes: float = KEEP_UPLOADS_MINUTES,
) -> None:
    """Serve the demo until interrupted: on ``host`` only, public share link only if ``share``.

    The addresses go to stdout, with this demo's own ``--share`` option where Gradio would
    name its ``launch(share=True)``. The server keeps its memory bounded under load
    (docs/demo.md, "Under load"): few malloc arenas, the last outputs of :data:`SESSIONS_KEPT`
    sessions, uploads for ``keep_uploads_minutes``.
    """
    _limit_malloc_arenas()
    limits = Limits(max_seconds=max_seconds, max_megabytes=max_megabytes)
    demo = build_app(models_dir=models_dir, limits=limits, concurrency=concurrency, keep_uploads_minutes=keep_uploads_minutes)
    demo.launch(
        server_name=host,
        state_session_capacity=SESSIONS_KEPT,
        server_port=port,
        share=share,
        max_file_size=limits.max_bytes,
        ssr_mode=False,
        show_error=False,
        quiet=True,
        head=UNPROCESSED_MICROPHONE,
        prevent_thread_lock=True,
    )
    global _warming
    _warming = threading.Thread(target=_warm_up, args=(Path(models_dir),), name="ser-warm-up", daemon=True)
    _warming.start()
    public = f"public URL: {demo.share_url}" if demo.share_url else "a public link: add --share (`ser app --share`)"
    print(f"ser-classic demo on {demo.local_url} ; {public}; stop with Ctrl-C", flush=True)
    demo.block_thread()
