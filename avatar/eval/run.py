"""`avatar eval`: render the held-out test frames from their tracked motion codes and head poses, and
compare them with the real frames.

metrics.json holds, over the test frames at the processed resolution:
- psnr, ssim: the full frame (head, modelled torso, background plate: the whole rendered image against the
  whole real image; no real pixels are pasted in);
- lmd_mouth_px: mean distance between the 40 lip landmarks MediaPipe finds on rendered and real frames,
  in pixels of a 512 x 512 frame;
- mouth_opening_r: correlation over frames of the inner-lip opening measured on rendered and real frames.
eval/side_by_side.mp4 shows real (left) and rendered (right) with the audio.
"""
from __future__ import annotations

import contextlib

import numpy as np

from avatar.folder import AvatarFolder
from avatar.io_utils import atomic_write_json
from avatar.model.store import WEIGHTS


def _landmarks(tracker, image: np.ndarray) -> np.ndarray:
    faces = tracker.detect(image)
    if not faces:
        return np.full((478, 2), np.nan)
    h, w = image.shape[:2]
    return faces[0].landmarks[:, :2] * (w, h)


def evaluate(folder: AvatarFolder, device, video: bool = True) -> dict:
    """Metrics of the trained avatar in `folder` (rendered on `device`), also written to eval/metrics.json."""
    from avatar.folder_lock import folder_lock

    with folder_lock(folder.root, "avatar eval"):
        return _evaluate(folder, device, video)


def _evaluate(folder: AvatarFolder, device, video: bool) -> dict:
    from avatar.audio import SAMPLE_RATE
    from avatar.audio.io import load_audio
    from avatar.data.avatar_data import AvatarData
    from avatar.eval.metrics import mouth_landmark_distance, mouth_opening, psnr, ssim_map
    from avatar.eval.regions import RegionScores
    from avatar.model.store import load_trained
    from avatar.model_files import model_path
    from avatar.preprocess.mediapipe_tasks import FaceLandmarker, opened
    from avatar.progress import progress
    from avatar.render.frames import FrameRenderer, to_uint8
    from avatar.video_writer import VideoWriter

    trained = load_trained(folder, device)
    data = AvatarData(folder, 0, basis=trained.basis, device=device)
    size = data.resolution
    renderer = FrameRenderer(trained.model, data.camera, trained.plate(data.background))
    ids = data.test_ids
    scores = {"psnr": [], "ssim": []}
    regions = RegionScores()
    tracked = data.tracking["landmarks"] * data.scale  # [T, 478, 2] pixels at this resolution
    rendered_lm, real_lm = [], []
    writer = contextlib.nullcontext()
    if video:
        rate, fps = SAMPLE_RATE, data.fps
        audio = load_audio(folder.audio, rate)
        start = int(ids[0]) if len(ids) else 0
        writer = VideoWriter(folder.eval / "side_by_side.mp4", fps, 2 * size, size, audio=audio[int(start * rate / fps):],
                             sample_rate=rate, crf=20)
    with writer as side_by_side, opened(FaceLandmarker(model_path("face_landmarker"), video=False)) as tracker:
        for i in progress(ids, total=len(ids), desc="eval"):
            image = to_uint8(renderer.render(data.motion[i], data.head_pose[i], torso=data.torso[i]))
            batch = data.frame(int(i))
            real = to_uint8(batch.image)
            similarity = ssim_map(image, real)
            scores["psnr"].append(psnr(image, real))
            scores["ssim"].append(float(similarity.mean()))
            regions.add(image, real, similarity, batch.labels.cpu().numpy(), tracked[i])
            rendered_lm.append(_landmarks(tracker, image))
            real_lm.append(_landmarks(tracker, real))
            if side_by_side:
                side_by_side.write(np.concatenate([real, image], 1))
    rendered_lm, real_lm = np.array(rendered_lm), np.array(real_lm)
    found = ~np.isnan(rendered_lm[:, 0, 0]) & ~np.isnan(real_lm[:, 0, 0])
    lmd = mouth_landmark_distance(rendered_lm[found], real_lm[found], size) if found.any() else np.array([np.nan])
    opening_r = (float(np.corrcoef(mouth_opening(rendered_lm[found]), mouth_opening(real_lm[found]))[0, 1])
                 if found.sum() > 2 else float("nan"))
    metrics = {
        "psnr": round(float(np.mean(scores["psnr"])), 3),
        "ssim": round(float(np.mean(scores["ssim"])), 4),
        "lmd_mouth_px": round(float(np.mean(lmd)), 3),
        "mouth_opening_r": round(opening_r, 4),
        "frames": int(len(ids)),
        "test_range": data.manifest["split"]["test"],
        "resolution": size,
        "faces_found_fraction": round(float(found.mean()), 4) if len(found) else 0.0,
        "model": {"kind": trained.model.kind, "sizes": trained.model.sizes(),
                  "bytes_on_disk": (folder.model / WEIGHTS).stat().st_size},
        "regions": regions.report() if len(ids) else {},
        "covers": {
            "psnr": "full frame (head, torso, background plate) of every held-out test frame, rendered vs real, 8-bit RGB",
            "ssim": "full frame, 11-pixel Gaussian window, mean over pixels and frames",
            "lmd_mouth_px": "40 lip landmarks (MediaPipe, image mode) on rendered vs real frames, pixels at 512 x 512",
            "mouth_opening_r": "Pearson r over test frames of the inner-lip opening / mouth width, rendered vs real",
            "regions": "per region of each test frame's own labels and landmarks (face, mouth, hair, torso, background, "
                       "a +-4 px band at the person's edge): PSNR of the pooled squared error, mean SSIM, mean RGB "
                       "difference rendered - real (colour_shift, 8-bit levels); see "
                       "avatar/eval/regions.py. error_map.png: RMS error per pixel over the test frames",
        },
    }
    if len(ids):
        import cv2

        from avatar.io_utils import atomic_path

        folder.eval.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder.eval / "error_map.png") as tmp:
            cv2.imwrite(str(tmp), regions.error_map())
    metrics["audio_driven"] = evaluate_audio_driven(folder, trained, data, renderer, tracker_landmarks=real_lm, found=found)
    atomic_write_json(folder.eval / "metrics.json", metrics)
    return metrics


