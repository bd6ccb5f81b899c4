import pytest
import torch

from avatar.train.losses import d_ssim, ssim_map


@pytest.mark.parametrize("size", [(32, 32), (40, 57)])
def test_separable_ssim_matches_kornia(size):
    import kornia

    g = torch.Generator().manual_seed(0)
    a = torch.rand(*size, 3, generator=g)
    b = (a + 0.1 * torch.randn(*size, 3, generator=g)).clamp(0, 1)
    ours = ssim_map(a, b)
    theirs = kornia.metrics.ssim(a.permute(2, 0, 1)[None], b.permute(2, 0, 1)[None], 11)[0].permute(1, 2, 0)
    torch.testing.assert_close(ours, theirs, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(d_ssim(a, b), kornia.losses.ssim_loss(a.permute(2, 0, 1)[None], b.permute(2, 0, 1)[None], 11), atol=2e-5, rtol=1e-4)
    assert float(d_ssim(a, a)) == pytest.approx(0.0, abs=1e-6)


def test_ssim_gradients():
    a = torch.rand(12, 13, 3, dtype=torch.float64, requires_grad=True)
    b = torch.rand(12, 13, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: d_ssim(x, b), (a,))


def test_head_box_covers_the_head_with_a_margin():
    from avatar.train.losses import head_box

    labels = torch.zeros(100, 80, dtype=torch.uint8)
    labels[20:60, 30:50] = 2
    labels[70:, :] = 1
    assert head_box(labels) == (16, 64, 28, 52)
    assert head_box(torch.zeros(10, 10, dtype=torch.uint8)) == (0, 10, 0, 10)


def test_coverage_targets_are_soft_only_at_the_outline_against_the_background():
    from avatar.train.losses import coverage_targets

    labels = torch.zeros(128, 128, dtype=torch.uint8)  # radius 1 at this size
    labels[:, :60] = 1  # torso on the left
    labels[:40, :60] = 2  # head above it: the jaw-line cut at row 40 is a label boundary, not an image edge
    matte = torch.where(labels > 0, 0.9, 0.05)
    matte[:, 60] = 0.4  # the real edge blends over a pixel
    person, head = coverage_targets(labels, matte)
    assert (person[:, 58] == 1).all() and (person[:, 62] == 0).all()  # hard away from the outline
    torch.testing.assert_close(person[:, 59], torch.full((128,), 0.9))  # soft on it, as the matte says
    torch.testing.assert_close(person[:, 60], torch.full((128,), 0.4))
    assert (head[38:42, :59] == labels[38:42, :59].ge(2).float()).all()  # the jaw cut stays hard
    torch.testing.assert_close(head[:39, 60], torch.full((39,), 0.4))  # the head's own outline is soft
    assert (head[42:, 60] == 0).all()  # beside the torso the head target is zero
