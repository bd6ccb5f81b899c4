import torch

from avatar.model.fields import TORSO_SIGNAL, TorsoField


def _trained_looking_field() -> TorsoField:
    field = TorsoField(torch.zeros(3), 20.0)
    with torch.no_grad():
        for p in field.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return field.double()


def test_torso_field_carries_shoulder_motion_on_beyond_what_it_saw():
    """Held-out frames shift the shoulders further than the training frames; the field's answer for twice the
    signal is twice its answer's change (an MLP of the signal bends back instead)."""
    field = _trained_looking_field()
    means = torch.randn(50, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 10
    pose = torch.randn(6, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 0.1
    signal = torch.tensor([0.01, -0.005, 0.012, 0.003], dtype=torch.float64)
    still = field(means, pose, torch.zeros(TORSO_SIGNAL, dtype=torch.float64))
    once, twice = field(means, pose, signal) - still, field(means, pose, 2 * signal) - still
    assert once.abs().max() > 1e-3
    torch.testing.assert_close(twice, 2 * once, rtol=1e-9, atol=1e-9)


def test_torso_field_basis_once_gives_the_same_offsets():
    field = _trained_looking_field()
    means = torch.randn(30, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 10
    pose, signal = torch.full((6,), 0.05, dtype=torch.float64), torch.full((TORSO_SIGNAL,), 0.01, dtype=torch.float64)
    torch.testing.assert_close(field(means, pose, signal, field.basis(means)), field(means, pose, signal))
