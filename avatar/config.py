"""Configuration: dataclasses of plain values, named recipes in YAML, overrides from the command line.

A config is an `AvatarConfig` made of sections (`decode`, `track`, ...). Each field has a docstring under
it; the command line turns every field into a flag (`--decode.size 256`) with that docstring as its help.
A recipe (`recipes/NAME.yaml`, or any YAML path) holds plain values for some fields; values not given
keep their defaults. The defaults are the default recipe, `gaussian`: each default is written once, here.
A run saves the resolved config as JSON with `SCHEMA_VERSION`.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
import textwrap
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from avatar.config_values import coerce_value, parse_text
from avatar.errors import AvatarError

SCHEMA_VERSION = 2
DEFAULT_RECIPE = "gaussian"
PREPROCESS_SECTIONS = ("preprocess", "decode", "track", "pose", "segment", "audio", "report")
TRAIN_SECTIONS = ("model", "train")


@dataclass
class DecodeConfig:
    fps: int = 25
    """Frame rate of the processed video; every input is resampled to it."""
    size: int = 512
    """Side in pixels of the square processed frames; smaller input is not upscaled."""
    jpeg_quality: int = 95
    """JPEG quality of the stored frames."""
    min_duration_s: float = 3.0
    """Shortest video accepted, in seconds."""
    crop_face_fraction: float = 0.42
    """Height of the face (brow to chin) as a fraction of the square crop, for non-square input."""
    test_fraction: float = 0.1
    """Fraction of frames at the end of the video held out for evaluation."""
    min_test_s: float = 5.0
    """Hold out at least this many seconds when that leaves at least 75 % of the video for training."""


@dataclass
class TrackConfig:
    model_path: str = ""
    """Own MediaPipe face_landmarker.task bundle; empty uses AVATAR_FACE_LANDMARKER or the model cache."""
    max_gap_s: float = 0.5
    """Gaps in tracking up to this long are interpolated (and flagged); longer ones are marked invalid."""
    min_tracked_fraction: float = 0.5
    """Refuse the video when the face is found in fewer frames than this."""


@dataclass
class PoseConfig:
    focal_px: float = 0.0
    """Focal length in pixels of the processed frames; 0 solves it from the landmarks."""
    fit_template: bool = True
    """Fit the canonical head template to this person's face (otherwise use it as it is)."""
    smoothness: float = 6.0
    """Weight of the temporal smoothness prior on head rotation and translation (0 disables it)."""
    robust_scale_px: float = 1.5
    """Reprojection residual (pixels) above which the loss grows linearly instead of quadratically."""
    iterations: int = 30
    """Levenberg-Marquardt iterations of the joint pose refinement (it stops earlier once converged)."""


@dataclass
class SegmentConfig:
    model_path: str = ""
    """Own selfie_segmentation.tflite; empty uses AVATAR_SELFIE_SEGMENTER or the model cache."""
    threshold: float = 0.5
    """Person-mask confidence above which a pixel belongs to the person."""
    background_samples: int = 64
    """Frames sampled across the video to build the static background plate."""


@dataclass
class AudioConfig:
    mel_bins: int = 80
    """Number of log-mel bands."""
    pitch_min_hz: float = 60.0
    """Lowest pitch searched."""
    pitch_max_hz: float = 500.0
    """Highest pitch searched."""
    chunk_s: float = 8.0
    """Length of the pieces the phoneme recogniser sees at a time (bounds its memory and its cost)."""


@dataclass
class ReportConfig:
    preview: bool = True
    """Write preview.mp4 with landmarks, head-pose axes and masks drawn over the video."""


@dataclass
class ComputeConfig:
    device: typing.Literal["auto", "cpu", "cuda"] = "auto"
    """Where tensors live and ops run: auto (a CUDA GPU when torch sees one, else the CPU), cpu or cuda."""


@dataclass
class ModelConfig:
    kind: str = "gaussian"
    """Which avatar model: gaussian (3D Gaussian splats) or nerf (neural fields, ray-marched). Saved with the model;
    loading dispatches on it."""
    head_gaussians: int = 30000
    """Head Gaussians at the start (on the face template, a hair/skull shell, inside mouth and eyes)."""
    torso_gaussians: int = 10000
    """Torso Gaussians at the start (on the pixels labelled torso)."""
    max_gaussians: int = 50000
    """Densification stops adding Gaussians beyond this many in all."""
    expression_components: int = 12
    """Expression coefficients (PCA of landmark offsets) added to the 52 blendshapes in the motion code."""
    hash_levels: int = 12
    """Resolution levels of the hash-grid triplane of the expression field."""
    hash_features: int = 2
    """Features per level and plane."""
    hash_log2_table: int = 15
    """log2 of the rows of each (plane, level) hash table."""
    hash_base_resolution: int = 8
    """Cells per side of the coarsest level."""
    hash_growth: float = 1.4
    """Resolution ratio between levels."""
    mlp_width: int = 64
    """Hidden width of the expression field's MLP (nerf: of the head and torso fields)."""
    nerf_grid: int = 64
    """Cells per side of the occupancy grids of a nerf avatar's head and torso boxes."""
    nerf_step_cm: float = 0.3
    """Distance between samples along a ray of a nerf avatar, in centimetres."""

    def hash_spec(self):
        """The expression field's hash-grid shape (an `avatar.ops.HashTriplaneSpec`) from the fields above."""
        from avatar.ops import HashTriplaneSpec

        return HashTriplaneSpec(levels=self.hash_levels, features_per_level=self.hash_features,
                                log2_table_size=self.hash_log2_table, base_resolution=self.hash_base_resolution,
                                growth_factor=self.hash_growth)


