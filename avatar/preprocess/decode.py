"""Stage `decode`: any video PyAV reads -> square frames at a constant frame rate + 16 kHz mono audio.

Frames are streamed: decoded, cropped, scaled and written as JPEG one at a time (encoding overlaps
decoding on a second thread). Input of the configured size and square shape is kept as it is; other
input is cropped to a square around head and shoulders (found by the face tracker on a few sampled
frames) and scaled down, never up. Variable and non-25 frame rates are resampled by time stamps.
"""
from __future__ import annotations

import concurrent.futures
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar.audio import SAMPLE_RATE
from avatar.errors import AvatarError
from avatar.io_utils import atomic_dir, atomic_path, atomic_write_json
from avatar.preprocess.stages import StageContext


@dataclass
class SourceInfo:
    width: int  # as displayed (after rotation metadata)
    height: int
    rotation: int  # degrees of display rotation stored in the file
    duration_s: float
    frame_rate: float
    has_audio: bool


@dataclass
class CropBox:
    x: int
    y: int
    side: int
    out_size: int

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        crop = rgb[self.y: self.y + self.side, self.x: self.x + self.side]
        if self.side == self.out_size:
            return np.ascontiguousarray(crop)
        return cv2.resize(crop, (self.out_size, self.out_size), interpolation=cv2.INTER_AREA)


def open_container(path: Path):
    """Open a media file, turning every way it can fail into one line a user understands."""
    import av

    path = Path(path)
    if not path.exists():
        raise AvatarError(f"{path} does not exist; check the path")
    if path.is_dir():
        raise AvatarError(f"{path} is a folder, not a video file")
    if path.stat().st_size == 0:
        raise AvatarError(f"{path} is empty (0 bytes); re-export or re-download the video")
    try:
        return av.open(str(path))
    except av.error.FFmpegError as exc:
        raise AvatarError(
            f"{path} cannot be read as a video ({_ffmpeg_reason(exc)}); it may be truncated or not a video file"
        ) from None


def _ffmpeg_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip().lower() if text else type(exc).__name__


def _rotate(rgb: np.ndarray, rotation: int) -> np.ndarray:
    # FFmpeg's display rotation is counter-clockwise in degrees; np.rot90 turns counter-clockwise.
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def probe(path: Path, min_duration_s: float) -> SourceInfo:
    with open_container(path) as container:
        if not container.streams.video:
            raise AvatarError(f"{path} has no video stream; give a video of one person speaking")
        stream = container.streams.video[0]
        has_audio = bool(container.streams.audio)
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        width, height = stream.codec_context.width, stream.codec_context.height
        rotation = 0
        try:
            first = next(container.decode(stream))
            rotation = int(round(first.rotation or 0)) % 360
        except (StopIteration, Exception):  # an undecodable first frame is reported by the decode loop
            pass
    if rotation in (90, 270):
        width, height = height, width
    if not has_audio:
        raise AvatarError(
            f"{path} has no audio track; avatar learns lip motion from the speech in the video, so use a recording with sound"
        )
    if duration is not None and duration < min_duration_s:
        raise AvatarError(f"{path} is {duration:.1f} s long; avatar needs at least {min_duration_s:g} s of video (a few minutes is best)")
    return SourceInfo(width, height, rotation, duration or 0.0, rate, has_audio)


def sample_frames(path: Path, info: SourceInfo, count: int) -> list[np.ndarray]:
    """About `count` RGB frames spread over the video, for choosing the crop."""
    import av

    frames = []
    with open_container(path) as container:
        stream = container.streams.video[0]
        for i in range(count):
            t = info.duration_s * (i + 0.5) / count
            try:
                container.seek(int(t / stream.time_base), stream=stream, any_frame=False, backward=True)
                frame = next(container.decode(stream))
            except (av.error.FFmpegError, StopIteration):
                continue
            frames.append(_rotate(frame.to_ndarray(format="rgb24"), info.rotation))
    return frames


