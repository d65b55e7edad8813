"""Agreement with the teacher and KL(teacher || model): values on constructed probabilities."""
import numpy as np
import pandas as pd
import pytest
from scipy.stats import entropy

from scoring_lab.kd import agreement
from scoring_lab.kd.plan import ANN, KD_STUDENT, STUDENT


def test_kl_is_scipys_entropy_and_a_confident_miss_stays_finite():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    q = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    np.testing.assert_allclose(agreement.kl_divergence(p, q), [entropy(p[0], q[0]), entropy(p[1], q[1])])
    assert agreement.kl_divergence(p, p) == pytest.approx([0, 0], abs=1e-12)
    miss = agreement.kl_divergence(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    assert np.isfinite(miss).all() and miss[0] == pytest.approx(-np.log(agreement.FLOOR / (1 + agreement.FLOOR)))


def test_agreement_and_kl_per_seed_then_averaged_in_model_order():
    teacher = {"s": np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])}
    same = teacher["s"]
    flipped = same[:, ::-1]
    half = np.array([[0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4]])   # agrees on responses 0 and 1
    probs = {("s", KD_STUDENT, 0): same, ("s", KD_STUDENT, 1): half, ("s", STUDENT, 0): flipped,
             ("s", STUDENT, 1): half, ("s", "teacher", 0): same}          # the teacher itself is not a row
    rows = agreement.agreement_rows(teacher, probs)
    assert len(rows) == 4
    t = agreement.agreement_table(rows).set_index("model")
    assert list(t.index) == [STUDENT, KD_STUDENT]                          # MODELS' order
    assert t.loc[KD_STUDENT, "agreement_mean"] == pytest.approx((1.0 + 0.5) / 2)
    assert t.loc[STUDENT, "agreement_mean"] == pytest.approx((0.0 + 0.5) / 2)
    want = (0 + agreement.kl_divergence(same, half).mean()) / 2
    assert t.loc[KD_STUDENT, "kl_mean"] == pytest.approx(want)
    assert t.loc[KD_STUDENT, "seeds"] == 2 and t.loc[KD_STUDENT, "n_test"] == 4
    text = agreement.agreement_text(agreement.agreement_table(rows))
    assert text.endswith("s: agreement 0.750 against 0.250, KL "
                         f"{t.loc[KD_STUDENT, 'kl_mean']:.3f} against {t.loc[STUDENT, 'kl_mean']:.3f}.")


def test_probabilities_of_another_shape_are_refused_naming_the_model():
    with pytest.raises(ValueError, match=r"set 's', ANN seed 3: probabilities of shape \(2, 3\)"):
        agreement.agreement_rows({"s": np.full((2, 2), 0.5)}, {("s", ANN, 3): np.full((2, 3), 1 / 3)})


def test_no_students_no_sentence():
    rows = pd.DataFrame([{"set": "s", "model": ANN, "seed": 0, "n_test": 2, "agreement": 1.0, "kl": 0.0}])
    assert agreement.agreement_text(agreement.agreement_table(rows)) == ""


def _classes_as_probabilities(classes: np.ndarray, k: int = 3) -> np.ndarray:
    return np.eye(k)[classes] * 0.9 + 0.1 / k


@pytest.mark.parametrize("kd_share, verdict", [(0.95, "held"), (0.60, "inconclusive"), (0.30, "not held")])
def test_the_agreement_gain_reaches_every_verdict_paired_over_responses_under_holm(kd_share, verdict):
    rng = np.random.default_rng(0)
    n = 300
    truth = rng.integers(0, 3, n)
    def follower(share, seed):   # agrees with the teacher on a seeded share of the responses
        r = np.random.default_rng(seed)
        return np.where(r.random(n) < share, truth, (truth + 1) % 3)
    teacher = {"a": _classes_as_probabilities(truth), "b": _classes_as_probabilities(truth)}
    probs = {}
    for name in teacher:
        for s in range(2):
            probs[(name, KD_STUDENT, s)] = _classes_as_probabilities(follower(kd_share, 10 + s))
            probs[(name, STUDENT, s)] = _classes_as_probabilities(follower(0.60, 20 + s))
    gain = agreement.agreement_gain(teacher, probs, n_resamples=500, seed=0)
    assert list(gain["set"]) == ["a", "b"] and (gain["verdict"] == verdict).all()
    assert (gain["ci_low"] <= gain["effect"]).all() and (gain["effect"] <= gain["ci_high"]).all()
    assert (gain["n"] == "300 responses, 2 seeds").all() and (gain["p_holm"] >= gain["p"]).all()
    assert gain["test"].str.contains("paired bootstrap of the accuracy difference").all()
