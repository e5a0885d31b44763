"""End to end in a real browser: Debian's chromium, headless, driven by Playwright, against
the demo started with ``ser app``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from demo_support import free_port, labelled_clips, models_folder, serve, write_concatenation

#: Each test drives a headless browser against a served demo (``pytest -m "not slow"`` leaves them out).
pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
#: No sandbox (CI runs as root in a container), no GPU, no background traffic of its own; a
#: fake microphone (a beep) that needs no permission prompt.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
RESULT_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    command = [sys.executable, "-c", "from ser_classic.cli import main; main()", "app", "--port", str(port)]
    with serve(command, port, tmp_path_factory.mktemp("server") / "demo.log") as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser(playwright):
    """Headless chromium; if it cannot start, the test fails with the reason (a skip outside CI)."""
    yield from _chromium(playwright, CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def playwright():
    """One Playwright for the module: its sync API runs one instance per thread."""
    from playwright.sync_api import sync_playwright

    started = sync_playwright().start()
    yield started
    started.stop()


def _chromium(playwright, arguments: list[str]):
    """Headless chromium started with ``arguments``, closed after; if it cannot start, the test
    fails with the reason (a skip outside CI)."""
    try:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=arguments)
    except Exception as error:  # Playwright reports a missing or broken browser in many ways
        reason = f"chromium could not start from {CHROMIUM} (apt-get install chromium): {error}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    yield launched
    launched.close()


@pytest.fixture()
def page(browser: Any, demo_url: str):
    """A fresh page on the demo; records every request that leaves this machine."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["microphone"])
    page = context.new_page()
    page.outside_requests = []
    local = (demo_url, "data:", "blob:")
    page.on("request", lambda request: None if request.url.startswith(local) else page.outside_requests.append(request.url))
    page.goto(demo_url)
    page.locator("#recording").wait_for()
    yield page
    context.close()


def _upload(page: Any, path: Path) -> None:
    page.locator("#recording input[type=file]").set_input_files(str(path))


def test_uploaded_clip_shows_its_emotion_in_the_browser(page: Any, angry_clip: Path, tmp_path: Path) -> None:
    from ser_classic.models import DEFAULT_MODEL_PATH, load_model
    from ser_classic.prediction import predict_files

    expected = next(predict_files([angry_clip], load_model(DEFAULT_MODEL_PATH)))["emotion"]
    _upload(page, angry_clip)
    headline = page.locator("#summary h2")
    headline.wait_for(timeout=RESULT_TIMEOUT_MS)
    assert headline.inner_text().strip() == expected
    assert expected in page.locator("#probabilities").inner_text()
    for picture in ("#waveform", "#spectrogram", "#f0", "#why-figure"):
        page.locator(f"{picture} img").wait_for(timeout=RESULT_TIMEOUT_MS)
    _assert_why_panel(page, expected)
    assert "48000 Hz" in page.locator("#file-info").inner_text()
    screenshot = tmp_path / "demo.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    assert page.outside_requests == []


def _assert_why_panel(page: Any, emotion: str) -> None:
    """The "Why" panel beside the probabilities explains the headline's emotion, group by group."""
    why = page.locator("#why")
    why.get_by_text(emotion).first.wait_for(timeout=RESULT_TIMEOUT_MS)
    text = why.inner_text()
    assert "feature group" in text and "MFCC" in text
    page.locator("#why-figure img").wait_for(timeout=RESULT_TIMEOUT_MS)


def test_non_audio_upload_shows_an_error_message_not_a_traceback(page: Any, tmp_path: Path) -> None:
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio\n" * 20)
    _upload(page, fake)
    summary = page.locator("#summary")
    summary.get_by_text("not a readable audio file").wait_for(timeout=RESULT_TIMEOUT_MS)
    assert "Error" in summary.inner_text()
    assert "Traceback" not in page.locator("body").inner_text()


def test_model_tab_shows_the_model_card(page: Any) -> None:
    from ser_classic.models import DEFAULT_MODEL_PATH, read_card

    card = read_card(DEFAULT_MODEL_PATH)
    page.get_by_role("tab", name="Model").click()
    text = page.locator("#card")
    text.get_by_text("Cross-validated scores").wait_for(timeout=RESULT_TIMEOUT_MS)
    assert all(label in text.inner_text() for label in card["classes"])


def test_long_recording_shows_its_emotion_over_time(page: Any, actor_01: Path, tmp_path: Path) -> None:
    recording = tmp_path / "angry sad happy.wav"
    write_concatenation([actor_01 / f"03-01-{emotion}-02-01-01-01.flac" for emotion in ("05", "04", "03")], recording)
    _upload(page, recording)
    page.locator("#summary h2").wait_for(timeout=RESULT_TIMEOUT_MS)
    page.locator("#segments").scroll_into_view_if_needed()  # the chart's image loads lazily, when in view
    page.locator("#timeline img").wait_for(timeout=RESULT_TIMEOUT_MS)
    assert "non-speech" in page.locator("#segments").inner_text()
    page.screenshot(path=str(tmp_path / "demo-timeline.png"), full_page=True)
    assert page.outside_requests == []


