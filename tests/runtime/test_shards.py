"""--shard K/N: one parser for prepare, predict and score-vcf; the unit each takes is its own."""

from __future__ import annotations

import pytest

from meta_layer_cli.runtime.errors import UsageError
from meta_layer_cli.runtime.shards import every_nth, parse_shard, shard_block


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "-1/3", "1 /"])
def test_a_bad_shard_is_a_usage_error(text):
    with pytest.raises(UsageError, match="--shard"):
        parse_shard(text)


def test_shards_cover_every_item_once():
    items = list(range(23))
    for n in (1, 2, 5, 23, 30):
        picked = [x for k in range(1, n + 1) for x in every_nth(items, parse_shard(f"{k}/{n}"))]
        blocks = [x for k in range(1, n + 1) for x in items[slice(*shard_block(k, n, len(items)))]]
        assert sorted(picked) == items and blocks == items  # blocks keep input order (merge-vcf concatenates)
    assert parse_shard(" 2 / 7 ") == (2, 7) and parse_shard((1, 1)) == (1, 1)
