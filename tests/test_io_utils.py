import pytest

from avatar.errors import AvatarError
from avatar.io_utils import atomic_dir, atomic_path, atomic_write_text, ensure_writable_dir, inside


def test_atomic_path_keeps_the_old_file_when_interrupted(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "frames"
    with atomic_dir(target) as tmp:
        (tmp / "1").write_text("x")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "2").write_text("y")
            raise KeyboardInterrupt
    assert sorted(p.name for p in target.iterdir()) == ["1"]
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]


@pytest.mark.parametrize("relative", ["../x", "/etc/passwd", "a/../../x"])
def test_inside_refuses_escapes(tmp_path, relative):
    with pytest.raises(AvatarError, match="outside"):
        inside(tmp_path, relative)
    assert inside(tmp_path, "a/b.png") == (tmp_path / "a" / "b.png").resolve()


def test_inside_refuses_symlinks_out(tmp_path):
    (tmp_path / "link").symlink_to("/")
    with pytest.raises(AvatarError):
        inside(tmp_path, "link/etc")


def test_unwritable_folder_is_explained(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(AvatarError, match="cannot write to output folder"):
        ensure_writable_dir(blocker / "avatar")
