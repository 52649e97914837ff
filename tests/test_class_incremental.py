import numpy as np

from nevis_bench.registry import STREAMS


def test_class_incremental_split_has_disjoint_groups_in_one_label_space():
    stream = STREAMS.get("synthetic-class-incremental").factory(tasks=3, classes_per_task=2, train_per_class=6,
                                                                 eval_per_class=3)
    assert [e.year for e in stream.entries] == [2000, 2001, 2002]
    seen = set()
    for t, entry in enumerate(stream.entries):
        assert entry.task.num_classes == 6
        splits = entry.source.build(16)
        train_labels = set(splits["train"][1].tolist())
        assert train_labels == {2 * t, 2 * t + 1}
        assert set(splits["dev_test"][1].tolist()) == train_labels
        assert len(splits["train"][1]) == 12
        assert not seen & train_labels
        seen |= train_labels
    # the groups come from one base task: the same images as the base, filtered
    base = stream.entries[0].source.base.build(16)["train"]
    first = stream.entries[0].source.build(16)["train"]
    np.testing.assert_array_equal(first[0], base[0][np.isin(base[1], [0, 1])])
