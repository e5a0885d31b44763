"""The Gradio demo: served on loopback and driven with gradio_client; its handler called directly; its two launchers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile
from demo_support import free_port, labelled_clips, models_folder, serve, write_concatenation
from media import write_encoded, write_video_only

from ser_classic.models import DEFAULT_MODEL_PATH

#: The model served and compared with ``ser predict``: the bundled one, whatever its training.
MODEL = DEFAULT_MODEL_PATH
#: Limits of the served demo: small, so the tests can exceed them cheaply.
MAX_SECONDS = 30
MAX_MEGABYTES = 2


@pytest.fixture(scope="module")
def clips(actor_01: Path, angry_clip: Path) -> list[Path]:
    """Eight clips of actor 1, the strong angry one first."""
    others = [path for path in sorted(actor_01.glob("*.flac")) if path != angry_clip]
    return [angry_clip, *others[::8][:7]]


@pytest.fixture(scope="module")
def cli_rows(clips: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """``ser predict`` (the real command, bundled model) on the clips: file name -> row."""
    output = tmp_path_factory.mktemp("cli") / "predictions.jsonl"
    command = [sys.executable, "-c", "from ser_classic.cli import main; main()", "predict", *map(str, clips)]
    subprocess.run([*command, "--model", str(MODEL), "--output", str(output), "--jobs", "1"], check=True, capture_output=True)
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    return {Path(row["path"]).name: row for row in rows}


@pytest.fixture(scope="module")
def server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the served demo's stdout and stderr go."""
    return tmp_path_factory.mktemp("server") / "demo.log"


@pytest.fixture(scope="module")
def server(server_log: Path):
    port = free_port()
    log = server_log
    command = [
        sys.executable, "app_gradio.py", "--port", str(port),
        "--max-seconds", str(MAX_SECONDS), "--max-megabytes", str(MAX_MEGABYTES), "--concurrency", "2",
        "--models-dir", str(MODEL.parent),
    ]  # fmt: skip
    with serve(command, port, log) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: tuple[str, subprocess.Popen]):
    from gradio_client import Client

    return Client(server[0], verbose=False)


def _ask(client: Any, path: Path) -> tuple:
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), MODEL.stem, api_name="/analyze")


def _summary_and_result(outputs: tuple) -> tuple[str, dict[str, Any]]:
    return outputs[0], outputs[2]


def _value(output: Any) -> Any:
    """The value of an output the page also shows or hides (a Gradio update)."""
    return output["value"] if isinstance(output, dict) and output.get("__type__") == "update" else output


@pytest.fixture(scope="module")
def angry_outputs(client: Any, angry_clip: Path) -> tuple:
    return _ask(client, angry_clip)


def _assert_error_message(outputs: tuple, reason: str) -> None:
    summary, result = _summary_and_result(outputs)
    assert reason in result["error"]
    assert summary.startswith("### Error") and reason in summary
    assert "Traceback" not in summary
    assert not outputs[1] and outputs[3] is None, "no probabilities or pictures for a failed request"


# ----------------------------------------------------------------------------- served
def test_served_clip_gets_the_same_label_and_probabilities_as_ser_predict(
    angry_outputs: tuple, cli_rows: dict[str, dict[str, Any]], angry_clip: Path
) -> None:
    summary, result = _summary_and_result(angry_outputs)
    expected = cli_rows[angry_clip.name]
    assert result["error"] == ""
    assert result["emotion"] == expected["emotion"]
    assert result["confidence"] == pytest.approx(expected["confidence"], abs=1e-9)
    for label, probability in result["probabilities"].items():
        assert probability == pytest.approx(expected[f"p_{label}"], abs=1e-9)
    assert summary.startswith(f"## {expected['emotion']}")
    label = angry_outputs[1]
    assert label["label"] == expected["emotion"]
    assert {item["label"] for item in label["confidences"]} == set(result["probabilities"])


def test_served_result_shows_waveform_spectrogram_f0_file_info_and_timeline(angry_outputs: tuple, angry_clip: Path) -> None:
    _, _, result, waveform, spectrogram, f0, file_info, timeline, segments, _, _ = angry_outputs
    for picture in (waveform, spectrogram, f0):
        assert picture["type"] == "matplotlib" and picture["plot"].startswith("data:image/")
    header = soundfile.info(str(angry_clip))
    assert result["file_info"]["sample_rate"] == header.samplerate == 48000
    assert result["file_info"]["channels"] == header.channels
    assert result["file_info"]["duration_seconds"] == pytest.approx(header.duration, abs=1e-3)
    assert f"{header.samplerate} Hz" in file_info and f"{header.duration:.2f} s" in file_info
    # a RAVDESS clip (about 4 s) is longer than one 3 s window: its speech and silences are
    # segmented, but its speech (about 2 s) fills one window only: no chart repeating the result
    emotions = [row[2] for row in _value(segments)["data"]]
    assert "non-speech" in emotions and set(emotions) - {"non-speech"} <= set(result["probabilities"])
    assert _value(timeline) is None


