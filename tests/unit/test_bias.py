"""The bias lab's core: ProPublica's COMPAS filter and rates, the cross-tabs, the two simulations,
and the MNIST experiment with one digit made scarce."""
import numpy as np
import pandas as pd
import pytest
import torch

from core import bias_figures as figures
from core import bias_sims as sims
from core import fairness
from core.data.compas import load_compas
from core.data.mnist import DigitTensors
from core.errors import UserError
from core.mnist_lab import MnistSpec, run_mnist, spec_from_dict, validate
from tests.unit.conftest import RecordingContext
from ui.bias_sections import FIGURE_WORDS


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    return load_compas()


def test_propublicas_filter_keeps_6172_people(people):
    assert len(people) == 6172
    assert people["days_b_screening_arrest"].abs().max() <= 30 and (people["c_charge_degree"] != "O").all()
    counts = people["race"].value_counts()
    assert counts[fairness.BLACK] == 3175 and counts[fairness.WHITE] == 2103


def test_the_false_positive_rate_of_black_defendants_is_about_twice_the_white_one(people):
    facts = fairness.headline(people)
    assert 1.7 <= facts["fpr_ratio"] <= 2.1
    assert facts["fpr"][fairness.BLACK] == pytest.approx(0.4234, abs=1e-4)
    assert facts["fnr"][fairness.WHITE] == pytest.approx(0.4964, abs=1e-4)
    for rate in ("fpr", "fnr"):  # within three points of ProPublica's published table
        for group, published in fairness.PUBLISHED[rate].items():
            assert abs(facts[rate][group] - published) < 0.03


@pytest.mark.parametrize("rows", fairness.RISK_ROWS)
@pytest.mark.parametrize("by", fairness.GROUPINGS)
def test_crosstab_margins_are_the_group_sizes(people, rows, by):
    table = fairness.crosstab(people, rows, by)
    sizes = people[by].astype(str).value_counts()
    assert table.groupby(table[by].astype(str))["people"].sum().to_dict() == sizes.to_dict()
    assert (table["did_not_reoffend"] + table["reoffended"] == table["people"]).all()
    assert np.allclose(table["reoffended_pct"] + table["did_not_reoffend_pct"], 100)
    assert table["reoffended"].sum() == people["reoffended"].sum()


def test_a_crosstab_of_nonsense_is_refused(people):
    with pytest.raises(UserError, match="grouping"):
        fairness.crosstab(people, "score_text", "shoe_size")
    with pytest.raises(UserError, match="1 to 11"):
        fairness.error_rates(people, "race", threshold=0)


def test_error_rates_by_metricframe_agree_with_counting_by_hand(people):
    rates = fairness.error_rates(people, "sex", threshold=7).set_index("group")
    women = people[people["sex"] == "Female"]
    did_not = women[~women["reoffended"]]
    assert rates.at["Female", "fpr"] == pytest.approx((did_not["decile_score"] >= 7).mean())
    assert rates.at["Female", "people"] == len(women)
    sweep = fairness.threshold_sweep(people, "sex").set_index(["threshold", "group"])
    assert sweep.at[(7, "Female"), "fpr"] == pytest.approx(rates.at["Female", "fpr"])
    assert sweep.at[(7, "Male"), "precision"] == pytest.approx(rates.at["Male", "precision"])


def test_bootstrap_intervals_hold_the_estimate_and_widen_for_small_groups(people):
    rates = fairness.error_rates(people, "race", n_boot=300, seed=1).set_index("group")
    for rate in ("fpr", "fnr"):
        assert (rates[f"{rate}_low"] <= rates[rate] + 1e-12).all()
        assert (rates[rate] <= rates[f"{rate}_high"] + 1e-12).all()
    width = rates["fpr_high"] - rates["fpr_low"]
    assert width["Asian"] > 3 * width[fairness.BLACK]  # 31 people against 3,175
    again = fairness.error_rates(people, "race", n_boot=300, seed=1)
    assert again.equals(rates.reset_index())  # seeded


def test_raising_the_threshold_trades_false_positives_for_false_negatives(people):
    sweep = fairness.threshold_sweep(people, "race", (fairness.BLACK, fairness.WHITE))
    for _, group in sweep.groupby("group"):
        assert group["fpr"].is_monotonic_decreasing and group["fnr"].is_monotonic_increasing
        assert group["fpr"].iloc[0] == 1.0  # everyone labelled higher risk at decile 1
    calibration = fairness.calibration(people, "race", (fairness.BLACK, fairness.WHITE))
    assert calibration.groupby("group")["people"].sum().to_dict() == {fairness.BLACK: 3175, fairness.WHITE: 2103}


def test_gender_shades_is_the_papers_table():
    long = fairness.gender_shades_long()
    worst = long.loc[long["error_pct"].idxmax()]
    assert (worst["classifier"], worst["subgroup"], worst["error_pct"]) == ("IBM", "darker_female", 34.7)
    assert long.set_index(["classifier", "subgroup"]).at[("IBM", "lighter_male"), "error_pct"] == 0.3


