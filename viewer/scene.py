"""What the viewer shows, without the window: a trained avatar, the motion of a source (speech or idle), and
the controls applied to both. Everything here runs on the render thread; the window only reads images.

A source becomes a `Track` once (speech features, the driver's motion); the controls then edit it per frame:
mouth-motion scale and head mode re-run the driver on the stored features (cheap: the same as `avatar render
--mouth-scale/--pose`), smile and brow add the person's own expression directions (measured on their training
frames), the blink control swaps the generated blinks for none or adds one now.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import torch

from avatar.folder import AvatarFolder

BACKGROUNDS = ("plate", "colour", "checker")
HEAD_MODES = ("generated", "still", "replay")
IDLE_SECONDS = 20.0


@dataclass(frozen=True)
class Controls:
    """Everything a person can change in the window; the render thread gets a copy per frame."""

    mouth_scale: float = 1.0
    smile: float = 0.0  # in units of the person's own strong smile (95th percentile of their video)
    brow: float = 0.0  # the same, for raised brows
    auto_blink: bool = True
    head: str = "generated"
    background: str = "plate"
    colour: tuple[float, float, float] = (0.2, 0.5, 0.3)
    show_head: bool = True
    show_torso: bool = True
    yaw: float = 0.0  # degrees
    pitch: float = 0.0
    zoom: float = 1.0
    pan: tuple[float, float] = (0.0, 0.0)  # pixels
    blinks_at: tuple[int, ...] = ()  # frames where a blink was asked for ("blink now")

    def edited(self, **changes) -> "Controls":
        return replace(self, **changes)


@dataclass
class Source:
    """Speech to drive the avatar with."""

    wave: np.ndarray  # [S] 16 kHz mono: features and playback
    audio: np.ndarray  # the same sound at its own rate, for recordings (as `avatar render` keeps it)
    rate: int


@dataclass
class Track:
    """The motion of one source, frame by frame, before the per-frame edits."""

    source: Source  # what is heard (silence for the idle source)
    features: object | None  # AudioFeatures; None for the idle source
    codes: np.ndarray  # [T, D]
    poses: np.ndarray  # [T, 4, 4]
    torso: np.ndarray  # [T, 4]
    blink: np.ndarray  # [T] the generated blinks inside `codes`
    key: tuple = ()  # (mouth scale, head mode) it was driven with
    live: bool = False  # codes arrive while it plays (the microphone): never driven again
    fixed: bool = False  # motion given frame by frame (the video's own): never driven again

    @property
    def frames(self) -> int:
        return len(self.codes)


@dataclass
class Frame:
    position: float  # video frames (fractional) it shows
    pixels: np.ndarray  # [H, W, 3] float32 in [0, 1]
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per step: motion, then the model's own

    @property
    def texture(self) -> np.ndarray:
        """[H * W * 3] float32: what the window uploads (no copy: the window's texture takes floats)."""
        return self.pixels.reshape(-1)

    @cached_property
    def image(self) -> np.ndarray:
        """[H, W, 3] uint8, rounded as every writer rounds (made when first asked: showing needs only the floats)."""
        from avatar.render.frames import to_uint8

        return to_uint8(torch.from_numpy(self.pixels))


def expression_direction(codes: np.ndarray, offsets: np.ndarray, basis, signal: np.ndarray, blendshapes: np.ndarray,
                         landmarks: np.ndarray) -> np.ndarray:
    """[D] the motion-code change of the person's own `signal` [T] (a blendshape score over their frames), kept
    to one region: only the `blendshapes` (indices) and expression `landmarks` (indices into the offsets) that
    belong to it move. Least squares over the frames; scaled so 1 is their strong value (95th percentile
    above the median). codes [T, 52 + P], offsets [T, K, 3] the landmark offsets the coefficients describe."""
    from avatar.motion.code import NUM_BLENDSHAPES

    centred = signal - signal.mean()
    denominator = max(float(centred @ centred), 1e-9)
    blend = np.zeros(NUM_BLENDSHAPES)
    blend[blendshapes] = (codes[:, blendshapes] - codes[:, blendshapes].mean(0)).T @ centred / denominator
    moved = np.zeros(offsets.shape[1:])
    region = offsets[:, landmarks]
    moved[landmarks] = np.einsum("tkc,t->kc", region - region.mean(0), centred) / denominator
    coefficients = (moved.reshape(-1) @ basis.components.T) / basis.scale
    spread = np.percentile(signal, 95) - np.median(signal)
    return (np.concatenate([blend, coefficients]) * spread).astype(np.float32)


def checker(size: int, device: torch.device, cell: int = 16) -> torch.Tensor:
    """[size, size, 3] the grey checkerboard that stands for transparency."""
    ij = torch.arange(size, device=device) // cell
    board = ((ij[:, None] + ij[None, :]) % 2).float()
    return (0.55 + 0.2 * board)[..., None].expand(size, size, 3).contiguous()


def region_directions(data) -> tuple[np.ndarray, np.ndarray]:
    """[D] smile and brow-raise directions of the person of `data` (an `AvatarData`), from their training frames."""
    from avatar.face_mesh import LEFT_BROW, LOWER_FACE, RIGHT_BROW
    from avatar.motion.code import EXPRESSION_LANDMARKS, landmark_offsets

    rows = data.train_ids
    tracking = data.tracking
    codes = data.motion[torch.from_numpy(rows).to(data.device)].cpu().numpy()
    offsets = landmark_offsets(tracking["landmarks"][rows], tracking["head_pose"][rows], tracking["intrinsics"],
                               tracking["head_vertices"])
    names = [str(n) for n in tracking["blendshape_names"]]
    position = {int(k): i for i, k in enumerate(EXPRESSION_LANDMARKS)}

    def direction(score: tuple[str, ...], prefixes: tuple[str, ...], landmarks) -> np.ndarray:
        signal = codes[:, [names.index(n) for n in score]].mean(1)
        blend = [i for i, n in enumerate(names) if n.startswith(prefixes)]
        return expression_direction(codes, offsets, data.basis, signal, np.array(blend),
                                    np.array([position[k] for k in landmarks if k in position]))

    return (direction(("mouthSmileLeft", "mouthSmileRight"), ("mouth", "cheek"), LOWER_FACE),
            direction(("browInnerUp", "browOuterUpLeft", "browOuterUpRight"), ("brow",), LEFT_BROW + RIGHT_BROW))


class Scene:
    """`watch`: follow a fit in the folder (`avatar view --watch`): its newest checkpoint now, later ones
    through `use`."""

    def __init__(self, folder: AvatarFolder, device: torch.device, size: int, watch=None):
        from avatar.data.avatar_data import AvatarData
        from avatar.motion.mapping import ALL_CHANNELS

        self.folder, self.device, self.size = folder, torch.device(device), int(size)
        self.track: Track | None = None
        self.driver = None
        if watch is None:
            from avatar.model.store import load_trained
            from avatar.render.audio_render import load_driver

            trained = load_trained(folder, self.device)
            basis, first = trained.basis, None
        else:
            first = watch.load(self.device)
            basis = first.basis
        self.data = AvatarData(folder, 0, basis=basis, device=self.device)
        self.fps = self.data.fps  # as the manifest has it (the video writer wants an exact rate)
        self.camera = self.data.camera.resized(self.size, self.size)
        self.checker = checker(self.size, self.device)
        if first is None:
            self._show_model(trained.model, trained.plate_residual)
            self.driver, self.model_label = load_driver(folder, trained), "the trained avatar"
        else:
            self.use(first)
        self.pivot = self.data.rest_pose[:3, 3].clone()  # orbit around the head
        self.smile_direction, self.brow_direction = region_directions(self.data)
        self.blink_direction = self.driver.mapping.weights[ALL_CHANNELS.index("blink")].astype(np.float32)
        self.blink_shape = self.driver.blinks.shape
        self.rest_codes = self.driver.mapping.codes(self._rest_channels(1))[0]

    def _show_model(self, model, plate_residual) -> None:
        from avatar.model.plate import learned_plate, resize_image
        from avatar.render.frames import FrameRenderer

        self.plate = resize_image(learned_plate(self.data.background, plate_residual), self.size, self.size).contiguous()
        self.renderer = FrameRenderer(model, self.camera, self.plate)

    def use(self, snapshot) -> None:
        """Show a watched fit's model state (a `viewer.watch.Snapshot`). Until the fit has finished, speech drives
        the avatar without the personal adapter (the fit trains it last); the finished avatar brings it."""
        from avatar.motion.driver import Driver, fit_driver

        self._show_model(snapshot.model, snapshot.plate_residual)
        self.model_label = snapshot.label
        if snapshot.final:
            self.driver = Driver.load(self.folder)
        elif self.driver is None:
            self.driver = fit_driver(self.folder, self.data.motion.cpu().numpy(), self.data.rest_pose.cpu().numpy(), steps=0)
        if self.track is not None and self.track.features is not None:
            self.track.key = ()  # driven again, by the driver it has now

    # -- sources -----------------------------------------------------------------------------------

    def _rest_channels(self, count: int) -> np.ndarray:
        from avatar.motion.visemes import SILENCE

        return np.concatenate([np.tile(np.asarray(SILENCE, np.float32), (count, 1)), np.zeros((count, 1), np.float32)], 1)

    def set_speech(self, source: Source, controls: Controls) -> Track:
        """Drive the avatar with a speech `source` (features computed now: about a second per 10 s of speech)."""
        from avatar.audio import SAMPLE_RATE
        from avatar.render.audio_render import speech_features

        count = max(1, int(round(len(source.wave) / SAMPLE_RATE * self.fps)))
        features = speech_features(self.folder, source.wave, count)
        self.track = Track(source, features, *self._empty(count))
        return self._drive(controls)

    def set_idle(self, controls: Controls, seconds: float = IDLE_SECONDS) -> Track:
        """No speech: blinks and small head motion, mouth closed (silent audio of `seconds`, looped)."""
        from avatar.audio import SAMPLE_RATE

        count = int(round(seconds * self.fps))
        silence = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
        self.track = Track(Source(silence, silence, SAMPLE_RATE), None, *self._empty(count))
        return self._drive(controls)

    def set_video(self) -> Track:
        """The video's own motion (every frame's tracked code, head pose and torso) with its sound: what a
        watched fit is compared against. Not driven, so the mouth-motion and head-motion controls pass it by."""
        from avatar.audio import SAMPLE_RATE
        from avatar.audio.io import load_audio

        wave = load_audio(self.folder.audio, SAMPLE_RATE)
        data = self.data
        count = len(data.motion)
        self.track = Track(Source(wave, wave, SAMPLE_RATE), None, data.motion.cpu().numpy(), data.head_pose.cpu().numpy(),
                           data.torso.cpu().numpy(), np.zeros(count, np.float32), key=("video",), fixed=True)
        return self.track

    def set_live(self, controls: Controls, seconds: float = 600.0) -> Track:
        """A track the live path fills (`extend_live`): small head motion, blinks inside the codes it gets."""
        track = self.set_idle(controls.edited(head="generated"), seconds)
        track.codes, track.blink, track.live = self.rest_codes[None].copy(), np.zeros(len(track.codes), np.float32), True
        track.key = ("live-empty",)
        return track

    def extend_live(self, codes: np.ndarray) -> None:
        """Append motion codes [N, D] from the live path (called from its thread: one atomic swap)."""
        track = self.track
        if len(codes) == 0:
            return
        before = track.codes if track.key == ("live",) else track.codes[:0]  # the rest frame shown until then goes
        track.codes = np.concatenate([before, codes.astype(np.float32)])
        track.key = ("live",)

    @property
    def live_frames(self) -> int:
        """Frames of motion the live path has given (0 before the first)."""
        return len(self.track.codes) if self.track.key == ("live",) else 0

    def _empty(self, count: int):
        return (np.zeros((count, len(self.rest_codes)), np.float32), np.zeros((count, 4, 4), np.float32),
                np.zeros((count, 4), np.float32), np.zeros(count, np.float32))

    def _drive(self, controls: Controls) -> Track:
        from avatar.render.audio_render import drive, is_silent

        track = self.track
        key = (controls.mouth_scale, controls.head)
        if track.features is not None:
            driven = drive(self.driver, track.features, self.fps, controls.head, controls.mouth_scale, seed=0,
                           silent=is_silent(track.features))
            track.codes, track.poses, track.torso, track.blink = driven.codes, driven.poses, driven.torso, driven.blink
        else:
            count = track.frames
            rng = np.random.default_rng(0)
            track.blink = self.driver.blinks.generate(count, self.fps, rng)
            channels = self._rest_channels(count)
            channels[:, -1] = track.blink
            track.codes = self.driver.mapping.codes(channels)
            poses = self.driver.poses
            if controls.head == "still":
                track.poses, track.torso = poses.still(count), np.zeros((count, 4), np.float32)
            elif controls.head == "replay":
                track.poses, track.torso = poses.replay(count), poses.replay_torso(count)
            else:  # the person's quietest moments: small head motion
                track.poses, _, track.torso = poses.generate(np.zeros(count, np.float32), rng)
        track.key = key
        return track

    # -- one frame ---------------------------------------------------------------------------------

    def blink_curve(self, controls: Controls) -> np.ndarray:
        """[T] the blink channel the frames show: generated (or none), plus the blinks asked for."""
        track = self.track
        curve = track.blink.copy() if controls.auto_blink else np.zeros(track.frames, np.float32)
        shape = self.blink_shape
        for start in controls.blinks_at:
            a, b = max(0, start), min(len(curve), start + len(shape))
            curve[a:b] = np.maximum(curve[a:b], shape[a - start: b - start])
        return curve

    def inputs(self, position: float, controls: Controls) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(motion code [D], head pose [4, 4], torso signal [4]) at `position` (frames, fractional: motion is
        interpolated between frames, so the window can show more frames per second than the video had)."""
        track = self.track
        if not (track.live or track.fixed) and track.key != (controls.mouth_scale, controls.head):
            self._drive(controls)
        position = float(np.clip(position, 0, track.frames - 1))
        i = min(int(position), track.frames - 2) if track.frames > 1 else 0
        w = position - i
        j = min(i + 1, track.frames - 1)

        def at(values: np.ndarray) -> np.ndarray:  # (a live track outgrows its pre-made poses: they repeat)
            return (1 - w) * values[i % len(values)] + w * values[j % len(values)]

        shown = self.blink_curve(controls) if controls.blinks_at or not controls.auto_blink else track.blink
        code = (at(track.codes) + (at(shown) - at(track.blink)) * self.blink_direction
                + controls.smile * self.smile_direction + controls.brow * self.brow_direction)
        pose = at(track.poses)
        if w > 0:
            u, _, vt = np.linalg.svd(pose[:3, :3])  # the nearest rotation to the blend of two
            pose[:3, :3] = u @ vt
        return (torch.from_numpy(code.astype(np.float32)), torch.from_numpy(pose.astype(np.float32)),
                torch.from_numpy(at(track.torso).astype(np.float32)))

    def view(self, controls: Controls):
        """The `Camera` the controls describe: orbit and zoom around the head, pan in pixels."""
        camera = self.camera
        if controls.yaw or controls.pitch or controls.zoom != 1.0:
            camera = camera.orbit(self.pivot, controls.yaw, controls.pitch, controls.zoom)
        if controls.pan != (0.0, 0.0):
            from avatar.camera import Camera

            K = camera.intrinsics.clone()
            K[0, 2] += controls.pan[0]
            K[1, 2] += controls.pan[1]
            camera = Camera(camera.viewmat, K, camera.width, camera.height)
        return camera

    def background(self, controls: Controls) -> torch.Tensor:
        if controls.background == "checker":
            return self.checker
        if controls.background == "colour":
            return torch.tensor(controls.colour, dtype=torch.float32, device=self.device)
        return self.plate

    def render(self, position: float, controls: Controls) -> Frame:
        """Frame at `position` (in video frames, fractional) with the controls applied."""
        start = time.perf_counter()
        position = float(np.clip(position, 0, self.track.frames - 1))  # what the frame shows (live: the newest there is)
        code, pose, torso = self.inputs(position, controls)
        motion_ms = 1e3 * (time.perf_counter() - start)
        parts = frozenset(p for p, on in (("head", controls.show_head), ("torso", controls.show_torso)) if on)
        out = self.renderer.render_full(code, pose, self.view(controls), torso, self.background(controls), parts)
        pixels = out.image.clamp(0, 1).contiguous().cpu().numpy()
        return Frame(float(position), pixels, {"motion": motion_ms, **out.timings})
