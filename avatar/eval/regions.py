"""Where the error is: PSNR and SSIM per region of the held-out frames, and a per-pixel error map.

Regions come from each frame's own preprocessing labels and tracked landmarks (nothing of the rendered
frame decides where a region is):
- `silhouette`: a band of +-4 pixels (at 512; scaled with the frame) around the edge of the person mask;
- `face`: inside the face oval, without the mouth and the band;
- `mouth`: the outer lip contour grown by a quarter of the mouth width (lips, teeth, mouth interior);
- `hair`: the rest of the head label (hair, ears, head outline), without the band;
- `torso`: the torso label (neck, shoulders, clothes), without the band;
- `background`: everything else, without the band.
PSNR of a region pools the squared error of all its pixels over all frames (one MSE, then dB); SSIM is the
mean of the SSIM map over the region's pixels in all frames; `colour_shift` is the mean rendered minus the
mean real RGB over them, in 8-bit levels (a warm or dark cast shows here even when PSNR is good).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avatar.face_mesh import FACE_OVAL, LIPS_OUTER

REGIONS = ("face", "mouth", "hair", "torso", "background", "silhouette")
BAND_PX_AT_512 = 4


def _polygon(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points * 4).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=2)
    return mask.astype(bool)


def region_masks(labels: np.ndarray, landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """{region: [H, W] bool} from a frame's part labels [H, W] (0 background, 1 torso, 2 head, 3 mouth
    interior) and its landmarks [478, 2] in pixels of that frame."""
    import cv2

    shape = labels.shape
    radius = max(1, round(BAND_PX_AT_512 * shape[0] / 512))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    person = (labels > 0).astype(np.uint8)
    band = cv2.dilate(person, kernel).astype(bool) & ~cv2.erode(person, kernel).astype(bool)
    lips = landmarks[list(LIPS_OUTER)]
    outward = lips - lips.mean(0)
    outward /= np.maximum(np.linalg.norm(outward, axis=1, keepdims=True), 1e-6)
    width = np.linalg.norm(landmarks[291] - landmarks[61])  # mouth corners
    mouth = _polygon(lips + 0.25 * width * outward, shape) | (labels == 3)
    face = _polygon(landmarks[list(FACE_OVAL)], shape) & ~mouth & ~band
    head = labels >= 2
    return {
        "face": face,
        "mouth": mouth,
        "hair": head & ~face & ~mouth & ~band,
        "torso": (labels == 1) & ~mouth & ~band,
        "background": (labels == 0) & ~band,
        "silhouette": band,
    }


@dataclass
class RegionScores:
    """Running sums over frames; `add` one (rendered, real, labels, landmarks) at a time."""

    squared: dict[str, float] = field(default_factory=lambda: {r: 0.0 for r in REGIONS})
    values: dict[str, int] = field(default_factory=lambda: {r: 0 for r in REGIONS})
    ssim_sum: dict[str, float] = field(default_factory=lambda: {r: 0.0 for r in REGIONS})
    pixels: dict[str, int] = field(default_factory=lambda: {r: 0 for r in REGIONS})
    difference_sum: dict[str, np.ndarray] = field(default_factory=lambda: {r: np.zeros(3) for r in REGIONS})
    error_sum: np.ndarray | None = None  # [H, W] squared error summed over frames (mean over channels)
    frames: int = 0

    def add(self, rendered: np.ndarray, real: np.ndarray, similarity: np.ndarray, labels: np.ndarray,
            landmarks: np.ndarray) -> None:
        """rendered, real: uint8 [H, W, 3]; similarity: their SSIM map [H, W] (`metrics.ssim_map`); labels
        [H, W]; landmarks [478, 2] in pixels of this frame."""
        difference = rendered.astype(np.float64) - real.astype(np.float64)  # [H, W, 3]
        error = difference**2
        for name, mask in region_masks(labels, landmarks).items():
            count = int(mask.sum())
            self.squared[name] += float(error[mask].sum())
            self.difference_sum[name] += difference[mask].sum(0)
            self.values[name] += 3 * count
            self.ssim_sum[name] += float(similarity[mask].sum())
            self.pixels[name] += count
        per_pixel = error.mean(-1)
        self.error_sum = per_pixel if self.error_sum is None else self.error_sum + per_pixel
        self.frames += 1

    def report(self) -> dict[str, dict[str, float | None]]:
        """{region: {"psnr", "ssim", "colour_shift", "pixel_fraction"}}; None for a region no frame has."""
        out = {}
        total = sum(self.pixels[r] for r in REGIONS) or 1
        for name in REGIONS:
            if self.pixels[name] == 0:
                out[name] = {"psnr": None, "ssim": None, "colour_shift": None, "pixel_fraction": 0.0}
                continue
            mse = self.squared[name] / self.values[name]
            out[name] = {"psnr": round(float(10 * np.log10(255.0**2 / max(mse, 1e-10))), 3),
                         "ssim": round(self.ssim_sum[name] / self.pixels[name], 4),
                         "colour_shift": [round(float(v), 2) for v in self.difference_sum[name] / self.pixels[name]],
                         "pixel_fraction": round(self.pixels[name] / total, 4)}
        return out

    def error_map(self) -> np.ndarray:
        """BGR uint8 [H, W, 3]: RMS error per pixel over the frames, 0 to its 99th percentile, as a heat map."""
        import cv2

        if self.error_sum is None:
            raise ValueError("no frames were added")
        rms = np.sqrt(self.error_sum / self.frames)
        top = max(float(np.percentile(rms, 99)), 1e-6)
        return cv2.applyColorMap((np.clip(rms / top, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