def _face_boxes(frames: list[np.ndarray], model: Path) -> list[list[tuple[float, float, float]]]:
    """Per frame: (centre x, centre y, brow-to-chin height) in pixels of every face found."""
    import cv2

    from avatar.preprocess.mediapipe_tasks import FaceLandmarker, opened

    boxes = []
    with opened(FaceLandmarker(model, video=False, num_faces=4)) as tracker:
        for rgb in frames:
            h, w = rgb.shape[:2]
            scale = min(1.0, 1280 / max(h, w))
            small = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else rgb
            faces = []
            for face in tracker.detect(small):
                xy = face.landmarks[:, :2] * (w, h)
                top, chin = xy[10], xy[152]
                faces.append((float(xy[:, 0].mean()), float((top[1] + chin[1]) / 2), float(np.linalg.norm(chin - top))))
            boxes.append(faces)
    return boxes


HAIR_ABOVE_FACE = 0.6  # room kept above the top of the face mesh for hair, in face heights
CHIN_MARGIN = 0.25  # room kept below the chin, in face heights


def choose_crop(info: SourceInfo, size: int, faces: list[list[tuple[float, float, float]]], face_fraction: float) -> tuple[CropBox, int]:
    """The square crop around head and shoulders, and how many faces the sampled frames showed at most.

    The face sits a little above the centre; when the frame is too narrow for the usual framing (a close
    portrait video), the crop still keeps the whole head, hair included, and the chin."""
    w, h = info.width, info.height
    most_faces = max((len(f) for f in faces), default=0)
    largest = [max(f, key=lambda face: face[2]) for f in faces if f]
    if w == h and w <= size:
        return CropBox(0, 0, w, w - (w % 2)), most_faces
    if largest:
        cx, cy, face_h = np.median(np.array(largest), axis=0)
        side = min(w, h, face_h / face_fraction)
        if w == h and side >= 0.8 * w:
            side = w
    else:  # no face in the samples: the centre square; tracking will report the missing face
        cx, cy, side, face_h = w / 2, h / 2, min(w, h), 0.0
    side = int(round(side))
    top = min(cy - 0.45 * side, cy - (0.5 + HAIR_ABOVE_FACE) * face_h)  # the hair first...
    top = max(top, cy + (0.5 + CHIN_MARGIN) * face_h - side)  # ...but never at the cost of the chin
    x = int(round(np.clip(cx - side / 2, 0, w - side)))
    y = int(round(np.clip(top, 0, h - side)))
    out = min(size, side)
    return CropBox(x, y, side, out - (out % 2)), most_faces


def holdout_split(num_frames: int, fps: int, fraction: float, min_test_s: float) -> dict[str, list[int]]:
    """The last `fraction` of the frames (at least `min_test_s` when that keeps 75 % for training)."""
    test = max(1, int(round(fraction * num_frames)))
    if min_test_s * fps <= 0.25 * num_frames:
        test = max(test, int(round(min_test_s * fps)))
    return {"train": [0, num_frames - test], "test": [num_frames - test, num_frames]}


def _iter_cfr(container, stream, fps: int, t_end: float | None):
    """Yield (output index, av.VideoFrame) at constant `fps`, repeating or dropping source frames by time stamp."""
    import av

    t0 = None
    previous = None
    index = 0
    last_time = 0.0
    try:
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            if t0 is None:
                t0 = frame.time
            t = frame.time - t0
            if previous is not None:
                while index / fps < t:
                    yield index, previous
                    index += 1
            previous, last_time = frame, t
    except av.error.FFmpegError as exc:
        raise AvatarError(
            f"{container.name} is truncated or corrupt: decoding failed at {last_time:.1f} s ({_ffmpeg_reason(exc)}); "
            "re-export or re-download the video"
        ) from None
    if previous is None:
        raise AvatarError(f"{container.name} contains no decodable video frames; re-export or re-download it")
    frame_duration = 1.0 / float(stream.average_rate or fps)
    end = last_time + frame_duration
    if t_end is not None and t_end > 0 and end < 0.9 * t_end - 0.5:
        raise AvatarError(
            f"{container.name} is truncated: its video stops at {end:.1f} s of the {t_end:.1f} s it declares; "
            "re-export or re-download the video"
        )
    while index / fps < end - 1e-6:
        yield index, previous
        index += 1


