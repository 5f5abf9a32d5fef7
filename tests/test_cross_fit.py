"""Cross-fitted same-corpus teachers: no row is labelled by a teacher that saw it (checked row by row)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
from mtaffect.teachers import (
    TeacherError,
    cross_fit_folds,
    cross_fit_teachers,
    record_teacher,
    teacher_record_from_corpora,
)
from mtaffect.weak_labels import add_cross_fitted_weak_labels, add_weak_labels

TINY = {"hidden_size": 8, "num_heads": 2, "intermediate_size": 16, "initializer_range": 0.2}
K = 3


def test_folds_are_balanced_seeded_and_cover_every_row():
    folds = cross_fit_folds(11, 3, seed=5)
    assert sorted(np.bincount(folds).tolist()) == [3, 4, 4]
    assert np.array_equal(folds, cross_fit_folds(11, 3, seed=5))
    assert not np.array_equal(folds, cross_fit_folds(11, 3, seed=6))
    with pytest.raises(ValueError, match="at least 2 folds"):
        cross_fit_folds(11, 1, seed=0)


@pytest.fixture(scope="module")
def meld(tiny_family):
    return tiny_family["synthetic_meld"]


@pytest.fixture(scope="module")
def cross_fitted(meld):
    """K distinct tiny sentiment teachers; ``train`` records the rows each fold's teacher was handed."""
    handed = []

    def train(part, j):
        handed.append({split: set(part[split]["id"]) for split in part})
        torch.manual_seed(100 + j)
        config = MTAffectConfig.from_corpora({"meld": part}, tasks=["sentiment"], **TINY)
        model = MTAffectForMultiTaskAffect(config)
        with torch.no_grad():  # spread the heads so the K teachers disagree visibly
            for name, param in model.heads.named_parameters():
                param.normal_(0.0, 3.0) if name.endswith("weight") else param.zero_()
        record_teacher(model, teacher_record_from_corpora("sentiment", {"meld": part}))
        return model.eval()

    result = cross_fit_teachers(meld, "sentiment", K, train, seed=7)
    return result, handed


def test_each_teacher_trains_and_selects_on_everything_but_its_fold(meld, cross_fitted):
    result, handed = cross_fitted
    assert result.k == K and len(handed) == K
    for j in range(K):
        for split in ("train", "validation"):
            ids = np.asarray(meld[split]["id"])
            outside = set(ids[result.folds[split] != j])
            assert handed[j][split] == outside == set(result.seen[j][split])
    # The test split is dealt to folds too, and no teacher is handed any test row.
    assert set(result.folds) == {"train", "validation", "test"}
    assert all("test" not in part for part in handed)


def test_no_row_is_labelled_by_a_teacher_that_saw_it(meld, cross_fitted):
    result, _ = cross_fitted
    labelled = add_cross_fitted_weak_labels(meld, result, mode="soft")
    for split in ("train", "validation", "test"):
        ids = list(meld[split]["id"])
        assert list(labelled[split]["id"]) == ids  # original order kept
        weak = np.asarray(labelled[split]["sentiment_weak_probs"], dtype=float)
        # What each teacher alone would write on the whole split.
        alone = [
            np.asarray(add_weak_labels(meld[split], t, "sentiment", ablation="replace", cache=False)["sentiment_weak_probs"],
                       dtype=float)
            for t in result.teachers
        ]
        for row, row_id in enumerate(ids):
            j = int(result.folds[split][row])
            assert row_id not in result.seen[j].get(split, []), f"{split} row {row_id} labelled by teacher {j} that saw it"
            np.testing.assert_allclose(weak[row], alone[j][row], rtol=1e-5, atol=1e-6)
            others = [k for k in range(K) if k != j]
            assert any(not np.allclose(weak[row], alone[k][row], atol=1e-4) for k in others)
        # Gold sentiment is hidden (weak instead of gold), every row is weakly labelled.
        assert not np.asarray(labelled[split]["sentiment_mask"], dtype=bool).any()
        assert np.asarray(labelled[split]["sentiment_weak_mask"], dtype=bool).all()
    # The emotion gold labels and the features are untouched.
    assert labelled["train"]["emotion"] == meld["train"]["emotion"]
    from mtaffect.data.schema import get_corpus_info

    note = get_corpus_info(labelled["train"]).notes["weak_labels"]["sentiment"]
    assert note["cross_fitted"] == K and note["ablation"] == "replace"


def test_cross_fit_needs_gold_labels(tiny_family):
    with pytest.raises(TeacherError, match="no gold sentiment"):
        cross_fit_teachers(tiny_family["synthetic_mustard"], "sentiment", K, lambda part, j: None)
