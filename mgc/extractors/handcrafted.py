"""A handcrafted baseline: MFCC and log-mel statistics, no weights to download.

It is the floor every learned embedding must beat, and the one extractor that runs
anywhere without a network, which is why the default pipeline always includes it.
"""

from __future__ import annotations

from typing import Any

import librosa
import numpy as np

from mgc.audio import MAX_RATE_HZ, MIN_RATE_HZ
from mgc.config import invalid
from mgc.extractors.base import Extractor

MEL_BANDS = 64
"""The log-mel the MFCCs are taken from (librosa's usual set-up): at most 64 coefficients."""


class MfccExtractor(Extractor):
    """Mean and standard deviation over time of MFCCs, their deltas and a coarse log-mel.

    MFCCs come from a 64-band log-mel (librosa's usual set-up); the coarse log-mel adds the
    spectral envelope directly. With the defaults: 20 MFCC + 20 delta + 32 log-mel bands, each
    summarised by mean and std = 144 dimensions.
    """

    name = "mfcc"

    def __init__(
        self,
        weights: str = "none",
        sample_rate: int = 22050,
        n_mfcc: int = 20,
        n_mels: int = 32,
        n_fft: int = 2048,
        hop_length: int = 512,
    ) -> None:
        if weights != "none":
            raise invalid("weights", weights, "the MFCC baseline has no weights (nothing "
                          "pretrained, nothing random); use 'none'")
        for key, value, low, high in (
            ("sample_rate", sample_rate, MIN_RATE_HZ, MAX_RATE_HZ),
            ("n_mfcc", n_mfcc, 1, MEL_BANDS),
            ("n_mels", n_mels, 1, 512),
            ("n_fft", n_fft, 16, 1 << 16),
            ("hop_length", hop_length, 1, n_fft),
        ):
            if not low <= int(value) <= high:
                raise invalid(key, value, f"must be an integer from {low} to {high}")
        self.sample_rate = int(sample_rate)
        self.n_mfcc = int(n_mfcc)
        self.n_mels = int(n_mels)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.dim = 2 * (2 * self.n_mfcc + self.n_mels)

    def embed_batch(self, waveforms: np.ndarray) -> np.ndarray:
        power = np.abs(librosa.stft(waveforms, n_fft=self.n_fft, hop_length=self.hop_length)) ** 2
        log_mel_64 = librosa.power_to_db(
            librosa.feature.melspectrogram(S=power, sr=self.sample_rate, n_mels=MEL_BANDS),
            top_db=None,
        )
        mfcc = librosa.feature.mfcc(S=log_mel_64, n_mfcc=self.n_mfcc)
        frame_count = mfcc.shape[-1]
        delta_width = min(9, frame_count if frame_count % 2 else frame_count - 1)
        delta = (
            librosa.feature.delta(mfcc, width=delta_width)
            if delta_width >= 3
            else np.zeros_like(mfcc)
        )
        coarse_log_mel = librosa.power_to_db(
            librosa.feature.melspectrogram(S=power, sr=self.sample_rate, n_mels=self.n_mels),
            top_db=None,
        )
        frames = np.concatenate([mfcc, delta, coarse_log_mel], axis=1)
        features = np.concatenate([frames.mean(axis=-1), frames.std(axis=-1)], axis=1)
        return features.astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "weights": "none",
            "n_mfcc": self.n_mfcc,
            "n_mels": self.n_mels,
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
        }