def test_served_result_explains_its_emotion(angry_outputs: tuple) -> None:
    """The "Why" panel: group contributions that add up to the probability minus the baseline,
    as Markdown and bars, and the same explanation in the JSON result."""
    result, why, why_figure = angry_outputs[2], angry_outputs[9], angry_outputs[10]
    explanation = result["explanation"]
    assert explanation["emotion"] == result["emotion"]
    total = sum(group["contribution"] for group in explanation["groups"])
    assert total == pytest.approx(explanation["probability"] - explanation["baseline"], abs=1e-6)
    assert why.startswith(f"**{result['emotion']} (") and "| feature group |" in why
    assert why_figure["type"] == "matplotlib" and why_figure["plot"].startswith("data:image/")


#: Ending -> PyAV codec and settings, for the uploads libsndfile cannot write.
PYAV_ENCODED = {
    ".m4a": ("aac", {"bit_rate": 96000}),
    ".mp4": ("aac", {"bit_rate": 128000, "with_video": True}),
    ".webm": ("libopus", {"bit_rate": 48000, "codec_rate": 48000}),
}


@pytest.mark.parametrize(
    ("suffix", "file_format"), [(".mp3", "MP3"), (".ogg", "OGG"), (".m4a", "M4A"), (".mp4", "MP4"), (".webm", "WEBM")]
)
def test_compressed_uploads_get_the_same_answer_as_ser_predict(
    client: Any, angry_clip: Path, tmp_path: Path, suffix: str, file_format: str
) -> None:
    from ser_classic.models import load_model
    from ser_classic.prediction import predict_files

    signal, sample_rate = soundfile.read(angry_clip, dtype="float32")
    compressed = tmp_path / f"angry{suffix}"
    if suffix in PYAV_ENCODED:
        codec, settings = PYAV_ENCODED[suffix]
        write_encoded(compressed, signal, sample_rate, codec, **settings)
    else:
        soundfile.write(compressed, signal, sample_rate, format=file_format)
    _, result = _summary_and_result(_ask(client, compressed))
    expected = next(predict_files([compressed], load_model(MODEL)))
    assert result["error"] == "" and result["file_info"]["format"] == file_format
    assert result["emotion"] == expected["emotion"]
    assert result["confidence"] == pytest.approx(expected["confidence"], abs=1e-9)


def test_a_video_without_sound_gets_an_error_message(client: Any, tmp_path: Path) -> None:
    _assert_error_message(_ask(client, write_video_only(tmp_path / "screen.mp4")), "no audio track (video only)")


def test_text_file_named_wav_gets_an_error_message(client: Any, tmp_path: Path) -> None:
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio\n" * 20)
    _assert_error_message(_ask(client, fake), "not a readable audio file")


def test_empty_upload_gets_an_error_message(client: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    _assert_error_message(_ask(client, empty), "empty file")


def test_too_long_upload_gets_an_error_message(client: Any, tmp_path: Path) -> None:
    long_file = tmp_path / "long.wav"
    sample_rate = 8000
    noise = 0.1 * np.random.default_rng(0).standard_normal((MAX_SECONDS + 5) * sample_rate)
    soundfile.write(long_file, noise, sample_rate, subtype="PCM_16")
    outputs = _ask(client, long_file)
    _assert_error_message(outputs, "too long")
    assert f"up to {MAX_SECONDS} s" in outputs[0]


def test_too_large_upload_is_refused(server: tuple[str, subprocess.Popen], client: Any, tmp_path: Path) -> None:
    large = tmp_path / "large.wav"
    sample_rate = 22050
    noise = 0.1 * np.random.default_rng(1).standard_normal(MAX_MEGABYTES * 1_000_000 // 2 + 1000)  # 16-bit samples
    soundfile.write(large, noise, sample_rate, subtype="PCM_16")
    assert large.stat().st_size > MAX_MEGABYTES * 1_000_000
    with large.open("rb") as stream:
        answer = httpx.post(f"{server[0]}/gradio_api/upload", files={"files": ("large.wav", stream)}, timeout=60)
    assert answer.status_code == 413
    with pytest.raises(ValueError, match="maximum file size"):
        _ask(client, large)


def test_server_paths_from_the_client_are_refused(server: tuple[str, subprocess.Popen], angry_clip: Path) -> None:
    """Only files uploaded through Gradio are read: a path on the server is not."""
    payload = {"data": [{"path": str(angry_clip), "meta": {"_type": "gradio.FileData"}}, MODEL.stem]}
    event = httpx.post(f"{server[0]}/gradio_api/call/analyze", json=payload, timeout=30).json()
    stream = httpx.get(f"{server[0]}/gradio_api/call/analyze/{event['event_id']}", timeout=60).text
    assert "event: error" in stream
    assert angry_clip.stem not in stream


def test_unknown_model_names_are_refused(client: Any, angry_clip: Path) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict(handle_file(str(angry_clip)), f"../{MODEL.stem}", api_name="/analyze")


def test_eight_concurrent_requests_all_answer(client: Any, clips: list[Path], cli_rows: dict[str, dict[str, Any]]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda path: _ask(client, path), clips))
    for path, outputs in zip(clips, answers, strict=True):
        _, result = _summary_and_result(outputs)
        assert result["error"] == "" and result["emotion"] == cli_rows[path.name]["emotion"]


def test_loopback_load_of_50_requests_8_at_a_time_has_no_errors(
    client: Any, clips: list[Path], cli_rows: dict[str, dict[str, Any]]
) -> None:
    requests = [clips[index % len(clips)] for index in range(50)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda path: _ask(client, path), requests))
    elapsed = time.monotonic() - started
    answered = list(zip(requests, answers, strict=True))
    errors = [(path.name, outputs[2].get("error")) for path, outputs in answered if outputs[2].get("error")]
    assert errors == []
    assert all(outputs[2]["emotion"] == cli_rows[path.name]["emotion"] for path, outputs in answered)
    assert elapsed < 150, f"50 requests took {elapsed:.0f} s"


