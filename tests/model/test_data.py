import numpy as np

from prefloop.model import PreferenceExample
from prefloop.model.data import aggregate, replay_sample, split
from prefloop.types import Choice


def test_aggregate_merges_annotators_flips_and_drops_skips() -> None:
    ex = [
        PreferenceExample("p", "x", "y", Choice.A),
        PreferenceExample("p", "x", "y", Choice.TIE, weight=2.0),
        PreferenceExample("p", "y", "x", Choice.A),  # same pair, other orientation → b wins
        PreferenceExample("p", "x", "y", Choice.SKIP),
        PreferenceExample("q", "x", "y", Choice.B, strength=1.0),
    ]
    t = aggregate(ex, margin_scale=0.5)
    assert t.pairs == [("p", "x", "y"), ("q", "x", "y")]
    assert np.array_equal(t.wins, [[1, 1, 2], [0, 1, 0]])
    assert np.allclose(t.margin, [0.0, 0.5])


def test_split_is_seeded_and_bootstrap_subset_sums_weights() -> None:
    ex = [PreferenceExample(f"p{i}", "a", "b", Choice.A) for i in range(20)]
    t = aggregate(ex)
    tr1, va1 = split(t, 0.25, seed=3)
    tr2, va2 = split(t, 0.25, seed=3)
    assert va1 is not None and va2 is not None
    assert tr1.pairs == tr2.pairs and len(va1) == 5
    sub = t.subset(np.array([0, 0, 1]))
    assert np.array_equal(sub.wins, [[2, 0, 0], [1, 0, 0]])


def test_replay_sample_fraction() -> None:
    new = [PreferenceExample(f"n{i}", "a", "b", Choice.A) for i in range(10)]
    old = [PreferenceExample(f"o{i}", "a", "b", Choice.A) for i in range(100)]
    got = replay_sample(new, old, 0.5, seed=0)
    assert got[:10] == new and len(got) == 15
    assert replay_sample(new, old, 0.5, seed=0) == got


def test_count_groups_is_the_number_of_batches_each_process_gets() -> None:
    import numpy as np

    from prefloop.model.batching import count_groups, shard_groups

    for n in (0, 1, 15, 16, 17, 59, 936):
        for world in (1, 2, 3):
            lengths = np.arange(n)
            per_rank = {len(shard_groups(lengths, 16, 7, rank, world)) for rank in range(world)}
            assert per_rank == {count_groups(n, 16, world)}


def test_a_hashed_split_holds_a_pair_out_of_every_set_that_contains_it() -> None:
    whole = aggregate([PreferenceExample(f"p{i}", "a", "b", Choice.A) for i in range(400)])
    part = aggregate([PreferenceExample(f"p{i}", "a", "b", Choice.A) for i in range(0, 400, 3)])
    _, val_whole = split(whole, 0.2, seed=5, how="hashed")
    train_part, val_part = split(part, 0.2, seed=5, how="hashed")
    assert val_whole is not None and val_part is not None
    assert set(val_part.pairs) == set(val_whole.pairs) & set(part.pairs), "the same pairs, whichever set"
    assert not set(train_part.pairs) & set(val_whole.pairs)
    assert 0.15 < len(val_whole) / len(whole) < 0.25, "about val_fraction of the pairs"
    _, other_seed = split(whole, 0.2, seed=6, how="hashed")
    assert other_seed is not None and set(other_seed.pairs) != set(val_whole.pairs)
    # the random split of a subset draws its own pairs: what the hashed split exists to avoid
    _, random_part = split(part, 0.2, seed=5)
    _, random_whole = split(whole, 0.2, seed=5)
    assert random_part is not None and random_whole is not None
    assert set(random_part.pairs) - set(random_whole.pairs)


def test_a_random_split_holds_out_enough_pairs_to_calibrate_while_four_in_five_still_train() -> None:
    def held(n: int, min_val: int) -> int:
        t = aggregate([PreferenceExample(f"p{i}", "a", "b", Choice.A) for i in range(n)])
        train, val = split(t, 0.1, seed=1, min_val=min_val)
        assert val is not None and len(train) + len(val) == n
        assert not set(train.pairs) & set(val.pairs)
        return len(val)

    assert held(100, 0) == 10  # the plain share
    assert held(100, 20) == 20  # 10 % would be too few to fit a temperature on
    assert held(60, 20) == 12  # never more than one in five
    assert held(400, 20) == 40  # the share, once it is larger
