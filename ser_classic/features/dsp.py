"""The spectral and pitch primitives of the extractor, in NumPy and SciPy alone.

Each function computes what the librosa 0.11 function it is named after computes, operation
for operation (``tests/test_dsp.py`` compares them on real clips). librosa's own versions load
numba and LLVM: about 140 MB resident and 0.8 s of CPU in every process that extracts features (a live
listener, each pool worker) and, on a first run, ~15 s compiling kernels. librosa remains a
dependency for what runs rarely: the speed copies of training data.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = [
    "amplitude_to_db",
    "chroma_filters",
    "delta",
    "frame",
    "mel_filters",
    "mel_frequencies",
    "mfcc",
    "normalize",
    "power_to_db",
    "rms_from_magnitude",
    "rms_from_signal",
    "spectral_bandwidth",
    "spectral_centroid",
    "spectral_contrast",
    "spectral_flatness",
    "spectral_rolloff",
    "stft",
    "tonnetz",
    "yin",
    "zero_crossing_rate",
]


def frame(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Frames of a 1-D ``y`` as the columns of a read-only view, ``(frame_length, n_frames)``
    (``librosa.util.frame``)."""
    return np.lib.stride_tricks.sliding_window_view(y, frame_length)[::hop_length].T


@functools.lru_cache(maxsize=4)
def _hann(n_fft: int) -> np.ndarray:
    import scipy.signal

    window = scipy.signal.get_window("hann", n_fft, fftbins=True)
    window.flags.writeable = False
    return window