@dataclass
class TrainConfig:
    resolution: int = 0
    """Side in pixels of the frames trained on; 0 uses the processed size."""
    patch: int = 0
    """Side in pixels of the square patch each step renders; 0: the model kind's choice (gaussian: the whole frame,
    nerf: 64)."""
    patch_mouth: float = 0.3
    """Patch training: share of the patches centred on the lips; `patch_eyes` more on an eye; the rest on a random
    pixel of the person (one in ten of all patches anywhere in the frame). nerf-preview, clip 02, 4000 steps: 0.3 and
    0.1 score 29.03 dB on every twelfth held-out frame against 28.29 for 0.5 and 0.17 (torso +0.85 dB, the band
    around the person +0.75, hair +0.6, face +0.36, mouth -0.12)."""
    patch_eyes: float = 0.1
    """Patch training: share of the patches centred on an eye (see `patch_mouth`)."""
    iterations: int = 10000
    """Optimisation steps in all."""
    stages: tuple[float, ...] = (0.08, 0.3, 0.15, 0.47)
    """Fractions of the iterations spent in the model's training stages, one per stage (gaussian: head warm-up,
    deformation, torso, joint)."""
    lr_means: float = 0.004
    """Learning rate of Gaussian centres, in centimetres per step (decays tenfold over training)."""
    lr_scales: float = 0.005
    """Learning rate of log-scales."""
    lr_quats: float = 0.001
    """Learning rate of rotations."""
    lr_opacity: float = 0.05
    """Learning rate of opacity logits."""
    lr_colors: float = 0.02
    """Learning rate of colour logits."""
    lr_field: float = 0.002
    """Learning rate of the expression field's hash tables and MLP, and of the torso field."""
    ssim_weight: float = 0.2
    """Weight of D-SSIM beside L1 in the photometric loss."""
    mouth_weight: float = 3.0
    """Extra weight of the L1 loss inside the box around the lips."""
    eye_weight: float = 1.0
    """Extra weight of the L1 loss inside the boxes around the eyes."""
    mask_weight: float = 0.1
    """Weight of the losses between rendered coverage and the person / head masks."""
    offset_weight: float = 0.01
    """Weight of the penalty on expression offsets of the head Gaussians (squared centimetres)."""
    distortion_weight: float = 0.0
    """nerf: weight of the distortion loss (per centimetre) that gathers each ray's light into one thin surface
    instead of a fog (fewer samples per ray before the light runs out). Off by default; nerf-preview uses 0.01 with
    64-pixel patches instead of 48 (see recipes/nerf-preview.yaml). At equal patches and 4000 steps on clip 04,
    0.01 renders 3.2 times faster and fits in half the time, but scores 0.85 dB lower on the held-out frames."""
    learn_background: bool = True
    """Refine the background plate from the training frames' pixels that show background the avatar does not
    cover (saved with the model; see avatar/model/plate.py)."""
    densify_every: int = 200
    """Steps between densification and pruning passes."""
    densify_until: float = 0.75
    """Fraction of the iterations after which the set of Gaussians stays fixed."""
    densify_grad: float = 0.0003
    """Mean screen-space gradient of a Gaussian's centre above which it is cloned or split."""
    prune_weight: float = 1.5
    """When densification ends, Gaussians that add less than this many pixels' worth of colour (at 512 x 512) to
    every one of 64 training frames are removed: faster renders, nearly the same images (0: keep them)."""
    motion_noise: float = 0.2
    """Noise added to each training step's motion code: a normal draw per coefficient with this fraction of the
    coefficient's spread over the training frames as its standard deviation. The field then cannot lean on the
    small, noisy coefficients to memorise single frames, and held-out expressions render as well as seen ones."""
    refine_poses: bool = True
    """Learn a small correction of every training frame's head pose in the last stage."""
    learn_colour: bool = True
    """Learn a per-frame colour correction (exposure, white balance) of training frames in the last stage; renders
    and eval never use it."""
    adapter_steps: int = 400
    """Training steps of the personal audio-to-motion adapter (fitted after the avatar)."""
    checkpoint_minutes: float = 5.0
    """Minutes between checkpoints (and on Ctrl-C)."""
    log_every: int = 100
    """Steps between scalar logs to tensorboard."""
    seed: int = 0
    """Random seed of initialisation and frame order."""


