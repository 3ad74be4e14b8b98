import numpy as np
import pytest
import torch

from meta_layer_cli.features import FeatureNormalizer, feature_names, score_features
from meta_layer_cli.features.scores import PER_CHANNEL, PER_GROUP, splice_groups

CHANNELS = ["neither", "acceptor", "donor"]


def _tracks(values_acceptor):
    a = torch.tensor(values_acceptor, dtype=torch.float32)
    d = torch.zeros_like(a)
    return torch.stack([1 - a - d, a, d])[None]


def test_shapes_and_names_for_spliceai_pangolin_and_stacked():
    assert len(feature_names(CHANNELS)) == 3 * len(PER_CHANNEL) + len(PER_GROUP)
    tissues = ["heart", "liver", "brain", "testis"]
    assert len(feature_names(tissues)) == 4 * len(PER_CHANNEL)  # no neither/acceptor/donor triple
    stacked = [f"spliceai:{c}" for c in CHANNELS] + [f"pangolin:{t}" for t in tissues]
    assert splice_groups(stacked) == [(0, 1, 2)]
    x = torch.rand(2, len(stacked), 300)
    assert score_features(x, stacked).shape == (2, len(feature_names(stacked)), 300)


def test_feature_values_on_a_known_peak():
    track = [0.0] * 60 + [0.2, 0.9, 0.3] + [0.0] * 60
    f = score_features(_tracks(track), CHANNELS)[0]
    names = feature_names(CHANNELS)
    get = {n: f[i].numpy() for i, n in enumerate(names)}
    i = 61  # the peak
    assert get["acceptor:p"][i] == pytest.approx(0.9)
    assert get["acceptor:p-1"][i] == pytest.approx(0.2) and get["acceptor:p+1"][i] == pytest.approx(0.3)
    assert get["acceptor:d+1"][i] == pytest.approx(0.6)
    assert get["acceptor:peak"][i] == 1 and get["acceptor:peak"][i - 1] == 0
    assert get["acceptor:peak_ratio"][i] == pytest.approx(1.0, abs=1e-5)
    assert get["acceptor:d2"][i] == pytest.approx(0.2 - 1.8 + 0.3)
    assert get["acceptor:max10"][i - 10] == pytest.approx(0.9) and get["acceptor:max10"][i - 11] == pytest.approx(0.2)
    assert get["acceptor:max50"][i + 50] == pytest.approx(0.9)
    assert get["acceptor:strength"][i] == pytest.approx(0.9 - 1.4 / 101, abs=1e-6)
    assert get["rel_donor"][i] == pytest.approx(0.0, abs=1e-5)
    assert get["splice_vs_neither"][i] == pytest.approx(np.log(0.9 / 0.1), abs=1e-4)


def test_features_do_not_depend_on_batch_neighbours():
    a, b = torch.rand(1, 3, 200), torch.rand(1, 3, 200)
    both = score_features(torch.cat([a, b]), CHANNELS)
    assert torch.equal(both[:1], score_features(a, CHANNELS))


def test_normalizer_uses_only_what_it_is_fitted_on():
    train = [torch.randn(4, 5, 100) * 3 + 2]
    norm = FeatureNormalizer(5).fit(train)
    z = norm(train[0])
    assert z.mean().abs() < 1e-4 and (z.std() - 1).abs() < 1e-2
    shifted = norm(train[0] + 10)  # test data does not move the statistics
    assert shifted.mean() > 2
