"""MultiCorpusBatchSampler without a model: rates, composition, determinism, sharding."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from mtaffect.training.sampler import CorpusConcatDataset, MultiCorpusBatchSampler, corpus_probabilities

SIZES = {"big": 800, "mid": 200, "small": 50}


def _corpus_counts(sampler: MultiCorpusBatchSampler, epochs: range) -> Counter:
    counts: Counter = Counter()
    for epoch in epochs:
        sampler.set_epoch(epoch)
        for batch in sampler:
            corpora = {sampler.corpus_of(i) for i in batch}
            assert len(corpora) == 1, f"homogeneous batch mixes corpora {corpora}"
            counts[corpora.pop()] += 1
    return counts


def _assert_rates(counts: Counter, expected: dict[str, float]) -> None:
    total = sum(counts.values())
    assert total >= 2000
    for name, p in expected.items():
        sigma = np.sqrt(p * (1 - p) / total)
        observed = counts[name] / total
        assert abs(observed - p) < 4 * sigma + 1e-9, f"{name}: observed {observed:.4f}, expected {p:.4f}"


def test_proportional_draws_every_batch_once_per_epoch():
    sampler = MultiCorpusBatchSampler(SIZES, batch_size=16, sampling="proportional", seed=3)
    expected_batches = {name: -(-n // 16) for name, n in SIZES.items()}
    assert len(sampler) == sum(expected_batches.values())
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        seen = sorted(i for batch in batches for i in batch)
        assert seen == list(range(sum(SIZES.values()))), "proportional must be one exact pass"
        per_corpus = Counter(sampler.corpus_of(batch[0]) for batch in batches)
        assert per_corpus == expected_batches
    # The order of corpora is shuffled, not blocked: 'small' is not all at the end.
    sampler.set_epoch(0)
    positions = [i for i, batch in enumerate(sampler) if sampler.corpus_of(batch[0]) == "small"]
    assert positions[0] < len(sampler) - len(positions)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 5.0])
def test_temperature_rates(temperature):
    sampler = MultiCorpusBatchSampler(SIZES, batch_size=2, sampling="temperature", temperature=temperature, seed=0)
    counts = _corpus_counts(sampler, range(6))
    weights = {name: n ** (1 / temperature) for name, n in SIZES.items()}
    total = sum(weights.values())
    _assert_rates(counts, {name: w / total for name, w in weights.items()})


def test_uniform_rates():
    sampler = MultiCorpusBatchSampler(SIZES, batch_size=2, sampling="uniform", seed=1)
    counts = _corpus_counts(sampler, range(6))
    _assert_rates(counts, {name: 1 / 3 for name in SIZES})


def test_round_robin_cycles_in_order_and_refills_small_corpora():
    sampler = MultiCorpusBatchSampler(SIZES, batch_size=16, sampling="round_robin", seed=0)
    batches = list(sampler)
    names = [sampler.corpus_of(batch[0]) for batch in batches]
    assert names == [list(SIZES)[i % 3] for i in range(len(batches))]
    small = [i for batch, name in zip(batches, names) if name == "small" for i in batch]
    # 'small' (50 examples) is drawn far more often than one pass holds: its stream restarts.
    assert len(small) > 50
    assert set(small) == set(range(1000, 1050))


def test_probabilities_helper():
    assert corpus_probabilities([100, 25], "temperature", 2.0) == pytest.approx([2 / 3, 1 / 3])
    assert corpus_probabilities([3, 1], "proportional") == pytest.approx([0.75, 0.25])
    assert corpus_probabilities([3, 1, 9], "uniform") == pytest.approx([1 / 3] * 3)
    with pytest.raises(ValueError, match="temperature"):
        corpus_probabilities([1], "temperature", 0.0)


FEATURE_SETS = {"big": "cmu", "mid": "cmu", "small": "own"}


@pytest.mark.parametrize("sampling", ["proportional", "temperature", "uniform", "round_robin"])
def test_mixed_batches_never_mix_feature_sets(sampling):
    sampler = MultiCorpusBatchSampler(
        SIZES, batch_size=8, sampling=sampling, composition="mixed", feature_sets=FEATURE_SETS, seed=2
    )
    mixed_corpora = 0
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for batch in sampler:
            corpora = {sampler.corpus_of(i) for i in batch}
            assert len({FEATURE_SETS[c] for c in corpora}) == 1
            mixed_corpora += len(corpora) > 1
    assert mixed_corpora > 0, "mixed composition should actually mix corpora of one feature set"
    if sampling == "proportional":
        sampler.set_epoch(0)
        assert sorted(i for batch in sampler for i in batch) == list(range(1050))


def test_mixed_temperature_example_rates():
    sampler = MultiCorpusBatchSampler(
        SIZES, batch_size=2, sampling="temperature", temperature=2.0, composition="mixed",
        feature_sets=FEATURE_SETS, seed=5,
    )
    groups: Counter = Counter()
    slots: Counter = Counter()
    for epoch in range(5):
        sampler.set_epoch(epoch)
        for batch in sampler:
            names = [sampler.corpus_of(i) for i in batch]
            groups[FEATURE_SETS[names[0]]] += 1
            slots.update(name for name in names if FEATURE_SETS[name] == "cmu")
    weights = {name: n**0.5 for name, n in SIZES.items()}
    total = sum(weights.values())
    # The feature-set group of a batch is drawn with the summed corpus probabilities...
    _assert_rates(groups, {"cmu": (weights["big"] + weights["mid"]) / total, "own": weights["small"] / total})
    # ...and each example slot within the group with the renormalised ones.
    within = weights["big"] + weights["mid"]
    _assert_rates(slots, {"big": weights["big"] / within, "mid": weights["mid"] / within})


def test_order_is_a_pure_function_of_seed_and_epoch():
    make = lambda seed: MultiCorpusBatchSampler(SIZES, batch_size=16, sampling="temperature", seed=seed)  # noqa: E731
    first, second = make(7), make(7)
    first.set_epoch(4)
    second.set_epoch(4)
    assert list(first) == list(second)
    assert list(first) == list(first), "iterating twice must not advance any state"
    second.set_epoch(5)
    assert list(first) != list(second)
    assert first.global_batches(0) != make(8).global_batches(0)


@pytest.mark.parametrize("sampling", ["proportional", "temperature"])
def test_distributed_shards_are_disjoint_and_equal_length(sampling):
    world = 3
    ranks = [
        MultiCorpusBatchSampler(SIZES, batch_size=16, sampling=sampling, seed=0, num_replicas=world, rank=r)
        for r in range(world)
    ]
    for sampler in ranks:
        sampler.set_epoch(1)
    shards = [list(sampler) for sampler in ranks]
    assert {len(shard) for shard in shards} == {len(ranks[0])}
    assert len(ranks[0]) == ranks[0].global_num_batches // world
    global_batches = ranks[0].global_batches(1)
    usable = len(global_batches) - len(global_batches) % world
    interleaved = [shards[i % world][i // world] for i in range(usable)]
    assert interleaved == global_batches[:usable]
    if sampling == "proportional":
        flat = [i for shard in shards for batch in shard for i in batch]
        assert len(flat) == len(set(flat)), "ranks must see disjoint examples"


def test_drop_last_and_errors():
    sampler = MultiCorpusBatchSampler({"a": 50, "b": 21}, batch_size=10, drop_last=True)
    assert len(sampler) == 5 + 2
    assert all(len(batch) == 10 for batch in sampler)
    kept = MultiCorpusBatchSampler({"a": 50, "b": 21}, batch_size=10)
    assert len(kept) == 5 + 3 and sorted(len(b) for b in kept)[0] == 1
    with pytest.raises(ValueError, match="fewer examples than batch_size"):
        MultiCorpusBatchSampler({"a": 50, "tiny": 3}, batch_size=10, drop_last=True)
    with pytest.raises(ValueError, match="empty"):
        MultiCorpusBatchSampler({"a": 0}, batch_size=2)
    with pytest.raises(ValueError, match="fewer than the 4 processes"):
        MultiCorpusBatchSampler({"a": 5}, batch_size=2, num_replicas=4, rank=0)
    with pytest.raises(ValueError, match="feature_sets"):
        MultiCorpusBatchSampler({"a": 5}, batch_size=2, composition="mixed", feature_sets={"b": "x"})
    with pytest.raises(ValueError):
        MultiCorpusBatchSampler({"a": 5}, batch_size=2, sampling="sometimes")


def test_no_batch_size_attribute_for_accelerate():
    # accelerate's BatchSamplerShard drops short batches of samplers that declare a batch_size.
    sampler = MultiCorpusBatchSampler({"a": 5}, batch_size=2)
    assert getattr(sampler, "batch_size", None) is None and sampler.max_batch_size == 2


def test_concat_dataset_fetches_in_order(tiny_family):
    from torch.utils.data import DataLoader

    corpora = {name: corpus["train"].with_format("numpy") for name, corpus in list(tiny_family.items())[:2]}
    concat = CorpusConcatDataset(corpora)
    assert concat.corpus_sizes() == {name: len(ds) for name, ds in corpora.items()}
    n0 = len(next(iter(corpora.values())))
    indices = [n0 + 1, 0, n0, 3, -1]
    rows = concat.__getitems__(indices)
    expected = [concat[i] for i in indices]
    assert [str(r["id"]) for r in rows] == [str(r["id"]) for r in expected]
    # A plain list dataset (no __getitems__) works too, and a DataLoader uses the batch path.
    plain = CorpusConcatDataset({"x": list(range(5)), "y": list(range(100, 103))})
    assert plain.__getitems__([6, 0, 5]) == [101, 0, 100]
    sampler = MultiCorpusBatchSampler(plain.corpus_sizes(), batch_size=2, seed=0)
    loader = DataLoader(plain, batch_sampler=sampler, collate_fn=list)
    assert sorted(x for batch in loader for x in batch) == [0, 1, 2, 3, 4, 100, 101, 102]