def test_per_class_errors_of_a_confusion_matrix():
    confusion = np.eye(10, dtype=int) * 9
    confusion[3, 5] = 1
    table = fairness.per_class_errors(confusion.tolist())
    assert table.at[3, "error_pct"] == pytest.approx(10.0) and table.at[0, "error_pct"] == 0
    assert table["images"].tolist() == [9, 9, 9, 10, 9, 9, 9, 9, 9, 9]


def test_the_classifier_amplifies_a_weak_cue_correlation():
    history = sims.amplification(sims.Amplification())
    final = history.iloc[-1]
    assert final["predicted_share"] > final["true_share"] + 0.1  # 67% in the pictures, above 77% said
    assert abs(final["true_share"] - sims.LESSON_TRAIN_SHARE) < 0.03
    clear = sims.amplification(sims.Amplification(cue=3.0)).iloc[-1]
    assert abs(clear["predicted_share"] - clear["true_share"]) < 0.02  # a plain cue: nothing to amplify
    with pytest.raises(UserError, match="0.5 to"):
        sims.amplification(sims.Amplification(share=0.3))


@pytest.mark.parametrize("seed", range(5))
def test_the_hot_spot_rule_runs_away_and_the_corrected_one_does_not(seed):
    naive = sims.feedback_loop(sims.Feedback(rule="hotspot", days=100, seed=seed)).iloc[-1]
    assert abs(naive["patrol_share_a"] - 0.5) >= 0.3 and abs(naive["record_share_a"] - 0.5) >= 0.2
    corrected = sims.feedback_loop(sims.Feedback(rule="per_patrol", days=100, seed=seed)).iloc[-1]
    assert abs(corrected["patrol_share_a"] - 0.5) <= 0.1 and abs(corrected["record_share_a"] - 0.5) <= 0.1


def test_the_corrected_rule_follows_a_real_difference():
    last = sims.feedback_loop(sims.Feedback(rule="per_patrol", days=200, rate_a=0.15, rate_b=0.05)).iloc[-1]
    assert 0.65 <= last["patrol_share_a"] <= 0.85  # the truth is 75% of the incidents in A
    days = sims.feedback_loop(sims.Feedback(days=0))
    assert len(days) == 1 and days.iloc[0]["patrol_share_a"] == 0.5
    with pytest.raises(UserError, match="rule"):
        sims.feedback_loop(sims.Feedback(rule="random"))


def test_thinning_keeps_the_share_asked_for_of_one_digit_only():
    labels = torch.arange(100) % 10
    digits = DigitTensors(torch.zeros(100, 1, 28, 28), labels.clone())
    thinned = digits.thinned(3, 0.2, seed=0)
    assert (thinned.labels == 3).sum() == 2 and len(thinned) == 92
    assert (digits.thinned(3, 0.01).labels == 3).sum() == 1  # never none at all
    assert labels.equal(digits.labels)


def test_a_scarce_digit_setting_that_makes_no_sense_is_refused():
    with pytest.raises(UserError, match="0 to 9"):
        validate(MnistSpec(scarce_digit=10))
    with pytest.raises(UserError, match="above 0"):
        spec_from_dict({"scarce_digit": 3, "scarce_keep": 0})
    assert spec_from_dict({"arch": "basic_cnn"}).scarce_digit == -1  # runs stored before the experiment


def test_under_representing_a_digit_raises_its_error():
    errors = {}
    for keep in (1.0, 0.02):
        context = RecordingContext()
        spec = MnistSpec(preset="quick", epochs=1, n_train=1000, batch_size=64, scarce_digit=4, scarce_keep=keep)
        run_mnist(spec.to_dict(), context)
        errors[keep] = fairness.per_class_errors(context.of("result")[0]["confusion"]).set_index("digit")["error_pct"]
    assert errors[0.02][4] > errors[1.0][4] + 20
    assert abs(errors[0.02].drop(4).mean() - errors[1.0].drop(4).mean()) < 10  # the others barely move


def test_the_figures_draw_from_the_tables(people):
    words = {key: key for key in FIGURE_WORDS}
    rates = fairness.error_rates(people, "race", n_boot=50)
    figure = figures.error_rates_figure(rates, words, fairness.PUBLISHED)
    assert len(figure.data) == 4 and figure.data[0].error_y.array is not None
    crosstab = figures.crosstab_figure(fairness.crosstab(people, "decile_score", "sex"), "decile_score", "sex", words)
    assert [trace.name for trace in crosstab.data] == ["Female", "Male"]
    loop = figures.feedback_figure(sims.feedback_loop(sims.Feedback(days=5)), 0.1, 0.1, words)
    assert list(loop.data[0].x) == list(range(6))