def _uploads(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*.flac") if path.is_file()]


@pytest.mark.slow
def test_uploads_are_deleted_once_as_old_as_asked_and_a_page_still_naming_one_is_told(
    actor_01: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two dozen different clips leave nothing in Gradio's upload folder once ``--keep-minutes``
    have passed; a page that analyses a deleted upload again (another model picked) gets a message."""
    from gradio_client import Client

    keep_seconds = 8
    folder = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    port = free_port()
    command = [
        sys.executable, "app_gradio.py", "--port", str(port), "--keep-minutes", str(keep_seconds / 60),
        "--models-dir", str(MODEL.parent),
    ]  # fmt: skip
    with serve(command, port, tmp_path / "demo.log") as (url, _):
        client = Client(url, verbose=False)
        requests = sorted(actor_01.glob("*.flac"))[:24]
        with ThreadPoolExecutor(max_workers=2) as pool:  # the server's concurrency: no upload waits in the queue
            answers = list(pool.map(lambda path: _ask(client, path), requests))
        assert [outputs[2]["error"] for outputs in answers] == [""] * len(requests)
        uploaded = _uploads(folder)
        assert uploaded, "the uploads went to GRADIO_TEMP_DIR"
        deadline = time.monotonic() + keep_seconds + 30
        while _uploads(folder) and time.monotonic() < deadline:
            time.sleep(1)
        assert _uploads(folder) == []

        payload = {"data": [{"path": str(uploaded[0]), "meta": {"_type": "gradio.FileData"}}, MODEL.stem]}
        event = httpx.post(f"{url}/gradio_api/call/analyze", json=payload, timeout=30).json()
        stream = httpx.get(f"{url}/gradio_api/call/analyze/{event['event_id']}", timeout=60).text
    assert "no longer on the server" in stream and "upload it again" in stream


def test_server_listens_on_loopback_only(server: tuple[str, subprocess.Popen]) -> None:
    import psutil

    listening = [c for c in psutil.Process(server[1].pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert listening and {c.laddr.ip for c in listening} == {"127.0.0.1"}


def test_the_served_demo_names_its_own_share_option_not_gradios(server: tuple[str, subprocess.Popen], server_log: Path) -> None:
    log = server_log.read_text()
    assert server[0] in log and "--share" in log
    assert "share=True" not in log and "launch()" not in log


# ----------------------------------------------------------------------------- the handler itself
@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("nothing", "no audio"),
        ("directory", "is a directory"),
        ("png", "not a readable audio file"),
        ("too_large", "too large"),
        ("unknown_model", "unknown model"),
    ],
)
def test_handler_never_raises_and_says_what_is_wrong(case: str, reason: str, tmp_path: Path, angry_clip: Path) -> None:
    from ser_classic.demo import Limits, analyze

    path, model_name, limits = angry_clip, None, Limits()
    if case == "nothing":
        path = None
    elif case == "directory":
        path = tmp_path / "folder.wav"
        path.mkdir()
    elif case == "png":
        path = tmp_path / "picture.wav"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    elif case == "too_large":
        limits = Limits(max_megabytes=0.01)
    else:
        model_name = "/etc/passwd"
    analysis = analyze(path, model_name, models_dir=MODEL.parent, limits=limits)
    assert reason in analysis.error
    assert analysis.summary.startswith("### Error") and reason in analysis.summary
    assert analysis.probabilities is None and analysis.waveform is None


def test_long_recording_gets_an_emotion_timeline_chart_and_short_one_does_not(actor_01: Path, tmp_path: Path) -> None:
    from ser_classic.demo import TIMELINE_WINDOW_SECONDS, analyze

    sources = [actor_01 / f"03-01-{emotion}-02-01-01-01.flac" for emotion in ("05", "04", "03")]
    long_file = tmp_path / "three clips.wav"
    write_concatenation(sources, long_file)
    analysis = analyze(long_file, models_dir=MODEL.parent)
    assert analysis.error == ""
    assert analysis.timeline is not None and analysis.timeline.size[0] > 100
    speech = analysis.segments[analysis.segments["emotion"] != "non-speech"]
    assert len(speech) >= 1 and speech["end"].max() > 2 * TIMELINE_WINDOW_SECONDS

    signal, sample_rate = soundfile.read(sources[0], dtype="float32")
    short_file = tmp_path / "short.wav"
    excerpt = signal[int(0.8 * sample_rate) : int((0.8 + TIMELINE_WINDOW_SECONDS - 0.5) * sample_rate)]
    soundfile.write(short_file, excerpt, sample_rate)
    short = analyze(short_file, models_dir=MODEL.parent)
    assert short.error == "" and short.timeline is None and short.segments is None
    assert short.waveform is not None and short.f0 is not None


def test_a_long_recording_is_headed_by_its_share_of_speech_per_emotion_then_the_whole_clip_label(
    actor_01: Path, small_model_path: Path, tmp_path: Path
) -> None:
    """Three clips of changing emotion: the headline is the timeline's summary, not a label
    that mixes the three; the whole-clip label comes second, named as such."""
    from ser_classic.demo import analyze
    from ser_classic.models import card_path

    models = tmp_path / "models"
    models.mkdir()
    for source in (small_model_path, card_path(small_model_path)):
        shutil.copy(source, models / source.name)
    sources = [actor_01 / f"03-01-{emotion}-02-01-01-01.flac" for emotion in ("05", "04", "03")]
    long_file = tmp_path / "three clips.wav"
    write_concatenation(sources, long_file)
    analysis = analyze(long_file, small_model_path.stem, models_dir=models)
    assert analysis.error == "" and analysis.timeline is not None
    shares = analysis.result["speech_shares"]
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3) and list(shares.values()) == sorted(shares.values(), reverse=True)
    headline, rest = analysis.summary.split("\n", 1)
    first = next(iter(shares))
    assert headline.startswith(f"## {first} {shares[first]:.0%} of the speech")
    assert all(f"{emotion} {share:.0%}" in headline for emotion, share in shares.items())
    assert f"Whole clip as one label: **{analysis.result['emotion']}**" in rest

    short_file = tmp_path / "one clip.wav"
    write_concatenation(sources[:1], short_file)
    short = analyze(short_file, small_model_path.stem, models_dir=models)
    assert short.summary.startswith(f"## {short.result['emotion']}\n") and "speech_shares" not in short.result


def test_a_requests_figures_are_freed_once_it_is_answered_and_none_stay_open_in_pyplot(angry_clip: Path) -> None:
    """Nothing (pyplot, a cache) keeps a request's figures: after Gradio drew them, the collection
    the next request starts with frees them; the Model tab's confusion matrix is closed too."""
    import gc
    import io
    import weakref

    import matplotlib.pyplot as plt

    from ser_classic.demo import _release_memory, analyze, model_view

    analysis = analyze(angry_clip, models_dir=MODEL.parent)
    figures = [analysis.waveform, analysis.spectrogram, analysis.f0, analysis.why_figure]
    for figure in figures:
        figure.savefig(io.BytesIO(), format="webp")  # what gr.Plot sends to the page
    freed = [weakref.ref(figure) for figure in figures]
    assert model_view(MODEL.stem, MODEL.parent)[1] is not None
    del analysis, figures, figure
    gc.disable()  # only the demo's own collection may free them
    try:
        _release_memory()
    finally:
        gc.enable()
    assert [reference() for reference in freed] == [None] * 4
    assert plt.get_fignums() == []


def test_the_demo_deletes_uploads_once_as_old_as_asked() -> None:
    """Gradio's ``delete_cache``: files older than ``keep_uploads_minutes``, looked for every
    minute at most and ten times per keeping time at least."""
    from ser_classic.demo import KEEP_UPLOADS_MINUTES, build_app

    assert build_app(models_dir=MODEL.parent).delete_cache == (60, 60 * KEEP_UPLOADS_MINUTES)
    assert build_app(models_dir=MODEL.parent, keep_uploads_minutes=2).delete_cache == (12, 120)
    assert build_app(models_dir=MODEL.parent, keep_uploads_minutes=0.1).delete_cache == (1, 6)


def test_model_picker_lists_the_bundled_default_first(tmp_path: Path) -> None:
    from ser_classic.demo import available_models
    from ser_classic.models import DEFAULT_MODEL_PATH

    for name in ("aaa.joblib", DEFAULT_MODEL_PATH.name, "zzz.joblib", "notes.txt"):
        (tmp_path / name).touch()
    assert list(available_models(tmp_path)) == [DEFAULT_MODEL_PATH.stem, "aaa", "zzz"]


def test_a_per_speaker_model_is_refused_with_a_message(small_training_set: tuple, angry_clip: Path, tmp_path: Path) -> None:
    """Per-speaker standardization needs many clips of one speaker; the demo has one upload."""
    from ser_classic.demo import analyze
    from ser_classic.models import train

    features, labels = small_training_set
    speakers = [Path(path).parent.name for path in features.index]
    train(features, labels, classifier="logreg", speakers=speakers, speaker_norm=True).save(tmp_path / "per-speaker.joblib")
    analysis = analyze(angry_clip, "per-speaker", models_dir=tmp_path)
    assert "per speaker" in analysis.error and analysis.probabilities is None


def test_model_tab_shows_the_card_and_its_confusion_matrix_when_the_card_has_one(tmp_path: Path) -> None:
    from ser_classic.demo import model_view
    from ser_classic.models import card_path, read_card

    card = read_card(MODEL)
    n_classes = len(card["classes"])
    for protocol in card.get("evaluation", {}).values():
        protocol.pop("confusion_matrix", None)
    (tmp_path / "plain.joblib").touch()
    card_path(tmp_path / "plain.joblib").write_text(json.dumps(card))
    confusion = (np.eye(n_classes, dtype=int) * 9 + 1).tolist()
    speaker_scores = {**card.get("evaluation", {}).get("speaker", {}), "confusion_matrix": confusion}
    with_matrix = {**card, "evaluation": {"speaker": speaker_scores}}
    (tmp_path / "matrix.joblib").touch()
    card_path(tmp_path / "matrix.joblib").write_text(json.dumps(with_matrix))

    text, picture = model_view("plain", tmp_path)
    assert picture is None and "no confusion matrix" in text
    assert all(label in text for label in card["classes"]) and "#### Features" in text
    assert f"**Augmentation**: {card['training'].get('augmentation', 'none')}" in text
    text, picture = model_view("matrix", tmp_path)
    assert picture is not None and picture.size[0] > 200
    assert model_view("missing", tmp_path)[0].startswith("### Error")


def test_the_handler_reads_the_header_then_decodes_the_upload_once(angry_clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ser_classic import audio
    from ser_classic.demo import analyze

    opened, original = [], audio._open
    monkeypatch.setattr(audio, "_open", lambda *args: opened.append(args) or original(*args))
    analysis = analyze(angry_clip, models_dir=MODEL.parent)
    assert analysis.error == "" and analysis.segments is not None
    assert len(opened) == 2, "one header read for the limits, one decode for the analysis"


# ----------------------------------------------------------------------------- the Adapt tab
#: Emotion codes of the clips adapted to: angry, sad, happy (classes of the small test model).
ADAPT_EMOTIONS = ("05", "04", "03")


@pytest.fixture(scope="module")
def adapt_models(small_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding the small test model with its card and training table: a base
    that adapts in seconds (the bundled default takes 30-60 s)."""
    return models_folder(small_model_path, tmp_path_factory.mktemp("adapt-models"))


@pytest.fixture(scope="module")
def your_clips(ravdess_root: Path) -> list[Path]:
    """Clips of actors the small model never heard: 3 of each of 3 emotions, of 2 actors."""
    return labelled_clips(ravdess_root, (4, 5), ADAPT_EMOTIONS, 3)


def _zip(path: Path, members: dict[str, bytes | Path]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content.read_bytes() if isinstance(content, Path) else content)
    return path


def test_adapt_labels_are_prefilled_from_file_names_and_zip_folders(tmp_path: Path) -> None:
    from ser_classic.demo import CLIP_COLUMNS, clip_table, guess_label

    assert guess_label("03-01-05-02-01-01-07.flac") == ("angry", "Actor_07")
    assert guess_label("1001_DFA_SAD_XX.flac") == ("sad", "1001")
    assert guess_label("Sadness take_2.m4a") == ("sad", "") and guess_label("me-ANGER.wav") == ("angry", "")
    assert guess_label("hello.wav") == ("", "")
    plain = tmp_path / "upload" / "happy clip.wav"
    plain.parent.mkdir()
    plain.write_bytes(b"RIFF")
    archive = _zip(tmp_path / "mine.zip", {
        "mine/Anger/anna/1.wav": b"1", "mine/sad/2.wav": b"2", "mine/fear/bob/x/3.ogg": b"3",
        "mine/sad/notes.txt": b"", "__MACOSX/mine/sad/._2.wav": b"", "mine/sad/.hidden.wav": b"",
    })  # fmt: skip
    table, note = clip_table([plain, archive])
    assert list(table.columns) == list(CLIP_COLUMNS)
    assert table.values.tolist() == [
        ["happy clip.wav", "happy", ""],
        ["mine.zip/mine/Anger/anna/1.wav", "angry", "anna"],
        ["mine.zip/mine/sad/2.wav", "sad", ""],
        ["mine.zip/mine/fear/bob/x/3.ogg", "fearful", "bob"],
    ]
    assert "4 clips" in note and "fill in" not in note
    # without the ROOT/ folder, and a label that names no emotion kept as it is (a new class)
    flat = _zip(tmp_path / "flat.zip", {"angry/1.wav": b"1", "Bored/2.wav": b"2", "03-01-04-01-01-01-09.wav": b"3"})
    table, note = clip_table([flat, tmp_path / "upload" / "happy clip.wav", tmp_path / "upload" / "happy clip.wav"])
    assert table.values.tolist() == [
        ["flat.zip/angry/1.wav", "angry", ""], ["flat.zip/Bored/2.wav", "bored", ""],
        ["flat.zip/03-01-04-01-01-01-09.wav", "sad", "Actor_09"],
        ["happy clip.wav", "happy", ""], ["happy clip.wav (2)", "happy", ""],
    ]  # fmt: skip
    table, note = clip_table([tmp_path / "x" / "take 1.wav"])
    assert table.values.tolist() == [["take 1.wav", "", ""]] and "fill in the label of the other 1" in note


@pytest.mark.parametrize(
    "member",
    ["../evil.wav", "mine/../../evil.wav", "/tmp/evil.wav", "C:/evil.wav", "link.wav"],
    ids=["parent", "parent-inside", "absolute", "drive", "symlink"],
)
def test_a_zip_that_would_write_outside_its_folder_is_refused_whole(member: str, adapt_models: Path, tmp_path: Path) -> None:
    import zipfile

    from ser_classic.demo import adapt_clips, clip_table

    archive = tmp_path / "upload" / "clips.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("angry/ok.wav", b"RIFF")
        entry = zipfile.ZipInfo(member)
        if member == "link.wav":
            entry.external_attr = (0o120777 << 16)  # a symbolic link, to /etc/passwd
        bundle.writestr(entry, b"/etc/passwd" if member == "link.wav" else b"RIFF")
    table, note = clip_table([archive])
    assert table.empty and "`clips.zip`: refused" in note and "outside its folder" in note
    folder = tmp_path / "work" / "adaptation"
    folder.mkdir(parents=True)
    outcome = adapt_clips([archive], None, "small", folder, models_dir=adapt_models)
    assert outcome.summary.startswith("### Error") and "refused" in outcome.summary and outcome.model_path is None
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["adaptation", "clips.zip", "upload", "work"]


def test_a_zip_too_large_once_extracted_is_refused(tmp_path: Path) -> None:
    from ser_classic.demo import MAX_ZIP_EXPANSION, Limits, clip_table

    limits = Limits(max_megabytes=0.01)
    archive = _zip(tmp_path / "bomb.zip", {f"angry/{k}.wav": bytes(limits.max_bytes) for k in range(MAX_ZIP_EXPANSION + 1)})
    table, note = clip_table([archive], limits)
    assert table.empty and "this demo extracts up to" in note


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("nothing", "no clips"),
        ("broken zip", "not a readable zip file"),
        ("one class", "at least two classes"),
        ("unreadable", "no usable clip"),
        ("unknown base", "unknown base model"),
    ],
)
def test_adapting_never_raises_and_says_what_is_wrong(
    case: str, reason: str, adapt_models: Path, your_clips: list[Path], tmp_path: Path
) -> None:
    from ser_classic.demo import adapt_clips

    base, uploads, table = "small", [], None
    if case == "broken zip":
        uploads = [tmp_path / "clips.zip"]
        uploads[0].write_bytes(b"PK\x03\x04 truncated")
    elif case == "one class":
        uploads = your_clips[:3]
    elif case == "unreadable":
        uploads = [tmp_path / "angry.wav", tmp_path / "sad.wav"]
        for path in uploads:
            path.write_text("not audio\n" * 50)
    elif case == "unknown base":
        uploads, base = your_clips, "../../etc/passwd"
    folder = tmp_path / "adaptation"
    folder.mkdir()
    outcome = adapt_clips(uploads, table, base, folder, models_dir=adapt_models)
    assert outcome.summary.startswith("### Error: cannot adapt") and reason in outcome.summary
    assert "Traceback" not in outcome.summary and outcome.download is None and outcome.model_path is None
    if case == "unreadable":
        assert "- `angry.wav`: not a readable audio file" in outcome.summary
    assert list(folder.iterdir()) == [], "nothing left behind"


def test_adapting_gives_an_estimate_and_a_zip_holding_a_model_that_loads(
    adapt_models: Path, your_clips: list[Path], tmp_path: Path, angry_clip: Path
) -> None:
    """Labelled uploads and a zip of label folders, some left out (unlabelled, silent, not
    audio, a label of too few clips); the summary counts the clips per class and gives the
    estimate; the zip holds the model, its card and training table, which load as a model;
    ``analyze`` classifies with it when given its file."""
    import zipfile

    from ser_classic.demo import ADAPTED_CHOICE, CLIP_COLUMNS, adapt_clips, analyze
    from ser_classic.models import load_model

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    silence, noise, text = uploads / "03-01-05-01-01-01-04.wav", uploads / "hiss angry.wav", uploads / "notes (sad).wav"
    soundfile.write(silence, np.zeros(48000, dtype=np.float32), 48000)
    soundfile.write(noise, 0.05 * np.random.default_rng(0).standard_normal(48000).astype(np.float32), 48000)
    text.write_text("not audio\n" * 50)
    happy = [path for path in your_clips if "-03-" in path.name]
    archive = _zip(uploads / "more.zip", {f"mine/{path.name.split('-')[2]}/Actor_04/{path.name}": path for path in happy[:1]}
                   | {"mine/bored/1.flac": happy[0]})
    rows = [[path.name, "", path.parent.name] for path in your_clips if path not in happy]
    rows = [[name, {"05": "Angry", "04": "sadness"}[name.split("-")[2]], speaker] for name, _, speaker in rows]
    rows += [[path.name, "happy", ""] for path in happy] + [[silence.name, "angry", ""], [noise.name, "angry", ""], [text.name, "sad", ""]]
    rows += [["more.zip/mine/03/Actor_04/" + happy[0].name, "happy", "Actor_04"], ["more.zip/mine/bored/1.flac", "bored", ""]]
    rows += [["never uploaded.wav", "sad", ""], [happy[0].name + " (2)", "", ""]]
    import pandas as pd

    folder = tmp_path / "adaptation"
    folder.mkdir()
    steps: list[float] = []
    outcome = adapt_clips(
        [*your_clips, happy[0], silence, noise, text, archive], pd.DataFrame(rows, columns=list(CLIP_COLUMNS)), "small", folder,
        models_dir=adapt_models, report=lambda fraction, _: steps.append(fraction),
    )
    summary = outcome.summary
    assert summary.startswith("### `small` adapted to 19 clips of yours"), summary
    assert "| angry | 6 |" in summary and "| sad | 6 |" in summary and "| happy | 7 |" in summary
    assert "\n\nEstimate on your 19 clips (2 folds grouped by speaker" in summary
    for name, reason in [
        (silence.name, "digital silence"), (noise.name, "no speech found"), (text.name, "not a readable audio file"), ("never uploaded.wav", "not among the uploaded clips"),
        (happy[0].name + " (2)", "no label"),
    ]:  # fmt: skip
        assert f"- `{name}`: {reason}" in summary
    assert "label 'bored': 1 clip(s), the base model lacks it" in summary
    assert ADAPTED_CHOICE in summary and "mine.zip" in summary
    assert steps[0] == 0.0 and steps == sorted(steps)

    assert outcome.download == folder / "mine.zip" and outcome.model_path == folder / "mine.joblib"
    assert sorted(path.name for path in folder.iterdir()) == ["mine.card.json", "mine.joblib", "mine.training.npz", "mine.zip"]
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(outcome.download) as bundle:
        assert sorted(bundle.namelist()) == ["mine.card.json", "mine.joblib", "mine.training.npz"]
        bundle.extractall(unzipped)
    model = load_model(unzipped / "mine.joblib")
    assert model.card["adaptation"]["user_clips"] == {"angry": 6, "happy": 7, "sad": 6}
    assert model.card["adaptation"]["base"]["file"] == "small.joblib"

    analysis = analyze(angry_clip, ADAPTED_CHOICE, model_path=outcome.model_path)
    assert analysis.error == "" and analysis.result["model"] == ADAPTED_CHOICE
    assert f"model `{ADAPTED_CHOICE}`" in analysis.summary and "Adapted from `small.joblib` to 19 clips" in analysis.summary


def test_the_adapted_choice_without_a_model_asks_to_adapt_again(angry_clip: Path, tmp_path: Path) -> None:
    from ser_classic.demo import ADAPTED_CHOICE, adapted_model_view, analyze

    for model_path in (None, tmp_path / "deleted" / "mine.joblib"):
        analysis = analyze(angry_clip, ADAPTED_CHOICE, models_dir=MODEL.parent, model_path=model_path)
        assert "adapt one in the Adapt tab" in analysis.error and analysis.summary.startswith("### Error")
        assert adapted_model_view(model_path)[0].startswith("### Error")


def test_adapted_models_are_deleted_once_as_old_as_asked_and_nothing_outside_their_folder(tmp_path: Path) -> None:
    from ser_classic.demo import _AdaptedModels

    kept = _AdaptedModels(keep_seconds=1)
    first, second = kept.new_folder(), kept.new_folder()
    root = first.parent
    assert first != second and second.parent == root and root.name.startswith("ser-adapted-")
    (first / "mine.zip").write_bytes(b"")
    (first / "mine.joblib").write_bytes(b"")
    in_progress = second / "mine.joblib"  # no zip yet: an adaptation running
    in_progress.write_bytes(b"")
    outside = tmp_path / "mine.joblib"
    outside.write_bytes(b"")
    kept.delete(outside)
    kept.delete(root)
    time.sleep(1.5)
    kept.delete_old()
    assert not first.exists() and in_progress.exists() and outside.exists() and root.exists()
    kept.delete(in_progress)
    assert not second.exists() and root.exists()


@pytest.mark.slow
def test_served_adapt_tab_gives_its_page_alone_a_model_deleted_once_as_old_as_asked(
    adapt_models: Path, your_clips: list[Path], angry_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the API as the page calls it: the adapted model is the session's Analyse choice
    (another session cannot pick it), a failed adaptation keeps it, and it is deleted once
    ``--keep-minutes`` old, after which the page is told to adapt again."""
    import zipfile

    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from ser_classic.demo import ADAPTED_CHOICE
    from ser_classic.models import load_model

    keep_seconds = 30
    server_temp = tmp_path / "server-temp"
    server_temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(server_temp))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    port = free_port()
    command = [
        sys.executable, "app_gradio.py", "--port", str(port), "--models-dir", str(adapt_models), "--keep-minutes", str(keep_seconds / 60),
    ]  # fmt: skip
    with serve(command, port, tmp_path / "demo.log") as (url, _):
        page, other_page = Client(url, verbose=False), Client(url, verbose=False)
        summary, download, choice = page.predict(uploads=[handle_file(str(path)) for path in your_clips], base_name="small", api_name="/adapt")
        assert summary.startswith("### `small` adapted to 18 clips of yours") and "Estimate on your 18 clips" in summary
        assert choice["value"] == ADAPTED_CHOICE and [value for value, _ in choice["choices"]] == ["small", ADAPTED_CHOICE]
        assert Path(download).name == "mine.zip"
        with zipfile.ZipFile(download) as bundle:
            bundle.extractall(tmp_path / "mine")
        assert load_model(tmp_path / "mine" / "mine.joblib").card["adaptation"]["n_user_clips"] == 18

        def analyse(client: Any) -> tuple:
            return client.predict(handle_file(str(angry_clip)), ADAPTED_CHOICE, api_name="/analyze")

        assert analyse(page)[2]["model"] == ADAPTED_CHOICE and f"model `{ADAPTED_CHOICE}`" in analyse(page)[0]
        with pytest.raises(AppError, match="not in the list of choices"):
            analyse(other_page)
        summary, download, choice = page.predict(uploads=[handle_file(str(path)) for path in your_clips[:3]], base_name="small", api_name="/adapt")
        assert summary.startswith("### Error: cannot adapt") and "at least two classes" in summary and download is None
        assert analyse(page)[2]["error"] == "", "a failed adaptation keeps the page's model"
        models = list(server_temp.glob("ser-adapted-*/*/mine.joblib"))
        assert len(models) == 1 and not list(server_temp.glob("ser-adapted-*/*/clips-*")), "one model, no clips left"

        deadline = time.monotonic() + keep_seconds + 30
        while models[0].exists() and time.monotonic() < deadline:
            time.sleep(1)
        assert not models[0].exists() and list(server_temp.glob("ser-adapted-*/*")) == []
        summary, _, result, *_ = analyse(page)
        assert "adapt one in the Adapt tab" in result["error"] and summary.startswith("### Error")


# ----------------------------------------------------------------------------- the launchers
DEMO_OPTIONS = {
    "--host", "--port", "--share", "--max-seconds", "--max-megabytes", "--concurrency", "--models-dir", "--keep-minutes",
}  # fmt: skip


def _options(help_text: str) -> set[str]:
    import re

    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", help_text)) - {"--help"}


def test_ser_app_and_app_gradio_py_offer_the_same_options() -> None:
    from typer.testing import CliRunner

    from demo_support import PROJECT_ROOT
    from ser_classic.cli import app

    ser_app = CliRunner().invoke(app, ["app", "--help"], terminal_width=200)
    script = subprocess.run(
        [sys.executable, "app_gradio.py", "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}
    )
    assert ser_app.exit_code == 0 and script.returncode == 0, script.stderr
    assert DEMO_OPTIONS <= _options(ser_app.output)
    assert _options(script.stdout) == _options(ser_app.output)
    assert "127.0.0.1" in ser_app.output


def test_ser_app_and_app_gradio_py_launch_the_packaged_demo_with_the_same_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runpy

    from typer.testing import CliRunner

    from demo_support import PROJECT_ROOT
    from ser_classic import demo
    from ser_classic.cli import app

    launches: list[dict[str, Any]] = []
    monkeypatch.setattr(demo, "launch", lambda **settings: launches.append(settings))
    arguments = [
        "--port", "7999", "--share", "--max-seconds", "10", "--max-megabytes", "3", "--concurrency", "4", "--models-dir", str(tmp_path),
        "--keep-minutes", "1.5",
    ]  # fmt: skip
    assert CliRunner().invoke(app, ["app", *arguments]).exit_code == 0
    monkeypatch.setattr(sys, "argv", ["app_gradio.py", *arguments])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(PROJECT_ROOT / "app_gradio.py"), run_name="__main__")
    assert stop.value.code == 0
    expected = {
        "host": "127.0.0.1", "port": 7999, "share": True, "max_seconds": 10.0, "max_megabytes": 3.0, "concurrency": 4,
        "models_dir": tmp_path, "keep_uploads_minutes": 1.5,
    }  # fmt: skip
    assert launches == [expected, expected]
