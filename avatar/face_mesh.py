"""MediaPipe's canonical face mesh (the head template) and named landmark groups.

The Face Landmarker bundle carries `geometry_pipeline_metadata_landmarks.binarypb`: the canonical mesh
(468 vertices in centimetres with UVs, 898 triangles) and the weighted landmarks MediaPipe itself treats
as rigid. This module reads it with a minimal protobuf decoder, so no licensed face model is needed.
"""
from __future__ import annotations

import functools
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar.errors import AvatarError

_GEOMETRY_MEMBER = "geometry_pipeline_metadata_landmarks.binarypb"

# Landmark index groups of MediaPipe's 478-point topology. "Left"/"right" are the subject's.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
JAW_LINE = FACE_OVAL[FACE_OVAL.index(454): FACE_OVAL.index(234) + 1]
"""Lower half of the face oval, from the left ear level through the chin to the right ear level."""
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_BROW = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
LEFT_BROW = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
RIGHT_EYE_UPPER_LID = (246, 161, 160, 159, 158, 157, 173)
RIGHT_EYE_LOWER_LID = (7, 163, 144, 145, 153, 154, 155)
LEFT_EYE_UPPER_LID = (466, 388, 387, 386, 385, 384, 398)
LEFT_EYE_LOWER_LID = (249, 390, 373, 374, 380, 381, 382)
UPPER_LIP_INNER_MID = 13
LOWER_LIP_INNER_MID = 14
MOUTH_CORNERS = (61, 291)
NOSE_TIP = 1
CHIN = 152
LOWER_FACE = tuple(sorted(set(JAW_LINE[3:-3]) | set(LIPS_OUTER) | set(LIPS_INNER) |
                          {17, 18, 200, 199, 175, 83, 84, 85, 86, 313, 314, 315, 316, 201, 208, 32, 421, 428, 262}))
"""Landmarks that move with the jaw and lips: never used for the rigid head pose."""


@dataclass(frozen=True)
class FaceTemplate:
    vertices: np.ndarray  # [468, 3] float32, centimetres, x right, y up, z towards the viewer
    uvs: np.ndarray  # [468, 2] float32 texture coordinates
    triangles: np.ndarray  # [898, 3] int32 vertex indices
    rigid_ids: np.ndarray  # [K] int32 landmarks MediaPipe treats as rigid (its Procrustes basis)
    rigid_weights: np.ndarray  # [K] float32 their weights


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _fields(buf: bytes) -> list[tuple[int, int, object]]:
    """(field number, wire type, value) of one protobuf message, without a schema."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos: pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos: pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos: pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((number, wire, value))
    return out


def _floats(entries: list[tuple[int, int, object]]) -> np.ndarray:
    # A repeated float arrives either unpacked (one 4-byte entry each) or packed (one length-delimited blob).
    blob = b"".join(value for _, _, value in entries)
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def _uints(entries: list[tuple[int, int, object]]) -> np.ndarray:
    values = []
    for _, wire, value in entries:
        if wire == 0:
            values.append(value)
        else:
            pos = 0
            while pos < len(value):
                item, pos = _varint(value, pos)
                values.append(item)
    return np.asarray(values, dtype=np.int64)


def parse_geometry_metadata(blob: bytes) -> FaceTemplate:
    """Decode GeometryPipelineMetadata {canonical_mesh = 1, procrustes_landmark_basis = 2}."""
    top = _fields(blob)
    meshes = [value for number, _, value in top if number == 1]
    if not meshes:
        raise ValueError("no canonical mesh in geometry metadata")
    mesh = _fields(meshes[0])
    vertex_type = next((value for number, _, value in mesh if number == 1), 0)
    if vertex_type != 0:  # VERTEX_PT: x, y, z, u, v
        raise ValueError(f"unexpected vertex type {vertex_type}")
    vertex_buffer = _floats([e for e in mesh if e[0] == 3]).reshape(-1, 5)
    triangles = _uints([e for e in mesh if e[0] == 4]).reshape(-1, 3)
    ids, weights = [], []
    for number, _, value in top:
        if number == 2:
            ref = dict((n, v) for n, _, v in _fields(value))
            ids.append(ref.get(1, 0))
            weights.append(struct.unpack("<f", ref[2])[0] if 2 in ref else 0.0)
    return FaceTemplate(
        vertices=np.ascontiguousarray(vertex_buffer[:, :3]),
        uvs=np.ascontiguousarray(vertex_buffer[:, 3:]),
        triangles=triangles.astype(np.int32),
        rigid_ids=np.asarray(ids, dtype=np.int32),
        rigid_weights=np.asarray(weights, dtype=np.float32),
    )


@functools.cache
def load_face_template(bundle: Path) -> FaceTemplate:
    """The canonical face mesh stored inside a face_landmarker.task bundle."""
    try:
        with zipfile.ZipFile(bundle) as archive:
            blob = archive.read(_GEOMETRY_MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError):
        raise AvatarError(f"{bundle} is not a MediaPipe face_landmarker.task bundle; run `avatar models fetch`") from None
    return parse_geometry_metadata(blob)