def decode_audio(path: Path, sample_rate: int, video_start: float) -> np.ndarray:
    """The first audio stream as mono float32 at `sample_rate`, aligned so t=0 is the first video frame."""
    import av

    chunks = []
    first_time = None
    with open_container(path) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        try:
            for frame in container.decode(container.streams.audio[0]):
                if first_time is None and frame.time is not None:
                    first_time = frame.time
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise AvatarError(f"{path}: the audio track is corrupt ({_ffmpeg_reason(exc)}); re-export the video") from None
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    offset = int(round(((first_time or 0.0) - video_start) * sample_rate))
    if offset > 0:
        audio = np.concatenate([np.zeros(offset, np.float32), audio])
    elif offset < 0:
        audio = audio[-offset:]
    return audio.astype(np.float32)


def _video_start(path: Path) -> float:
    with open_container(path) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.time is not None:
                return float(frame.time)
    return 0.0


def run_decode(ctx: StageContext) -> None:
    import cv2
    import soundfile

    cfg = ctx.config.decode
    folder = ctx.folder
    info = probe(ctx.source, cfg.min_duration_s)
    faces: list = []
    if not (info.width == info.height and info.width <= cfg.size):
        from avatar.model_files import model_path

        samples = sample_frames(ctx.source, info, 8)
        faces = _face_boxes(samples, model_path("face_landmarker", ctx.config.track.model_path))
    crop, most_faces = choose_crop(info, cfg.size, faces, cfg.crop_face_fraction)
    if most_faces > 1:
        ctx.log.warning("%d faces in view in %s; the avatar follows the largest one", most_faces, ctx.source.name)
    ctx.log.info("decode: %dx%d source, crop %s", info.width, info.height, crop)

    writer = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="jpeg")
    pending: list[concurrent.futures.Future] = []
    params = [cv2.IMWRITE_JPEG_QUALITY, int(cfg.jpeg_quality)]
    num_frames = 0
    with atomic_dir(folder.frames) as frames_dir, open_container(ctx.source) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        expected = int(math.ceil(info.duration_s * cfg.fps)) if info.duration_s else None
        converted_frame, converted = None, None
        for index, frame in ctx.progress(_iter_cfr(container, stream, cfg.fps, info.duration_s), expected, "decode"):
            if frame is not converted_frame:
                bgr = cv2.cvtColor(crop.apply(_rotate(frame.to_ndarray(format="rgb24"), info.rotation)), cv2.COLOR_RGB2BGR)
                converted_frame, converted = frame, bgr
            pending.append(writer.submit(cv2.imwrite, str(frames_dir / f"{index:06d}.jpg"), converted, params))
            if len(pending) > 64:
                for done in pending[:32]:
                    if not done.result():
                        raise AvatarError(f"could not write frames to {folder.frames}; check free disk space")
                del pending[:32]
            num_frames = index + 1
        for done in pending:
            if not done.result():
                raise AvatarError(f"could not write frames to {folder.frames}; check free disk space")
        writer.shutdown()
        duration = num_frames / cfg.fps
        if duration < cfg.min_duration_s:
            raise AvatarError(f"{ctx.source} is {duration:.1f} s long; avatar needs at least {cfg.min_duration_s:g} s of video (a few minutes is best)")

        audio = decode_audio(ctx.source, SAMPLE_RATE, _video_start(ctx.source))
        samples = int(round(duration * SAMPLE_RATE))
        audio = np.pad(audio[:samples], (0, max(0, samples - len(audio))))
        with atomic_path(folder.audio) as tmp:
            soundfile.write(str(tmp), audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")

    atomic_write_json(folder.manifest, {
        "fps": cfg.fps,
        "num_frames": num_frames,
        "width": crop.out_size,
        "height": crop.out_size,
        "duration_s": round(duration, 6),
        "source_sha256": ctx.source_sha256,
        "audio_sample_rate": SAMPLE_RATE,
        "split": holdout_split(num_frames, cfg.fps, cfg.test_fraction, cfg.min_test_s),
        "source": {
            "name": Path(ctx.source).name,
            "width": info.width,
            "height": info.height,
            "rotation": info.rotation,
            "frame_rate": round(info.frame_rate, 3),
            "faces_seen": most_faces,
        },
        "crop": {"x": crop.x, "y": crop.y, "side": crop.side},
    })
