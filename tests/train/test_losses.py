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

