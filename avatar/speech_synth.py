"""Offline speech synthesis with espeak-ng (the library and voice data ship in the `espeakng-loader` wheel).

Used to give the built-in sample a voice and to make test speech in any language espeak-ng knows.
espeak-ng keeps global state, so calls are serialised.
"""
from __future__ import annotations

import ctypes
import functools
import threading

import numpy as np

from avatar.errors import AvatarError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1
_ESPEAK_PITCH = 3
_LOCK = threading.Lock()
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


@functools.cache
def _engine() -> tuple[ctypes.CDLL, int]:
    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
    if rate <= 0:
        raise AvatarError("espeak-ng could not start; reinstall the espeakng-loader package")
    return lib, rate


def synthesize(text: str, voice: str = "en-us", words_per_minute: int = 160, pitch: int = 50) -> tuple[np.ndarray, int]:
    """(mono float32 samples, sample rate) of `text` spoken by espeak-ng's `voice`."""
    with _LOCK:
        lib, rate = _engine()
        chunks: list[np.ndarray] = []

        def collect(samples, count, events):
            if count > 0:
                chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).astype(np.float32) / 32768.0)
            return 0

        callback = _CALLBACK(collect)  # must stay referenced while synthesising
        lib.espeak_SetSynthCallback(callback)
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise AvatarError(f"espeak-ng has no voice {voice!r}; try a language code such as en-us, de, fr or cmn")
        lib.espeak_SetParameter(_ESPEAK_RATE, int(words_per_minute), 0)
        lib.espeak_SetParameter(_ESPEAK_PITCH, int(pitch), 0)
        data = text.encode("utf-8") + b"\0"
        if lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None) != 0:
            raise AvatarError("espeak-ng failed to synthesise the text")
        lib.espeak_Synchronize()
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return audio, rate