@dataclass
class PreprocessConfig:
    workers: int = 2
    """Stages that do not depend on each other run at the same time on this many threads."""


@dataclass
class AvatarConfig:
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# ----------------------------------------------------------------------------------------------
# Field metadata


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass, by field name."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def leaf_fields(cfg_cls: type = AvatarConfig) -> list[tuple[str, str, Any, Any, str]]:
    """(section, name, type, default, doc) of every field of every section."""
    out = []
    for section in dataclasses.fields(cfg_cls):
        section_cls = _field_types(cfg_cls)[section.name]
        docs = field_docs(section_cls)
        defaults = section_cls()
        for f in dataclasses.fields(section_cls):
            out.append((section.name, f.name, _field_types(section_cls)[f.name], getattr(defaults, f.name), docs.get(f.name, "")))
    return out


# ----------------------------------------------------------------------------------------------
# Building a config


def apply_values(cfg: AvatarConfig, values: dict, source: str) -> AvatarConfig:
    """Set the fields named in a nested {section: {field: value}} mapping."""
    if not isinstance(values, dict):
        raise AvatarError(f"{source}: expected a mapping of sections, got {type(values).__name__}")
    sections = {f.name for f in dataclasses.fields(cfg)}
    for section, entries in values.items():
        if section not in sections:
            raise AvatarError(f"{source}: unknown section {section!r}; known sections: {', '.join(sorted(sections))}")
        target = getattr(cfg, section)
        if not isinstance(entries, dict):
            raise AvatarError(f"{source}: section {section!r} must be a mapping of fields")
        types = _field_types(type(target))
        for name, value in entries.items():
            if name not in types:
                raise AvatarError(
                    f"{source}: unknown setting {section}.{name}; known: {', '.join(sorted(types))}"
                )
            setattr(target, name, coerce_value(value, types[name], f"{section}.{name}", source))
    return cfg


def recipe_path(name: str) -> Path:
    """A recipe by name (`recipes/NAME.yaml`) or by path to a YAML file."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.is_file():
            raise AvatarError(f"recipe file {name} does not exist")
        return candidate
    path = Path(str(resources.files("avatar.recipes").joinpath(f"{name}.yaml")))
    if not path.is_file():
        raise AvatarError(f"unknown recipe {name!r}; available: {', '.join(available_recipes())}")
    return path


def available_recipes() -> list[str]:
    folder = resources.files("avatar.recipes")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_config(recipe: str | None = None, overrides: dict[str, str] | None = None) -> AvatarConfig:
    """Defaults, then the recipe's values (no recipe: the default recipe), then command-line overrides
    {"section.field": "text"}."""
    import yaml

    cfg = AvatarConfig()
    path = recipe_path(recipe or DEFAULT_RECIPE)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise AvatarError(f"recipe {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    apply_values(cfg, values, f"recipe {path.name}")
    for key, text in (overrides or {}).items():
        section, _, name = key.partition(".")
        target = getattr(cfg, section, None)
        types = _field_types(type(target)) if target is not None else {}
        if name not in types:
            raise AvatarError(f"unknown setting --{key}; `avatar fit --help` lists every setting")
        setattr(target, name, parse_text(text, types[name], key))
    return cfg


def config_to_dict(cfg: AvatarConfig) -> dict:
    return dataclasses.asdict(cfg)


def config_from_dict(data: dict, source: str) -> AvatarConfig:
    return apply_values(AvatarConfig(), data, source)


def save_config(cfg: AvatarConfig, path: Path, recipe: str | None, **extra) -> None:
    """Write the resolved config as JSON with its schema version (and `extra` plain values beside it)."""
    from avatar.io_utils import atomic_write_text

    payload = {"schema_version": SCHEMA_VERSION, "recipe": recipe, **extra, "config": config_to_dict(cfg)}
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def load_saved_config(path: Path, remedy: str = "re-run the command that wrote it") -> tuple[AvatarConfig, dict]:
    """(config, the whole saved payload) of a file written by `save_config`, schema-checked."""
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AvatarError(f"cannot read {path} ({exc}); {remedy}") from None
    if not isinstance(payload, dict) or payload.get("schema_version") != SCHEMA_VERSION:
        version = payload.get("schema_version") if isinstance(payload, dict) else None
        raise AvatarError(f"{path} was written by another version of avatar (config schema {version}, this one reads "
                          f"{SCHEMA_VERSION}); {remedy}")
    return config_from_dict(payload.get("config", {}), str(path)), payload