def test_microphone_recording_is_analysed(page: Any) -> None:
    from ser_classic.models import DEFAULT_MODEL_PATH, read_card

    page.get_by_role("button", name="Record audio").click()
    recorder = page.locator("#recording")
    recorder.get_by_role("button", name="Record", exact=True).click()
    page.wait_for_timeout(2500)
    recorder.get_by_role("button", name="Stop").first.click()
    headline = page.locator("#summary h2")
    headline.wait_for(timeout=RESULT_TIMEOUT_MS)
    emotion = headline.inner_text().strip()
    assert emotion in read_card(DEFAULT_MODEL_PATH)["classes"]
    _assert_why_panel(page, emotion)
    assert "WAV" in page.locator("#file-info").inner_text()


@pytest.mark.parametrize(
    ("widget", "name", "codec", "settings"),
    [
        ("#recording", "memo.m4a", "aac", {"bit_rate": 96000}),
        ("#recording-file", "call.mp4", "aac", {"bit_rate": 128000, "with_video": True}),
        ("#recording-file", "meeting.webm", "libopus", {"bit_rate": 48000, "codec_rate": 48000}),
    ],
    ids=["m4a-in-the-audio-widget", "mp4-video-in-the-file-box", "webm-in-the-file-box"],
)
def test_phone_and_video_call_recordings_are_analysed(
    page: Any, angry_clip: Path, tmp_path: Path, widget: str, name: str, codec: str, settings: dict
) -> None:
    """The audio widget takes audio types only (an M4A); videos go to the file box beside it."""
    import soundfile
    from media import write_encoded

    from ser_classic.models import DEFAULT_MODEL_PATH, load_model
    from ser_classic.prediction import predict_files

    signal, sample_rate = soundfile.read(angry_clip, dtype="float32")
    path = write_encoded(tmp_path / name, signal, sample_rate, codec, **settings)
    expected = next(predict_files([path], load_model(DEFAULT_MODEL_PATH)))["emotion"]
    page.locator(f"{widget} input[type=file]").set_input_files(str(path))
    headline = page.locator("#summary h2")
    headline.wait_for(timeout=RESULT_TIMEOUT_MS)
    assert headline.inner_text().strip() == expected
    assert f"{path.suffix.lstrip('.').upper()} ({codec.removeprefix('lib').upper()})" in page.locator("#file-info").inner_text()
    page.screenshot(path=str(tmp_path / "demo-format.png"), full_page=True)
    assert page.outside_requests == []


# --------------------------------------------------------------------------- the Live tab
#: Where the Live tab's test also saves its screenshot (docs/live.png for the docs), if set.
LIVE_SCREENSHOT = os.environ.get("SER_LIVE_SCREENSHOT")