def evaluate_audio_driven(folder: AvatarFolder, trained, data, renderer, tracker_landmarks: np.ndarray,
                          found: np.ndarray) -> dict:
    """The test frames rendered from the test audio alone (through the person's driver, with the tracked
    head poses so mouths line up): mouth-opening correlation and lip LMD against the real frames, the lip
    contrast d' of the rendered frames, and per mouth channel the r between the driven motion and the tracked
    one (`channels_r`). The main figures hold the mouth in pauses as the person did (`--pauses person`: this
    is their own recording); `closed_pauses` has the same for the default; `prior_only` and `hand_prior_only`
    drive without the personal adapter (the learned prior, the hand-written one) through the person's map.
    `references` places them: a mouth that never moves, and the tracked channels through the person's map."""
    from dataclasses import replace

    import torch

    from avatar.audio import SAMPLE_RATE
    from avatar.audio.io import load_audio
    from avatar.audio.phonemes import token_names
    from avatar.eval.lipsync import lip_contrast, phoneme_centres
    from avatar.eval.metrics import mouth_landmark_distance, mouth_opening
    from avatar.model_files import model_path
    from avatar.motion.mapping import channel_correlations, tracked_channels
    from avatar.preprocess.mediapipe_tasks import FaceLandmarker, opened
    from avatar.render.audio_render import load_driver, speech_features
    from avatar.render.frames import to_uint8

    ids = data.test_ids
    if len(ids) < 10:
        return {}
    fps, rate = data.fps, SAMPLE_RATE
    start, end = int(ids[0]), int(ids[-1]) + 1
    wave = load_audio(folder.audio, rate)[int(start * rate / fps): int(end * rate / fps)]
    features = speech_features(folder, wave, end - start)
    centres = phoneme_centres(wave)
    driver = load_driver(folder, trained)
    real_opening = mouth_opening(tracker_landmarks)
    t = data.tracking
    measured = tracked_channels(t["blendshapes"], [str(n) for n in t["blendshape_names"]], t["landmarks"])
    channels = measured[:, :6]
    readout = _channel_readout(data.motion.cpu().numpy()[data.train_ids], channels[data.train_ids])

    def image_scores(codes: np.ndarray, tracker) -> tuple[dict, np.ndarray]:
        """Figures of the test frames rendered with `codes` [test frames, D], and their mouth openings."""
        rendered = np.array([_landmarks(tracker, to_uint8(renderer.render(
            torch.from_numpy(codes[i - start]), data.head_pose[i], torso=data.torso[i]))) for i in ids])
        ok = found & ~np.isnan(rendered[:, 0, 0])
        if ok.sum() < 3:
            return {}, np.array([])
        opening = mouth_opening(rendered)
        r = np.corrcoef(opening[ok], real_opening[ok])[0, 1] if opening[ok].std() > 1e-9 else np.nan
        lmd = mouth_landmark_distance(rendered[ok], tracker_landmarks[ok], data.resolution).mean()
        return {"mouth_opening_r": None if np.isnan(r) else round(float(r), 4), "lmd_mouth_px": round(float(lmd), 3)}, opening

    def scores(driver, pauses: str, tracker) -> dict:
        driven = driver.motion(features.ppg, token_names(), features.energy, features.pitch, fps, pose="still", pauses=pauses)
        figures, opening = image_scores(driven.codes, tracker)
        if not figures:
            return {}
        return {**figures, "lip_contrast": lip_contrast(np.nan_to_num(opening, nan=float(np.nanmean(opening))), fps, centres),
                "channels_r": channel_correlations(readout(driven.codes), channels[ids], t["valid"][ids])}

    # Where the figures sit: a mouth that never moves (the training frames' mean code on every frame), and the
    # test frames' own tracked mouth channels through the person's channel map (what the priors' channel path
    # gives when its channels are exactly right; the adapter adds what the channels miss).
    still = np.repeat(data.motion.cpu().numpy()[data.train_ids].mean(0, keepdims=True), end - start, 0)
    with opened(FaceLandmarker(model_path("face_landmarker"), video=False)) as tracker:
        person, closed = scores(driver, "person", tracker), scores(driver, "closed", tracker)
        prior_only = scores(replace(driver, adapter=None), "closed", tracker)
        hand_only = scores(replace(driver, adapter=None, prior=None), "closed", tracker)
        references = {"still_mouth": image_scores(still, tracker)[0],
                      "tracked_channels": image_scores(driver.mapping.codes(driver.mapping.normalise(measured[start:end])), tracker)[0]}
    if not person:
        return {}
    return {
        **person,
        "pauses": "person",
        "closed_pauses": closed,
        "prior_only": prior_only,
        "hand_prior_only": hand_only,
        "references": references,
        "covers": "test frames driven by the test audio only (tracked head poses), tracker on rendered vs real frames; "
                  "channels_r: the driven codes read out as mouth channels (a linear map fitted on the training frames' "
                  "codes and tracked channels) against the tracked channels; references: the same figures for a mouth "
                  "that never moves (still_mouth) and for the test frames' tracked mouth channels through the person's "
                  "channel map (tracked_channels: the channel path's best)",
    }


def _channel_readout(codes: np.ndarray, channels: np.ndarray, ridge: float = 1e-3):
    """A least-squares linear map from motion codes to mouth channels (fitted on tracked frames), as a function."""
    x = np.concatenate([codes, np.ones((len(codes), 1))], 1)
    solution = np.linalg.solve(x.T @ x + ridge * len(x) * np.eye(x.shape[1]), x.T @ channels)
    return lambda c: np.concatenate([c, np.ones((len(c), 1))], 1) @ solution
