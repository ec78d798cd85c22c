"""The random-weights stamp that a rehearsal puts on every figure."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from iaa_lib.viz import RANDOM_WEIGHTS_LABEL, mark_random_weights  # noqa: E402


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.texts]


def test_random_weights_stamp_every_new_figure_until_switched_off():
    try:
        assert mark_random_weights("random") is True
        fig, _ = plt.subplots()
        assert _texts(fig) == [RANDOM_WEIGHTS_LABEL]
        assert mark_random_weights("random") is True  # idempotent: one stamp, not two
        fig = plt.figure()
        assert _texts(fig) == [RANDOM_WEIGHTS_LABEL]
        assert mark_random_weights("pretrained") is False
        assert _texts(plt.figure()) == []
    finally:
        mark_random_weights("pretrained")
        plt.close("all")


def test_unknown_weights_choice_is_refused():
    with pytest.raises(ValueError, match="weights must be one of"):
        mark_random_weights("imagenet")