@pytest.fixture(scope="module")
def live_recording(actor_01: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 20 s of actor 1: four angry clips, then two sad ones, 1 s apart; 48 kHz 16-bit PCM
    WAV, what Chromium's fake microphone plays."""
    import soundfile

    clips = [actor_01 / f"03-01-05-02-0{statement}-0{repetition}-01.flac" for statement in (1, 2) for repetition in (1, 2)]
    clips += [actor_01 / f"03-01-04-02-0{statement}-01-01.flac" for statement in (1, 2)]
    path = tmp_path_factory.mktemp("microphone") / "microphone.wav"
    write_concatenation(clips, path)
    assert soundfile.info(str(path)).subtype == "PCM_16"
    return path


@pytest.fixture(scope="module")
def live_browser(playwright, live_recording: Path):
    """Headless chromium whose fake microphone plays :func:`live_recording` once, then silence."""
    yield from _chromium(playwright, [*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={live_recording}%noloop"])


def test_live_tab_shows_the_emotions_of_the_microphone_as_they_come(
    live_browser: Any, demo_url: str, live_recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The fake microphone plays a recording; the Live tab shows a row per second of its speech,
    updated while it plays, with the majority emotion that `ser timeline` finds in it; the
    session is then analysed as a whole."""
    import time

    import soundfile

    from ser_classic.models import DEFAULT_MODEL_PATH, load_model
    from ser_classic.timeline import speech_regions, speech_shares, timeline

    model = load_model(DEFAULT_MODEL_PATH)
    expected = speech_shares(timeline(live_recording, model)).index[0]
    regions = speech_regions(live_recording, config=model.feature_config)
    whole_seconds_of_speech = int(np.floor(regions["end"] - regions["start"]).sum())
    duration = soundfile.info(str(live_recording)).duration

    context = live_browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["microphone"])
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda request: None if request.url.startswith((demo_url, "data:", "blob:")) else outside.append(request.url))
    page.goto(demo_url)
    page.get_by_role("tab", name="Live").click()
    page.locator("#live-audio").get_by_role("button", name="Record", exact=True).click()
    rows = page.locator("#live-timeline .live-row")
    counts, started = [], time.monotonic()
    pictured = LIVE_SCREENSHOT is None
    while time.monotonic() - started < duration + 60 and rows.count() < np.ceil(duration) + 2:
        counts.append((time.monotonic(), rows.count()))
        if not pictured and counts[-1][1] >= 12 and rows.last.get_attribute("data-emotion") != "non-speech":
            page.screenshot(path=LIVE_SCREENSHOT)  # the docs' picture: while someone speaks
            pictured = True
        page.wait_for_timeout(250)
    emotions = [cell.get_attribute("data-emotion") for cell in rows.all()]
    speech = [emotion for emotion in emotions if emotion not in ("non-speech", "too-short")]  # rows with an emotion
    changes = [moment for (moment, count), (_, before) in zip(counts[1:], counts[:-1]) if count != before]
    waits = np.diff(changes) if len(changes) > 1 else np.array([np.inf])
    with capsys.disabled():
        print(f"\n[live tab] {len(emotions)} rows ({len(speech)} with an emotion) for {whole_seconds_of_speech} whole seconds of speech; "
              f"page updates {np.mean(waits):.2f} s apart on average, at most {np.max(waits):.2f} s; majority {max(set(speech), key=speech.count) if speech else None}, "
              f"ser timeline's {expected}")
    assert len(speech) >= whole_seconds_of_speech
    assert max(set(speech), key=speech.count) == expected
    assert "non-speech" in emotions
    assert np.mean(waits) <= 1.1 and np.max(waits) <= 3.0  # a row a second, even on a busy machine
    page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
    page.locator("#live-audio").get_by_role("button", name="Stop").first.click()
    page.locator("#live-analyse").click()
    page.locator("#live-summary h2").wait_for(timeout=RESULT_TIMEOUT_MS)
    assert expected in page.locator("#live-summary h2").inner_text()
    assert "stopped" in page.locator("#live-now").inner_text()
    assert outside == []
    context.close()


@pytest.fixture(scope="module")
def adapt_demo_url(small_model_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """The demo serving the small test model (with its training table): a base that adapts in seconds."""
    models = models_folder(small_model_path, tmp_path_factory.mktemp("adapt-models"))
    port = free_port()
    command = [sys.executable, "-c", "from ser_classic.cli import main; main()", "app", "--port", str(port), "--models-dir", str(models)]
    with serve(command, port, tmp_path_factory.mktemp("adapt-server") / "demo.log") as (url, _):
        yield url


def test_adapt_tab_adapts_to_uploaded_clips_and_the_page_then_analyses_with_that_model(
    browser: Any, adapt_demo_url: str, ravdess_root: Path, angry_clip: Path, tmp_path: Path
) -> None:
    """Adapt without clips is an error message; clips of 3 emotions of 2 actors uploaded in the
    Adapt tab are labelled from their names; Adapt shows the estimate and the model's zip, which
    loads; the Analyse tab then uses that model."""
    import zipfile

    from ser_classic.demo import ADAPTED_CHOICE
    from ser_classic.models import load_model

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda request: None if request.url.startswith((adapt_demo_url, "data:", "blob:")) else outside.append(request.url))
    page.goto(adapt_demo_url)
    page.get_by_role("tab", name="Adapt").click()
    page.locator("#adapt").click()
    page.locator("#adapt-result").get_by_text("no clips").wait_for(timeout=RESULT_TIMEOUT_MS)
    assert "Error" in page.locator("#adapt-result").inner_text() and "Traceback" not in page.locator("body").inner_text()
    clips = labelled_clips(ravdess_root, (4, 5), ("05", "04", "03"), 2)
    page.locator("#adapt-files input[type=file]").set_input_files([str(path) for path in clips])
    page.locator("#adapt-table").get_by_text("Actor_05").first.wait_for(timeout=RESULT_TIMEOUT_MS)
    assert "12 clips" in page.locator("#adapt-result").inner_text()
    page.locator("#adapt").click()
    result = page.locator("#adapt-result")
    result.get_by_text("adapted to 12 clips of yours").wait_for(timeout=RESULT_TIMEOUT_MS)
    assert "Estimate on your 12 clips" in result.inner_text() and ADAPTED_CHOICE in result.inner_text()
    link = page.locator("#adapt-download a[download='mine.zip']")
    link.wait_for(timeout=RESULT_TIMEOUT_MS)
    with page.expect_download() as download:
        link.click()
    download.value.save_as(tmp_path / "mine.zip")
    with zipfile.ZipFile(tmp_path / "mine.zip") as bundle:
        bundle.extractall(tmp_path / "mine")
    assert load_model(tmp_path / "mine" / "mine.joblib").card["adaptation"]["n_user_clips"] == 12
    page.screenshot(path=str(tmp_path / "demo-adapt.png"), full_page=True)

    page.get_by_role("tab", name="Analyse").click()
    assert page.locator("#model input").input_value() == ADAPTED_CHOICE
    page.locator("#recording input[type=file]").set_input_files(str(angry_clip))
    summary = page.locator("#summary")
    summary.get_by_text(f"model {ADAPTED_CHOICE}").wait_for(timeout=RESULT_TIMEOUT_MS)
    assert "Adapted from small.joblib to 12 clips" in summary.inner_text()
    assert outside == []
    context.close()
