"""Live emotion: the streaming analyser, ``ser listen`` on files, pipes and microphones, stops.

The recording under test is made of RAVDESS clips of actors 21-24: for each actor, three clips
of one emotion (angry, sad, happy, fearful in turn), each trimmed as the extractor trims clips,
0.3 s apart (one stretch of speech, as a speaker's sentences), and 2 s of quiet noise (-80
dBFS) between emotions; 48 kHz, 16-bit, 136 s. The model is the bundled default,
as ``ser listen`` uses it.

No test needs a real microphone: the microphone's failures are those of a stand-in for the
sounddevice module (:data:`FAKE_SOUNDDEVICE`), at the edge only, and the missing library is
really missing (its import refused).
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from typer.testing import CliRunner

from ser_classic import audio
from ser_classic.cli import app
from ser_classic.errors import AudioError, SERError
from ser_classic.features.conditioning import speech_band, speech_bounds
from ser_classic.live import MIN_EMOTION_SECONDS, TOO_SHORT, StreamingAnalyser, file_blocks, listen, stdin_blocks
from ser_classic.models import load_model
from ser_classic.timeline import NON_SPEECH, segments, timeline, timeline_columns

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SER = [sys.executable, "-c", "from ser_classic.cli import main; main()"]
EMOTIONS = {"05": "angry", "04": "sad", "03": "happy", "06": "fearful"}
ACTORS = ["21", "22", "23", "24"]
RATE = 48000


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def recording(ravdess_root: Path, model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The long recording (see the module docstring), as a 48 kHz 16-bit WAV."""
    rng = np.random.default_rng(0)
    config = model.feature_config

    def noise(seconds: float) -> np.ndarray:
        return (1e-4 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)

    parts = [noise(1.5)]
    for actor in ACTORS:
        for code in EMOTIONS:
            for statement, repetition in ((1, 1), (2, 1), (1, 2)):
                path = ravdess_root / f"Actor_{actor}" / f"03-01-{code}-02-0{statement}-0{repetition}-{actor}.flac"
                clip, rate = soundfile.read(path, dtype="float32")
                assert rate == RATE
                analysed = audio.resample(clip, RATE, config.sample_rate)
                start, end = speech_bounds(speech_band(analysed, config), config)
                parts += [clip[start * RATE // config.sample_rate : end * RATE // config.sample_rate], noise(0.3)]
            parts.append(noise(1.7))
    path = tmp_path_factory.mktemp("live") / "long.wav"
    soundfile.write(path, np.concatenate(parts), RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def timeline_frame(recording: Path, model) -> pd.DataFrame:
    return timeline(recording, model, window_seconds=3.0, hop_seconds=1.0)


def run_ser(*arguments: object, **options) -> subprocess.CompletedProcess:
    """``ser ARGUMENTS`` in a process of its own, running this source tree."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([*SER, *map(str, arguments)], cwd=PROJECT_ROOT, env=environment, capture_output=True, timeout=600, **options)


def timeline_label(merged: pd.DataFrame, start: float, end: float) -> str:
    """The emotion ``ser timeline``'s segments give most of the speech in ``[start, end]``."""
    overlap = (np.minimum(merged["end"], end) - np.maximum(merged["start"], start)).clip(lower=0)
    speech = (merged["emotion"] != NON_SPEECH) & (overlap > 0)
    by_emotion = overlap[speech].groupby(merged.loc[speech, "emotion"]).sum()
    return str(by_emotion.idxmax()) if len(by_emotion) else NON_SPEECH


def listened_rows(recording: Path) -> pd.DataFrame:
    finished = run_ser("listen", "--input", recording, "--format", "csv")
    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
    return pd.read_csv(io.BytesIO(finished.stdout))


@pytest.fixture(scope="module")
def listened(recording: Path) -> pd.DataFrame:
    """``ser listen --input long.wav`` (as fast as possible), its CSV rows."""
    return listened_rows(recording)


# --------------------------------------------------------------------------- agreement with the timeline
def test_listen_gives_the_timeline_emotion_on_at_least_85_percent_of_speech_rows(
    listened: pd.DataFrame, timeline_frame: pd.DataFrame, capsys: pytest.CaptureFixture
) -> None:
    """At least 85% of all speech rows carry the timeline's emotion; rows of utterances just begun
    (less than MIN_EMOTION_SECONDS of speech so far) carry none, and count as disagreeing."""
    merged = segments(timeline_frame)
    speech = listened[listened["speech"]]
    expected = np.array([timeline_label(merged, start, end) for start, end in zip(speech["start"], speech["end"])])
    same = speech["emotion"].to_numpy() == expected
    decided = (speech["emotion"] != TOO_SHORT).to_numpy()
    agree = float(np.mean(same))
    with capsys.disabled():
        print(
            f"\n[live] {agree:.1%} of {len(speech)} speech rows carry the timeline's emotion "
            f"({np.mean(same[decided]):.1%} of the {decided.sum()} with an emotion; the others are too short to tell)"
        )
    assert agree >= 0.85
    too_short = speech[speech["emotion"] == TOO_SHORT]
    assert (too_short["end"] - too_short["start"] < MIN_EMOTION_SECONDS).all()
    assert len(too_short) <= 2 * len(ACTORS) * len(EMOTIONS)  # the first hop or two of each stretch of speech


def test_listen_and_timeline_agree_on_where_the_speech_is(listened: pd.DataFrame, timeline_frame: pd.DataFrame) -> None:
    merged = segments(timeline_frame)
    pauses = listened[~listened["speech"]]
    assert len(pauses) >= 0.75 * len(ACTORS) * len(EMOTIONS)  # a hop or two in each 2 s pause between emotions
    quiet = [timeline_label(merged, start + 0.1, end - 0.1) == NON_SPEECH for start, end in zip(pauses["start"], pauses["end"])]
    assert np.mean(quiet) >= 0.8
    assert set(listened.loc[listened["speech"], "emotion"]) <= {*load_model().classes, TOO_SHORT}


def test_one_row_per_hop_with_the_timeline_columns(listened: pd.DataFrame, recording: Path, model) -> None:
    duration = soundfile.info(str(recording)).duration
    assert list(listened.columns) == timeline_columns(model.classes)
    assert len(listened) == math.ceil(duration - 1e-9)
    due = np.arange(1, len(listened) + 1, dtype=float)
    due[-1] = duration
    assert np.all(listened["end"].to_numpy() <= due + 1e-3)  # a row is never about audio after its due time
    pauses = listened[~listened["speech"]]
    assert (pauses["emotion"] == NON_SPEECH).all() and pauses.iloc[:, 4:].isna().all(axis=None)
    too_short = listened[listened["emotion"] == TOO_SHORT]
    assert too_short["speech"].all() and too_short.iloc[:, 4:].isna().all(axis=None)
    speech = listened[listened["speech"] & (listened["emotion"] != TOO_SHORT)]
    probabilities = speech[[f"p_{label}" for label in model.classes]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert (speech["end"] - speech["start"] <= 3.0 + 1e-3).all()
    assert list(speech["emotion"]) == [model.classes[index] for index in probabilities.argmax(axis=1)]


def test_rows_do_not_depend_on_how_the_stream_is_cut(recording: Path, model) -> None:
    signal_, rate = soundfile.read(recording, dtype="float32", frames=25 * RATE)
    rng = np.random.default_rng(1)

    def rows_in_blocks(sizes: list[int]) -> pd.DataFrame:
        analyser = StreamingAnalyser(model)
        rows, position = [], 0
        for size in sizes:
            rows += analyser.feed(signal_[position : position + size], rate)
            position += size
        return pd.DataFrame(rows + analyser.close())

    small = rows_in_blocks([int(size) for size in rng.integers(1, 4000, size=signal_.size // 1000)] + [signal_.size])
    large = rows_in_blocks([7 * rate, signal_.size])
    assert small[["start", "end", "speech", "emotion"]].equals(large[["start", "end", "speech", "emotion"]])
    np.testing.assert_allclose(small["confidence"].astype(float), large["confidence"].astype(float), atol=1e-3)


def test_smoothing_is_a_trailing_mean_within_one_stretch_of_speech(recording: Path, model) -> None:
    signal_, rate = soundfile.read(recording, dtype="float32", frames=40 * RATE)
    columns = [f"p_{label}" for label in model.classes]
    frames = {}
    for seconds in (0.0, 4.5):
        analyser = StreamingAnalyser(model, smoothing=seconds)
        frames[seconds] = pd.DataFrame(analyser.feed(signal_, rate) + analyser.close())
    raw, smoothed = frames[0.0], frames[4.5]
    assert raw[["start", "end", "speech"]].equals(smoothed[["start", "end", "speech"]])
    stretch = (~raw["speech"]).cumsum()
    centres = (raw["start"] + raw["end"]) / 2
    for index in raw.index[raw["speech"]]:
        earlier = raw["speech"] & (stretch == stretch[index]) & (centres <= centres[index] + 1e-9) & (centres >= centres[index] - 4.5)
        np.testing.assert_allclose(smoothed.loc[index, columns].astype(float), raw.loc[earlier, columns].astype(float).mean(), atol=1e-9)


def test_silence_is_non_speech_and_integer_blocks_are_scaled(model) -> None:
    quiet = (300 * np.random.default_rng(2).standard_normal(5 * 16000)).astype(np.int16)  # -40 dBFS of noise
    analyser = StreamingAnalyser(model)
    rows = [row for block in np.array_split(quiet, 37) for row in analyser.feed(block, 16000)] + analyser.close()
    assert [(row["start"], row["end"], row["speech"], row["emotion"]) for row in rows] == [
        (float(k), float(k + 1), False, NON_SPEECH) for k in range(5)
    ]
    assert all(row["confidence"] is None for row in rows)


# --------------------------------------------------------------------------- bounded memory
def test_buffers_stay_bounded_over_a_long_stream(model) -> None:
    """Four minutes of tone bursts (1.5 s every 10 s) in 50 ms blocks: the analyser holds no more
    than a window, two hops and its level history, however long the stream; one giant block too."""
    rate = 16000
    rng = np.random.default_rng(3)
    seconds = np.arange(10 * rate) / rate
    burst = np.where(seconds < 1.5, 0.2 * np.sin(2 * np.pi * 180 * seconds) * (1 + 0.5 * np.sin(2 * np.pi * 4 * seconds)), 0.0)
    period = (burst + 1e-4 * rng.standard_normal(burst.size)).astype(np.float32)
    analyser = StreamingAnalyser(model, history_seconds=30.0)
    held, speech_rows = [], 0
    for _ in range(24):
        for block in np.array_split(period, 200):
            speech_rows += sum(row["speech"] for row in analyser.feed(block, rate))
            held.append(analyser.held_values)
    analysis_rate = model.feature_config.sample_rate
    bound = (3.0 + 2 * 1.0 + 0.2) * analysis_rate + 31.0 * analysis_rate / 256 + 100
    assert max(held) <= bound
    assert max(held[len(held) // 2 :]) <= max(held[: len(held) // 2]) * 1.05  # no growth after the first two minutes
    assert speech_rows >= 24
    analyser.feed(np.tile(period, 12), rate)  # two minutes in one block
    assert analyser.held_values <= bound


# --------------------------------------------------------------------------- standard input and files
def _excerpt(recording: Path, folder: Path, seconds: float, rate: int = 16000) -> tuple[Path, bytes]:
    """The recording's first ``seconds`` at ``rate``, 16-bit: a WAV file, and the same samples raw."""
    signal_, source_rate = soundfile.read(recording, dtype="float32", frames=int(seconds * RATE))
    samples = np.round(np.clip(audio.resample(signal_, source_rate, rate), -1, 1 - 2**-15) * 32768).astype("<i2")
    path = folder / f"excerpt-{rate}.wav"
    soundfile.write(path, samples, rate, subtype="PCM_16")
    return path, samples.tobytes()


def test_wav_and_raw_audio_on_standard_input_give_the_rows_of_the_file(recording: Path, tmp_path: Path) -> None:
    path, raw = _excerpt(recording, tmp_path, 9.0)
    runner = CliRunner()
    from_file = runner.invoke(app, ["listen", "--input", str(path), "--format", "jsonl"])
    from_wav = runner.invoke(app, ["listen", "--input", "-", "--format", "jsonl"], input=path.read_bytes())
    from_raw = runner.invoke(app, ["listen", "--input", "-", "--rate", "16000", "--format", "jsonl", "--duration", "6"], input=raw)
    for result in (from_file, from_wav, from_raw):
        assert result.exit_code == 0, result.output
    file_rows = pd.DataFrame(json.loads(line) for line in from_file.stdout.splitlines())
    assert len(file_rows) == 9 and file_rows["speech"].any()
    for result, expected in ((from_wav, file_rows), (from_raw, file_rows.iloc[:6])):
        rows = pd.DataFrame(json.loads(line) for line in result.stdout.splitlines())
        assert rows[["start", "end", "speech", "emotion"]].equals(expected[["start", "end", "speech", "emotion"]])
        np.testing.assert_allclose(rows["confidence"].astype(float), expected["confidence"].astype(float), atol=1e-3)  # the last row comes from close(): frame levels of the whole stream


def test_raw_audio_without_a_rate_and_empty_input_are_refused() -> None:
    runner = CliRunner()
    raw = runner.invoke(app, ["listen", "--input", "-"], input=b"\x00\x01" * 8000)
    assert raw.exit_code == 2 and "--rate" in raw.stderr and raw.stdout == ""
    empty = runner.invoke(app, ["listen", "--input", "-"], input=b"")
    assert empty.exit_code == 2 and "no audio on standard input" in empty.stderr


@pytest.mark.parametrize(("subtype", "channels"), [("PCM_16", 1), ("PCM_24", 2), ("FLOAT", 1), ("PCM_32", 1), ("PCM_U8", 1)])
def test_wav_on_a_pipe_is_decoded_as_soundfile_decodes_it(subtype: str, channels: int) -> None:
    rng = np.random.default_rng(4)
    signal_ = (0.3 * rng.standard_normal((8000, channels))).clip(-1, 1).astype(np.float32)
    encoded = io.BytesIO()
    soundfile.write(encoded, signal_, 8000, subtype=subtype, format="WAV")
    data = bytearray(encoded.getvalue())
    if subtype == "PCM_16":  # a pipe's writer cannot know the length: sizes left at their maximum
        data[4:8] = data[data.index(b"data") + 4 : data.index(b"data") + 8] = b"\xff\xff\xff\xff"
    expected, _ = soundfile.read(io.BytesIO(encoded.getvalue()), dtype="float64", always_2d=True)
    blocks = list(stdin_blocks(io.BytesIO(bytes(data)), block_seconds=0.1))
    assert {rate for _, rate in blocks} == {8000}
    from ser_classic.live import _as_float

    decoded = np.concatenate([_as_float(block) for block, _ in blocks])
    np.testing.assert_allclose(decoded, expected.mean(axis=1), atol=1e-6)


def test_analyser_refuses_bad_settings_and_streams(model) -> None:
    with pytest.raises(SERError, match="hop_seconds"):
        StreamingAnalyser(model, window_seconds=1.0, hop_seconds=2.0)
    analyser = StreamingAnalyser(model)
    analyser.feed(np.zeros(1600, dtype=np.float32), 16000)
    with pytest.raises(SERError, match="sample rate changed"):
        analyser.feed(np.zeros(100, dtype=np.float32), 8000)
    with pytest.raises(AudioError, match="NaN"):
        analyser.feed(np.full(100, np.nan, dtype=np.float32), 16000)
    analyser.close()
    with pytest.raises(SERError, match="closed"):
        analyser.feed(np.zeros(100, dtype=np.float32), 16000)


def test_listen_reports_a_missing_file_and_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["listen", "--input", str(tmp_path / "absent.wav")])
    assert missing.exit_code == 2 and "absent.wav: no such file" in missing.stderr and missing.stdout == ""
    bad = runner.invoke(app, ["listen", "--input", str(tmp_path / "absent.wav"), "--window", "1", "--hop", "2"])
    assert bad.exit_code == 2
    table = runner.invoke(app, ["listen", "--output", str(tmp_path / "rows.csv"), "--format", "table"])
    assert table.exit_code == 2 and "table is for a terminal" in table.stderr


# --------------------------------------------------------------------------- the microphone, at the edge
#: A stand-in for the sounddevice module, chosen by $FAKE_SOUNDDEVICE: ``no-portaudio`` (its
#: import fails as sounddevice's does without the PortAudio library), ``no-device`` (PortAudio
#: finds no input), ``ok`` (one 48 kHz microphone playing $FAKE_SOUNDDEVICE_AUDIO in a loop, ten
#: times faster than real time) and ``lost`` (the same, unplugged after 3.5 s).
FAKE_SOUNDDEVICE = '''
import os, threading, time
import numpy as np
import soundfile

MODE = os.environ["FAKE_SOUNDDEVICE"]
if MODE == "no-portaudio":
    raise OSError("PortAudio library not found")


class PortAudioError(Exception):
    pass


class default:
    device = (-1 if MODE == "no-device" else 0, -1)


_DEVICES = [] if MODE == "no-device" else [
    {"index": 0, "name": "Fake USB microphone", "max_input_channels": 1, "default_samplerate": 48000.0}
]


def query_devices(device=None, kind=None):
    if device is None and kind is None:
        return list(_DEVICES)
    wanted = default.device[0] if device is None else device
    for found in _DEVICES:
        if found["index"] == wanted or (isinstance(wanted, str) and wanted in found["name"]):
            return found
    raise PortAudioError(f"Error querying device {wanted}")


class InputStream:
    def __init__(self, device, channels, samplerate, dtype, blocksize, callback):
        self.signal = soundfile.read(os.environ["FAKE_SOUNDDEVICE_AUDIO"], dtype="float32")[0]
        self.blocksize, self.callback, self.rate = blocksize, callback, samplerate
        self.active = False

    def start(self):
        self.active = True
        threading.Thread(target=self._deliver, daemon=True).start()

    def _deliver(self):
        delivered = 0
        while self.active:
            if MODE == "lost" and delivered >= 3.5 * self.rate:
                self.active = False
                return
            start = delivered % (self.signal.size - self.blocksize)
            self.callback(self.signal[start : start + self.blocksize].reshape(-1, 1), self.blocksize, None, None)
            delivered += self.blocksize
            time.sleep(self.blocksize / self.rate / 10)

    def close(self, ignore_errors=True):
        self.active = False
'''


@pytest.fixture()
def fake_sounddevice(tmp_path: Path, recording: Path, monkeypatch: pytest.MonkeyPatch):
    """Choose the stand-in's behaviour: ``fake_sounddevice("lost")``."""
    folder = tmp_path / "fake-sounddevice"
    folder.mkdir()
    (folder / "sounddevice.py").write_text(FAKE_SOUNDDEVICE)
    excerpt = tmp_path / "microphone.wav"
    soundfile.write(excerpt, soundfile.read(recording, dtype="float32", frames=12 * RATE)[0], RATE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setenv("FAKE_SOUNDDEVICE_AUDIO", str(excerpt))

    def choose(mode: str) -> None:
        monkeypatch.setenv("FAKE_SOUNDDEVICE", mode)

    yield choose
    sys.modules.pop("sounddevice", None)


def test_without_sounddevice_the_microphone_asks_for_the_live_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # as where it is not installed: its import fails
    for arguments in (["listen"], ["listen", "--list-devices"]):
        result = CliRunner().invoke(app, arguments)
        assert result.exit_code == 2
        assert "pip install 'ser-classic[live]'" in result.stderr and "Traceback" not in result.output
        assert result.stdout == ""


def test_without_portaudio_the_microphone_names_the_library_to_install(fake_sounddevice) -> None:
    fake_sounddevice("no-portaudio")
    result = CliRunner().invoke(app, ["listen"])
    assert result.exit_code == 2
    assert "PortAudio library" in result.stderr and "libportaudio2" in result.stderr
    assert result.stdout == "" and result.stderr.count("\n") == 1


def test_without_a_microphone_listen_says_so_and_writes_nothing(fake_sounddevice, tmp_path: Path) -> None:
    fake_sounddevice("no-device")
    output = tmp_path / "rows.csv"
    result = CliRunner().invoke(app, ["listen", "--output", str(output)])
    assert result.exit_code == 2 and "no default microphone" in result.stderr and "--list-devices" in result.stderr
    assert not output.exists() and result.stdout == ""
    listing = CliRunner().invoke(app, ["listen", "--list-devices"])
    assert listing.exit_code == 2 and "no microphone found" in listing.stderr
    named = CliRunner().invoke(app, ["listen", "--device", "Studio"])
    assert named.exit_code == 2 and "no microphone 'Studio'" in named.stderr


def test_a_microphone_streams_rows_until_the_duration(fake_sounddevice, tmp_path: Path) -> None:
    fake_sounddevice("ok")
    listing = CliRunner().invoke(app, ["listen", "--list-devices"])
    assert listing.exit_code == 0 and "Fake USB microphone" in listing.stdout and "48000 Hz" in listing.stdout
    output = tmp_path / "rows.jsonl"
    result = CliRunner().invoke(app, ["listen", "--device", "USB", "--duration", "4", "--output", str(output)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == 4 and rows[-1]["end"] <= 4.0 and any(row["speech"] for row in rows)


def test_a_microphone_lost_mid_stream_keeps_the_rows_so_far_and_exits_2(fake_sounddevice, tmp_path: Path) -> None:
    fake_sounddevice("lost")
    output = tmp_path / "rows.csv"
    result = CliRunner().invoke(app, ["listen", "--output", str(output), "--format", "csv"])
    assert result.exit_code == 2
    assert "stopped delivering audio" in result.stderr and "Traceback" not in result.output
    rows = pd.read_csv(output)
    assert len(rows) == 4 and rows["end"].iloc[-1] == pytest.approx(3.5, abs=0.01)  # three hops and the half one
    assert "4 row(s) written before the error" in result.stderr


# --------------------------------------------------------------------------- real time and signals
def _follow(process: subprocess.Popen) -> tuple[list[tuple[float, str]], list[tuple[float, str]], float]:
    """Read a process's stdout and stderr lines as they come, each with its arrival time, and
    the time it ended."""
    lines: dict[str, list[tuple[float, str]]] = {"out": [], "err": []}

    def read(stream, into) -> None:
        for line in iter(stream.readline, b""):
            into.append((time.monotonic(), line.decode()))

    readers = [threading.Thread(target=read, args=(process.stdout, lines["out"])), threading.Thread(target=read, args=(process.stderr, lines["err"]))]
    for reader in readers:
        reader.start()
    process.wait(timeout=300)
    ended = time.monotonic()
    for reader in readers:
        reader.join()
    return lines["out"], lines["err"], ended


def _start(*arguments: object) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([*SER, *map(str, arguments)], cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow  # 20 s of audio at its own pace
def test_realtime_rows_stream_out_on_time_and_the_run_ends_with_the_audio(recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    clip, _ = _excerpt(recording, tmp_path, 20.0)
    out, err, ended = _follow(_start("listen", "--input", clip, "--realtime", "--format", "csv"))
    assert out[0][1].startswith("start,end,speech")
    rows = out[1:]
    assert len(rows) == 20
    started = next(moment for moment, line in err if "listening to" in line)
    first = rows[0][0]
    late = [moment - (first + index * 1.0) for index, (moment, _) in enumerate(rows)]
    with capsys.disabled():
        print(f"\n[live realtime] latest row {max(late):+.3f} s after its due time (from the first row); "
              f"first row {first - started:.3f} s after the start, run ended {ended - started - 20.0:+.3f} s after the audio")
    assert max(late) <= 0.5
    assert ended - started <= 20.0 + 2.5


@pytest.mark.slow  # a real process, stopped mid-stream
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_ends_listening_with_complete_output_and_exit_0(recording: Path, tmp_path: Path, stop: int) -> None:
    output = tmp_path / "rows.csv"
    process = _start("listen", "--input", recording, "--realtime", "--output", output)
    deadline = time.monotonic() + 120
    while (not output.exists() or output.read_text().count("\n") < 4) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(stop)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()
    assert f"stopped by {signal.Signals(stop).name}" in err.decode() and "Traceback" not in err.decode()
    text = output.read_text()
    assert text.endswith("\n")
    rows = pd.read_csv(output)
    assert 3 <= len(rows) <= 20 and list(rows.columns) == timeline_columns(load_model().classes)
    assert rows["end"].is_monotonic_increasing


def test_listen_stops_at_a_set_stop_event_between_blocks(recording: Path, model) -> None:
    stop = threading.Event()
    rows = []
    for row in listen(file_blocks(recording, block_seconds=0.25), model, stop=stop):
        rows.append(row)
        if len(rows) == 3:
            stop.set()
    assert 3 <= len(rows) <= 5 and rows[-1]["end"] <= 4.25


# --------------------------------------------------------------------------- the demo's Live tab, its handler
def test_the_live_tab_handler_keeps_a_session_and_never_raises(recording: Path, tmp_path: Path) -> None:
    from ser_classic.demo import Limits, analyze_session, live_step

    signal_, rate = soundfile.read(recording, dtype="int16", frames=9 * RATE)
    session = None
    for chunk in np.array_split(signal_, 18):  # what the browser sends every half second
        headline, strip, session = live_step((rate, chunk), session, None)
    assert session is not None and len(session.rows) >= 8  # the 9th is due when the resampler's last samples are out
    emotions = {row["emotion"] for row in session.rows}
    assert NON_SPEECH in emotions and len(emotions) >= 2
    assert strip.count('class="live-row"') == len(session.rows) and all(f'data-emotion="{emotion}"' in strip for emotion in emotions)
    assert headline.startswith("## ") and "listening" in headline
    whole = analyze_session(session, limits=Limits(max_seconds=60))
    assert whole.error == "" and whole.result["file_info"]["duration_seconds"] == pytest.approx(9.0, abs=0.01)
    assert session.closed and len(session.rows) == 9  # analysing the session ends it
    broken, _, kept = live_step((rate, signal_[:4800]), None, "no-such-model")
    assert "Error" in broken and "unknown model" in broken and kept is None
    nothing = analyze_session(None)
    assert "no audio yet" in nothing.error