def stft(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """Complex STFT, periodic Hann window, frames centred on multiples of ``hop_length`` of the
    zero-padded signal: ``(1 + n_fft // 2, n_frames)``, complex64 for float32 input (``librosa.stft``)."""
    import scipy.fft

    frames = frame(np.pad(y, n_fft // 2), n_fft, hop_length)
    # column-major, as librosa's: reductions over frequency then add in the same order
    matrix = np.zeros((1 + n_fft // 2, frames.shape[-1]), dtype=np.complex64 if y.dtype == np.float32 else np.complex128, order="F")
    matrix[:] = scipy.fft.rfft(_hann(n_fft)[:, np.newaxis] * frames, axis=-2)
    return matrix


def rms_from_magnitude(magnitude: np.ndarray, frame_length: int) -> np.ndarray:
    """RMS of each frame from its magnitude spectrum: ``(1, n_frames)`` (``librosa.feature.rms(S=...)``)."""
    power = np.square(magnitude, dtype=np.float32)
    power[0] *= 0.5
    if frame_length % 2 == 0:
        power[-1] *= 0.5
    return np.sqrt(2 * np.sum(power, axis=-2, keepdims=True) / frame_length**2)


def rms_from_signal(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """RMS of centred, zero-padded frames, float32: ``(1, 1 + len(y) // hop_length)``
    (``librosa.feature.rms(y=...)``)."""
    frames = frame(np.pad(y, frame_length // 2), frame_length, hop_length)
    return np.sqrt(np.mean(np.square(frames, dtype=np.float32), axis=-2, keepdims=True))


def zero_crossing_rate(y: np.ndarray, frame_length: int, hop_length: int, threshold: float = 1e-10) -> np.ndarray:
    """Share of sign changes within centred frames (edge-padded), values within ``threshold``
    of zero counted as positive: ``(1, n_frames)`` (``librosa.feature.zero_crossing_rate``)."""
    frames = frame(np.pad(y, frame_length // 2, mode="edge"), frame_length, hop_length)
    negative = frames < -y.dtype.type(threshold)
    crossings = np.zeros(frames.shape, dtype=bool)
    crossings[1:] = negative[1:] != negative[:-1]
    return np.mean(crossings, axis=-2, keepdims=True)


def normalize(values: np.ndarray, norm: float, axis: int) -> np.ndarray:
    """``values`` divided by their ``norm`` (1, 2 or ``np.inf``) along ``axis``; slices whose
    norm is below the dtype's smallest normal number are left as they are (``librosa.util.normalize``)."""
    magnitude = np.abs(values).astype(float)
    if norm == np.inf:
        length = np.max(magnitude, axis=axis, keepdims=True)
    else:
        length = np.sum(magnitude**norm, axis=axis, keepdims=True) ** (1.0 / norm)
    length[length < np.finfo(values.dtype).tiny] = 1.0
    normalized = np.empty_like(values)
    normalized[:] = values / length
    return normalized


def _frequencies(sample_rate: float, n_bins: int) -> np.ndarray:
    return np.fft.rfftfreq(n=2 * (n_bins - 1), d=1.0 / sample_rate)


def spectral_centroid(magnitude: np.ndarray, sample_rate: float) -> np.ndarray:
    """Centre of mass of each frame's spectrum (Hz): ``(1, n_frames)`` (``librosa.feature.spectral_centroid``)."""
    frequencies = _frequencies(sample_rate, magnitude.shape[-2])[:, np.newaxis]
    return np.sum(frequencies * normalize(magnitude, norm=1, axis=-2), axis=-2, keepdims=True)


def spectral_bandwidth(magnitude: np.ndarray, sample_rate: float) -> np.ndarray:
    """Spread of each frame's spectrum around its centroid (Hz, second order): ``(1, n_frames)``
    (``librosa.feature.spectral_bandwidth``)."""
    centroid = spectral_centroid(magnitude, sample_rate)
    deviation = np.abs(np.subtract.outer(centroid[0], _frequencies(sample_rate, magnitude.shape[-2])).swapaxes(-2, -1))
    return np.sum(normalize(magnitude, norm=1, axis=-2) * deviation**2, axis=-2, keepdims=True) ** (1.0 / 2)


def spectral_rolloff(magnitude: np.ndarray, sample_rate: float, roll_percent: float = 0.85) -> np.ndarray:
    """Lowest frequency below which ``roll_percent`` of each frame's magnitude lies (Hz):
    ``(1, n_frames)`` (``librosa.feature.spectral_rolloff``)."""
    frequencies = _frequencies(sample_rate, magnitude.shape[-2])[:, np.newaxis]
    total = np.cumsum(magnitude, axis=-2)
    threshold = np.expand_dims(roll_percent * total[-1], axis=-2)
    return np.nanmin(np.where(total < threshold, np.nan, 1) * frequencies, axis=-2, keepdims=True)


def spectral_flatness(magnitude: np.ndarray, amin: float) -> np.ndarray:
    """Geometric over arithmetic mean of each frame's power spectrum: ``(1, n_frames)``
    (``librosa.feature.spectral_flatness``)."""
    power = np.maximum(amin, magnitude**2.0)
    return np.exp(np.mean(np.log(power), axis=-2, keepdims=True)) / np.mean(power, axis=-2, keepdims=True)


def spectral_contrast(magnitude: np.ndarray, sample_rate: float, fmin: float = 200.0, n_bands: int = 6, quantile: float = 0.02) -> np.ndarray:
    """Peak over valley (dB) in ``n_bands`` octave bands from ``fmin`` and the band below them:
    ``(n_bands + 1, n_frames)`` (``librosa.feature.spectral_contrast``)."""
    frequencies = _frequencies(sample_rate, magnitude.shape[-2])
    edges = np.zeros(n_bands + 2)
    edges[1:] = fmin * 2.0 ** np.arange(0, n_bands + 1)
    valley = np.zeros((n_bands + 1, magnitude.shape[-1]))
    peak = np.zeros_like(valley)
    for k, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        band = np.logical_and(frequencies >= low, frequencies <= high)
        indices = np.flatnonzero(band)
        if k > 0:
            band[indices[0] - 1] = True
        if k == n_bands:
            band[indices[-1] + 1 :] = True
        sub_band = magnitude[band]
        if k < n_bands:
            sub_band = sub_band[:-1]
        count = int(np.maximum(np.rint(quantile * np.sum(band)), 1))
        ordered = np.sort(sub_band, axis=-2)
        valley[k] = np.mean(ordered[:count], axis=-2)
        peak[k] = np.mean(ordered[-count:], axis=-2)
    return power_to_db(peak, top_db=80.0) - power_to_db(valley, top_db=80.0)


def power_to_db(power: np.ndarray, ref: float = 1.0, amin: float = 1e-10, top_db: float | None = None) -> np.ndarray:
    """``10 log10(power / ref)``, ``power`` and ``ref`` floored at ``amin``, and with ``top_db``
    everything floored that far below the maximum (``librosa.power_to_db``)."""
    log_spec = 10.0 * np.log10(np.maximum(amin, power))
    log_spec -= 10.0 * np.log10(np.maximum(amin, np.abs(ref)))
    if top_db is not None:
        log_spec = np.maximum(log_spec, log_spec.max() - top_db)
    return log_spec


def amplitude_to_db(amplitude: np.ndarray, ref: float, amin: float) -> np.ndarray:
    """``20 log10(amplitude / ref)``, floored at ``amin`` (``librosa.amplitude_to_db``, ``top_db=None``)."""
    magnitude = np.abs(amplitude)
    return power_to_db(np.square(magnitude, out=magnitude), ref=np.abs(ref) ** 2, amin=amin**2)


def mfcc(log_mel: np.ndarray, n_mfcc: int) -> np.ndarray:
    """The first ``n_mfcc`` coefficients of the orthonormal DCT-II over mel bands (``librosa.feature.mfcc(S=...)``)."""
    import scipy.fft

    return scipy.fft.dct(log_mel, axis=-2, type=2, norm="ortho")[:n_mfcc]


def delta(data: np.ndarray, width: int, order: int = 1) -> np.ndarray:
    """Savitzky-Golay derivative of ``order`` along the last axis (``librosa.feature.delta``)."""
    import scipy.signal

    return scipy.signal.savgol_filter(data, width, deriv=order, axis=-1, mode="interp", polyorder=order)


def tonnetz(chroma: np.ndarray) -> np.ndarray:
    """Six tonal centroids (fifths, minor and major thirds; x and y of each) of a chroma: ``(6, n_frames)``
    (``librosa.feature.tonnetz(chroma=...)``, Harte et al., 2006)."""
    dim_map = np.linspace(0, 12, num=chroma.shape[-2], endpoint=False)
    scale = np.asarray([7.0 / 6, 7.0 / 6, 3.0 / 2, 3.0 / 2, 2.0 / 3, 2.0 / 3])
    angles = np.multiply.outer(scale, dim_map)
    angles[::2] -= 0.5
    radii = np.array([1, 1, 1, 1, 0.5, 0.5])
    phi = radii[:, np.newaxis] * np.cos(np.pi * angles)
    return np.einsum("pc,...ci->...pi", phi, normalize(chroma, norm=1, axis=-2), optimize=True)


def _hz_to_mel(frequencies: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear to 1 kHz, logarithmic above."""
    frequencies = np.asanyarray(frequencies)
    mels = frequencies / (200.0 / 3)
    min_log_mel, logstep = 1000.0 / (200.0 / 3), np.log(6.4) / 27.0
    if frequencies.ndim:
        log_t = frequencies >= 1000.0
        mels[log_t] = min_log_mel + np.log(frequencies[log_t] / 1000.0) / logstep
    elif frequencies >= 1000.0:
        mels = min_log_mel + np.log(frequencies / 1000.0) / logstep
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    frequencies = (200.0 / 3) * mels
    min_log_mel, logstep = 1000.0 / (200.0 / 3), np.log(6.4) / 27.0
    log_t = mels >= min_log_mel
    frequencies[log_t] = 1000.0 * np.exp(logstep * (mels[log_t] - min_log_mel))
    return frequencies


def mel_frequencies(n_mels: int, fmax: float) -> np.ndarray:
    """``n_mels`` frequencies (Hz) evenly spaced on Slaney's mel scale from 0 Hz to ``fmax``
    (``librosa.mel_frequencies``)."""
    return _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(fmax), n_mels))


def mel_filters(sample_rate: float, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular mel filter bank from 0 Hz to Nyquist, Slaney's scale and area normalization,
    float32: ``(n_mels, 1 + n_fft // 2)`` (``librosa.filters.mel``)."""
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    mel_f = mel_frequencies(n_mels + 2, float(sample_rate) / 2)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate))
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    return weights


def chroma_filters(sample_rate: float, n_fft: int, n_chroma: int = 12) -> np.ndarray:
    """Chroma filter bank at A440, C first, Gaussian octave weighting around C5 (two octaves
    wide), float32: ``(n_chroma, 1 + n_fft // 2)`` (``librosa.filters.chroma``, ``tuning=0``)."""
    frequencies = np.linspace(0, sample_rate, n_fft, endpoint=False)[1:]
    frqbins = n_chroma * np.log2(frequencies / (440.0 / 16))
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    distance = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T
    half = np.round(float(n_chroma) / 2)
    distance = np.remainder(distance + half + 10 * n_chroma, n_chroma) - half
    weights = np.exp(-0.5 * (2 * distance / np.tile(binwidthbins, (n_chroma, 1))) ** 2)
    weights = normalize(weights, norm=2, axis=0)
    weights *= np.tile(np.exp(-0.5 * ((frqbins / n_chroma - 5.0) / 2) ** 2), (n_chroma, 1))
    weights = np.roll(weights, -3 * (n_chroma // 12), axis=0)
    return np.ascontiguousarray(weights[:, : int(1 + n_fft / 2)], dtype=np.float32)


def yin(y: np.ndarray, fmin: float, fmax: float, sample_rate: float, frame_length: int, hop_length: int, trough_threshold: float = 0.1) -> np.ndarray:
    """YIN fundamental frequency (Hz) of centred, zero-padded frames: ``(1 + len(y) // hop_length,)``
    (``librosa.yin``; de Cheveigné and Kawahara, 2002)."""
    import scipy.fft

    frames = frame(np.pad(y, frame_length // 2), frame_length, hop_length)
    min_period = int(np.floor(sample_rate / fmax))
    max_period = min(int(np.ceil(sample_rate / fmin)), frame_length - 1)

    # cumulative mean normalized difference (librosa's _cumulative_mean_normalized_difference)
    n_pad = scipy.fft.next_fast_len(2 * frames.shape[-2] - 1, real=True)
    spectrum = scipy.fft.rfft(frames, n=n_pad, axis=-2)
    acf = scipy.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=n_pad, axis=-2)[: max_period + 1]
    difference = np.square(frames)
    np.cumsum(difference, out=difference, axis=-2)
    lags = slice(1, max_period + 1)
    difference[0] = 0
    difference[lags] = 2 * (acf[0:1] - acf[lags]) - difference[: lags.stop - 1]
    numerator = difference[min_period : max_period + 1]
    cumulative_mean = np.cumsum(difference[lags], axis=-2) / np.r_[lags][:, np.newaxis]
    denominator = cumulative_mean[min_period - 1 : max_period]
    curve = numerator / (denominator + np.finfo(denominator.dtype).tiny)

    # parabolic interpolation of every lag (librosa's _parabolic_interpolation)
    previous, current, following = curve[:-2], curve[1:-1], curve[2:]
    a = following + previous - 2 * current
    b = (following - previous) / 2
    shifts = np.zeros_like(curve)
    with np.errstate(divide="ignore", invalid="ignore"):
        shifts[1:-1] = np.where(np.abs(b) >= np.abs(a), 0, -b / a)

    # troughs (librosa.util.localmin), the first lag a trough when below the second
    is_trough = np.zeros(curve.shape, dtype=bool)
    is_trough[1:-1] = (current < previous) & (current <= following)
    is_trough[-1] = curve[-1] < curve[-2]
    is_trough[0] = curve[0] < curve[1]
    below = np.logical_and(is_trough, curve < trough_threshold)
    period = np.argmax(below, axis=-2)[np.newaxis]
    global_min = np.argmin(curve, axis=-2)[np.newaxis]
    none_below = np.all(~below, axis=-2, keepdims=True)
    period[none_below] = global_min[none_below]
    period = (min_period + period + np.take_along_axis(shifts, period, axis=-2))[0]
    return sample_rate / period
