import torch

from avatar.model.gaussians import GaussianSet
from avatar.model.densify import Densifier


def _set(n: int) -> GaussianSet:
    g = torch.Generator().manual_seed(n)
    return GaussianSet(torch.randn(n, 3, generator=g), torch.randn(n, 4, generator=g), torch.randn(n, 3, generator=g) - 3,
                       torch.randn(n, generator=g), torch.randn(n, 3, generator=g))


def test_keep_and_append_carry_the_optimiser_moments():
    s = _set(6)
    opt = torch.optim.Adam(s.param_groups({k: 0.1 for k in s.tensors()}, "x"))
    s.means.sum().backward()
    opt.step()
    moments = opt.state[s.means]["exp_avg"].clone()
    keep = torch.tensor([True, False, True, True, False, True])
    s.keep(keep, opt)
    assert torch.equal(opt.state[s.means]["exp_avg"], moments[keep])
    s.append({k: torch.zeros(2, *t.shape[1:]) for k, t in s.tensors().items()}, opt)
    assert len(s) == 6 and opt.state[s.means]["exp_avg"].shape == (6, 3)
    assert torch.equal(opt.state[s.means]["exp_avg"][4:], torch.zeros(2, 3))
    assert opt.param_groups[0]["params"][0] is s.means  # the optimiser follows the new tensor


def test_densifier_clones_splits_and_prunes():
    s = _set(4)
    with torch.no_grad():
        s.log_scales[:] = torch.log(torch.tensor([[0.01] * 3, [1.0] * 3, [0.01] * 3, [0.01] * 3]))
        s.opacity_logits[:] = torch.tensor([2.0, 2.0, 2.0, -10.0])
    d = Densifier({"head": s}, {"head": 20.0}, grad_threshold=0.01, max_total=100)
    means2d = torch.zeros(4, 2, requires_grad=True)
    (means2d * torch.tensor([[1.0, 0], [1.0, 0], [0, 0], [0, 0]])).sum().backward()
    d.accumulate(means2d, torch.ones(4, 2, dtype=torch.int32), 2, 2)
    report = d.step(torch.optim.Adam(s.param_groups({k: 0.1 for k in s.tensors()}, "x")), torch.Generator().manual_seed(0))
    # Gaussian 0 (small, hot) is cloned, 1 (large, hot) split in two, 3 (transparent) removed.
    assert report == {"added": 3, "removed": 2}
    assert len(s) == 5
    assert torch.isclose(s.log_scales.exp()[-1], torch.tensor(1.0 / 1.6)).all()


def test_prune_unseen_drops_what_no_view_sees_and_keeps_a_gaussian_per_set():
    head, torso = _set(4), _set(3)
    opt = torch.optim.Adam(head.param_groups({k: 0.1 for k in head.tensors()}, "h")
                           + torso.param_groups({k: 0.1 for k in torso.tensors()}, "t"))
    kept_means = head.means.detach()[[1, 3]].clone()
    d = Densifier({"head": head, "torso": torso}, {"head": 20.0, "torso": 45.0}, grad_threshold=0.01, max_total=100)
    removed = d.prune_unseen(torch.tensor([0.1, 2.0, 0.4, 0.5, 0.0, 0.2, 0.1]), 0.5, opt)
    assert removed == 4 and len(head) == 2 and len(torso) == 1
    assert torch.equal(head.means.detach(), kept_means)
    assert float(torso.opacity_logits.detach()[0]) == float(_set(3).opacity_logits.detach()[1])  # the torso's strongest
    assert opt.param_groups[0]["params"][0] is head.means and d.grad["head"].shape == (2,)
