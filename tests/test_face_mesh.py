import struct

import numpy as np

from avatar.face_mesh import FACE_OVAL, JAW_LINE, LIPS_INNER, load_face_template, parse_geometry_metadata


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + payload


def _message(vertices: np.ndarray, triangles: np.ndarray, packed: bool) -> bytes:
    mesh = _field(1, 0, _varint(0)) + _field(2, 0, _varint(0))
    if packed:
        blob = vertices.astype("<f4").tobytes()
        mesh += _field(3, 2, _varint(len(blob)) + blob)
        ints = b"".join(_varint(int(i)) for i in triangles.ravel())
        mesh += _field(4, 2, _varint(len(ints)) + ints)
    else:
        mesh += b"".join(_field(3, 5, struct.pack("<f", v)) for v in vertices.ravel())
        mesh += b"".join(_field(4, 0, _varint(int(i))) for i in triangles.ravel())
    ref = _field(1, 0, _varint(2)) + _field(2, 5, struct.pack("<f", 0.25))
    return _field(1, 2, _varint(len(mesh)) + mesh) + _field(2, 2, _varint(len(ref)) + ref)


def test_decoder_reads_packed_and_unpacked_fields():
    vertices = np.arange(15, dtype=np.float32).reshape(3, 5)
    triangles = np.array([[0, 1, 2]])
    for packed in (False, True):
        t = parse_geometry_metadata(_message(vertices, triangles, packed))
        np.testing.assert_array_equal(t.vertices, vertices[:, :3])
        np.testing.assert_array_equal(t.uvs, vertices[:, 3:])
        np.testing.assert_array_equal(t.triangles, triangles)
        assert t.rigid_ids.tolist() == [2] and t.rigid_weights.tolist() == [0.25]


def test_canonical_mesh_from_the_bundle(models):
    from avatar.model_files import model_path

    t = load_face_template(model_path("face_landmarker"))
    assert t.vertices.shape == (468, 3) and t.uvs.shape == (468, 2) and t.triangles.shape == (898, 3)
    assert t.triangles.min() == 0 and t.triangles.max() == 467
    assert len(t.rigid_ids) > 20 and (t.rigid_weights > 0).all()
    # The canonical face is about 15 cm wide, symmetric, nose towards +z.
    assert 14 < t.vertices[454, 0] - t.vertices[234, 0] < 17
    assert int(np.argmax(t.vertices[:, 2])) in (1, 4)  # the nose is the frontmost part


def test_landmark_groups_are_consistent():
    assert len(FACE_OVAL) == 36 and len(set(FACE_OVAL)) == 36
    assert JAW_LINE[0] == 454 and JAW_LINE[-1] == 234 and 152 in JAW_LINE
    assert len(LIPS_INNER) == 20
