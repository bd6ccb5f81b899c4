"""Lip sync of an avatar driven by speech it never heard: `python benchmarks/lipsync.py AVATAR_DIR [SPEECH...]`.

For each speech file (default: every clip in ../shared/data/speech, else two synthetic voices): render the avatar speaking it, find
the face on every rendered frame with the tracker, and report the bilabial / open-vowel contrast d' at lags
0..-6 (phoneme centres from the recogniser), the best lag, how open the mouth is in silences compared with
speech, and whether audio and video lengths match. Then a 30 s render (the clips back to back) for the
blink rate against the person's own, and the generated head motion (never still, never the same segment
twice in a row). Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"


def track(video: Path) -> tuple[np.ndarray, np.ndarray, int, float]:
    """(landmarks [T, 478, 2], eye-blink scores [T], frames, audio seconds) of a rendered video."""
    import av

    from avatar.model_files import model_path
    from avatar.preprocess.mediapipe_tasks import FaceLandmarker, opened

    landmarks, blinks = [], []
    with av.open(str(video)) as container, opened(FaceLandmarker(model_path("face_landmarker"), video=True)) as tracker:
        for i, frame in enumerate(container.decode(video=0)):
            rgb = frame.to_ndarray(format="rgb24")
            faces = tracker.detect(rgb, i * 40)
            if faces:
                landmarks.append(faces[0].landmarks[:, :2] * (rgb.shape[1], rgb.shape[0]))
                names = tracker.blendshape_names
                blinks.append(float(np.mean([faces[0].blendshapes[names.index(n)] for n in ("eyeBlinkLeft", "eyeBlinkRight")])))
            else:
                landmarks.append(np.full((478, 2), np.nan))
                blinks.append(np.nan)
    with av.open(str(video)) as container:
        audio = container.streams.audio[0]
        seconds = float(audio.duration * audio.time_base)
    return np.array(landmarks), np.array(blinks), len(landmarks), seconds


def speech_clip(folder, speech: Path, out: Path, device) -> dict:
    from avatar.audio.io import load_audio
    from avatar.eval.lipsync import lip_contrast, phoneme_centres
    from avatar.eval.metrics import mouth_opening
    from avatar.motion.prior import loudness, silence_gate
    from avatar.render.audio_render import render_audio, speech_features

    result = render_audio(folder, speech, out, device)
    landmarks, _, frames, audio_seconds = track(out)
    opening = mouth_opening(landmarks)
    opening = np.nan_to_num(opening, nan=float(np.nanmean(opening)))
    wave = load_audio(speech, 16000)
    contrast = lip_contrast(opening, 25, phoneme_centres(wave))
    gate = silence_gate(loudness(speech_features(folder, wave, frames).energy), 25)
    silent, speaking = opening[gate < 0.05], opening[gate > 0.95]
    return {
        **contrast,
        "frames": frames,
        "audio_frames": round(audio_seconds * 25, 2),
        "length_matches": abs(frames - audio_seconds * 25) <= 1,
        "opening_in_silence": round(float(silent.mean()), 4) if len(silent) else None,
        "opening_in_speech": round(float(speaking.mean()), 4) if len(speaking) else None,
        "pose_segments": result["segments"],
    }


SYNTHETIC = {
    "en-us": "Peter bought a map and a basket of apples, then he paused to read the small print by the lamp.",
    "cmn": "我们明天八点半在北门见面，不要迟到，妈妈买了苹果和面包。",
}


def synthetic_speech(folder: Path) -> list[Path]:
    """Speech clips made offline by espeak-ng, for machines without ../shared."""
    from avatar.audio.io import write_wav
    from avatar.speech_synth import synthesize

    clips = []
    for voice, text in SYNTHETIC.items():
        wave, rate = synthesize(text, voice=voice)
        clips.append(folder / f"synthetic_{voice}.wav")
        write_wav(clips[-1], wave, rate)
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("avatar", type=Path)
    parser.add_argument("speech", nargs="*", type=Path)
    parser.add_argument("--synthetic", action="store_true", help="add synthetic English and Mandarin voices")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from avatar.audio.io import load_audio, write_wav
    from avatar.device import resolve_device
    from avatar.folder import AvatarFolder
    from avatar.geometry import head_angles_deg
    from avatar.motion.driver import Driver
    from avatar.motion.nonverbal import BlinkStats

    folder = AvatarFolder(args.avatar)
    device = resolve_device(args.device)
    clips = args.speech or sorted(SPEECH.glob("*"))
    report: dict = {"avatar": str(args.avatar), "clips": {}}
    with tempfile.TemporaryDirectory(prefix="avatar-lipsync-") as tmp:
        if args.synthetic or not clips:  # synthetic voices in two languages, also when no recordings are at hand
            clips = clips + synthetic_speech(Path(tmp))
        for clip in clips:
            report["clips"][clip.name] = speech_clip(folder, clip, Path(tmp) / f"{clip.stem}.mp4", device)
        # 30 s of the clips back to back, with short pauses, for blinks and head motion.
        pieces = []
        for clip in clips:
            pieces += [load_audio(clip, 16000), np.zeros(8000, np.float32)]
        long = np.concatenate(pieces)
        long = np.tile(long, int(np.ceil(30 * 16000 / len(long))))[: 30 * 16000]
        write_wav(Path(tmp) / "long.wav", long, 16000)
        from avatar.render.audio_render import render_audio

        motion_path = Path(tmp) / "long.npz"
        result = render_audio(folder, Path(tmp) / "long.wav", Path(tmp) / "long.mp4", device, motion_out=motion_path)
        _, blink, _, _ = track(Path(tmp) / "long.mp4")
        driver = Driver.load(folder)
        measured = BlinkStats.measure(np.nan_to_num(blink) / max(np.nanpercentile(blink, 99), 1e-6), 25)
        angles = head_angles_deg(np.load(motion_path)["head_pose"])
        segments = result["segments"]
        report["thirty_seconds"] = {
            "person_blink_rate_per_min": round(driver.blinks.rate_per_min, 2),
            "rendered_blink_rate_per_min": round(measured.rate_per_min, 2),
            "head_angle_std_deg": [round(float(v), 3) for v in angles.std(0)],
            "pose_segments": segments,
            "segment_repeated_back_to_back": any(a == b for a, b in zip(segments, segments[1:])),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
