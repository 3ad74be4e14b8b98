"""Tensor features of the variant models' inputs: exon ends, the PSI link, site-logit features."""

from __future__ import annotations

import torch

from meta_layer_cli.models.variant.inputs import exon_ends, psi_link, site_logit_features


def test_exon_ends_are_not_the_window_edges():
    mask = torch.zeros(3, 2, 10)
    mask[0, 0, 2:5] = 1  # inside
    mask[1, 0, :4] = 1  # runs past the left edge: only its donor is in the window
    mask[2, 0, 6:] = 1  # past the right edge: only its acceptor
    first, last = exon_ends(mask)
    assert first.nonzero().tolist() == [[0, 2], [2, 6]]
    assert last.nonzero().tolist() == [[0, 4], [1, 3]]


def test_psi_link_is_bounded_by_the_reference():
    ref = torch.tensor([0.0, 30.0, 95.0, 100.0])
    for y, bound in ((-50.0, -ref), (50.0, 100 - ref)):
        out = psi_link(torch.full((4, 1), y), ref)[:, 0]
        torch.testing.assert_close(out, bound, atol=0.2, rtol=0)
    assert torch.equal(psi_link(torch.zeros(4, 2), ref), torch.zeros(4, 2))


def test_site_logit_features_by_channel_names():
    assert site_logit_features(["neither", "acceptor", "donor"]) == [(1, 0), (2, 1)]
    assert site_logit_features(["heart", "liver"]) == [(0, 0), (1, 0), (0, 1), (1, 1)]
