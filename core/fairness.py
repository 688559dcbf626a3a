"""Group metrics for the bias lab (Lesson 13, ethics): COMPAS cross-tabs and error rates per group,
the threshold trade-off, Gender Shades' published table, and per-class errors of an MNIST model.

Counting is pandas' ``crosstab``; rates per group and their bootstrap intervals are fairlearn's
``MetricFrame``. Nothing here is written by hand that those two already do.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, count, false_negative_rate, false_positive_rate, selection_rate
from sklearn.metrics import precision_score

from core.errors import UserError

GROUPINGS = ("race", "sex", "age_cat")
RISK_ROWS = ("score_text", "decile_score")
HIGHER_RISK_DECILE = 5  # ProPublica: Medium (5-7) and High (8-10) are "labelled higher risk"
BLACK, WHITE = "African-American", "Caucasian"
CONFIDENCE = (0.025, 0.975)  # a 95% bootstrap interval
# ProPublica, "How We Analyzed the COMPAS Recidivism Algorithm" (2016), the table of prediction
# failures: labelled higher risk but did not reoffend, and labelled lower risk yet did reoffend.
PUBLISHED = {"fpr": {BLACK: 0.449, WHITE: 0.235}, "fnr": {BLACK: 0.280, WHITE: 0.477}}
# Buolamwini & Gebru, "Gender Shades" (FAT* 2018, PMLR 81), Table 4: error rates (%) of the gender
# classifiers on the Pilot Parliaments Benchmark, by skin type (Fitzpatrick I-III lighter, IV-VI darker).
GENDER_SHADES = pd.DataFrame(
    [("Microsoft", 20.8, 6.0, 1.7, 0.0), ("Face++", 34.5, 0.7, 6.0, 0.8), ("IBM", 34.7, 12.0, 7.1, 0.3)],
    columns=["classifier", "darker_female", "darker_male", "lighter_female", "lighter_male"],
)


def check_choice(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise UserError("bias.bad_choice", "Choose {what} from {allowed} (got {value}).",
                        what=what, allowed=", ".join(allowed), value=value)


def check_threshold(threshold) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) or not 1 <= threshold <= 11:
        raise UserError("bias.threshold_range", "The threshold is a decile score from 1 to 11 (got {value}).",
                        value=threshold)


def crosstab(people: pd.DataFrame, rows: str = "score_text", by: str = "race") -> pd.DataFrame:
    """Risk (``rows``: the category or the decile) × reoffended within two years, per group (``by``):
    the counts, each row's total and the share of that row who reoffended (a row percentage)."""
    check_choice(rows, RISK_ROWS, "rows")
    check_choice(by, GROUPINGS, "a grouping")
    counts = pd.crosstab([people[by], people[rows]], people["reoffended"].map({False: "no", True: "yes"}))
    counts = counts.reindex(columns=["no", "yes"], fill_value=0)
    table = counts.rename(columns={"no": "did_not_reoffend", "yes": "reoffended"})
    table["people"] = table.sum(axis=1)
    table["reoffended_pct"] = 100 * table["reoffended"] / table["people"]
    table["did_not_reoffend_pct"] = 100 - table["reoffended_pct"]
    return table[table["people"] > 0].rename_axis(index=[by, rows]).reset_index()


def labelled_higher(people: pd.DataFrame, threshold: int) -> pd.Series:
    return people["decile_score"] >= threshold


def error_rates(people: pd.DataFrame, by: str = "race", threshold: int = HIGHER_RISK_DECILE,
                n_boot: int = 0, seed: int = 0) -> pd.DataFrame:
    """Per group: its size, base rate (share who reoffended), the false-positive rate (did not reoffend,
    labelled higher risk), the false-negative rate (reoffended, labelled lower risk) and the precision
    (of those labelled higher risk, the share who reoffended), labelled higher risk meaning a decile
    score of at least ``threshold``. With ``n_boot``, each rate has a 95% bootstrap interval
    (``<rate>_low``, ``<rate>_high``)."""
    check_choice(by, GROUPINGS, "a grouping")
    check_threshold(threshold)
    frame = MetricFrame(
        metrics={"people": count, "base_rate": lambda y, _: float(np.mean(y)), "fpr": false_positive_rate,
                 "fnr": false_negative_rate, "precision": lambda y, p: precision_score(y, p, zero_division=np.nan),
                 "labelled_higher": selection_rate},
        y_true=people["reoffended"].astype(int), y_pred=labelled_higher(people, threshold).astype(int),
        sensitive_features=people[by].astype(str),
    )
    table = frame.by_group.astype(float)
    table["people"] = table["people"].astype(int)
    if n_boot:
        table = table.join(bootstrap_intervals(people, by, threshold, n_boot, seed))
    return table.rename_axis(index="group").reset_index()


def _rates(reoffended: np.ndarray, higher: np.ndarray) -> dict[str, np.ndarray]:
    """False-positive rate, false-negative rate and precision along the last axis (NaN where undefined)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"fpr": (higher & ~reoffended).sum(-1) / (~reoffended).sum(-1),
                "fnr": (~higher & reoffended).sum(-1) / reoffended.sum(-1),
                "precision": (higher & reoffended).sum(-1) / higher.sum(-1)}


def bootstrap_intervals(people: pd.DataFrame, by: str, threshold: int, n_boot: int, seed: int = 0) -> pd.DataFrame:
    """95% intervals of each group's rates from ``n_boot`` resamples of that group's people. fairlearn's
    MetricFrame bootstrap rebuilds a whole MetricFrame per resample (about half a second each here,
    minutes for a thousand), so the resampling is vectorised with numpy instead."""
    generator = np.random.default_rng(seed)
    rows = {}
    for group, members in people.groupby(people[by].astype(str)):
        reoffended, higher = members["reoffended"].to_numpy(), labelled_higher(members, threshold).to_numpy()
        picks = generator.integers(0, len(members), size=(n_boot, len(members)))
        row = {}
        for rate, values in _rates(reoffended[picks], higher[picks]).items():
            row[f"{rate}_low"], row[f"{rate}_high"] = np.nanquantile(values, CONFIDENCE) if np.isfinite(values).any() \
                else (np.nan, np.nan)
        rows[group] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def headline(people: pd.DataFrame, threshold: int = HIGHER_RISK_DECILE) -> dict:
    """The lesson's comparison, computed: false-positive and false-negative rates of African-American
    and White defendants, the ratio of the false-positive rates, and ProPublica's published figures."""
    rates = error_rates(people[people["race"].isin([BLACK, WHITE])], "race", threshold).set_index("group")
    return {"fpr": rates["fpr"].to_dict(), "fnr": rates["fnr"].to_dict(),
            "fpr_ratio": rates.at[BLACK, "fpr"] / rates.at[WHITE, "fpr"], "published": PUBLISHED}


def _of_groups(people: pd.DataFrame, by: str, groups: tuple[str, ...] | None) -> pd.DataFrame:
    """The people of these groups of the grouping ``by`` (everyone when no groups are given)."""
    check_choice(by, GROUPINGS, "a grouping")
    return people[people[by].astype(str).isin(groups)] if groups else people


def threshold_sweep(people: pd.DataFrame, by: str = "race", groups: tuple[str, ...] | None = None) -> pd.DataFrame:
    """For each decile threshold 1..10: every group's false-positive and false-negative rates and
    precision (long format: threshold, group, fpr, fnr, precision, people)."""
    people = _of_groups(people, by, groups)
    thresholds = np.arange(1, 11)[:, None]
    rows = []
    for group, members in people.groupby(people[by].astype(str)):
        reoffended = np.broadcast_to(members["reoffended"].to_numpy(), (len(thresholds), len(members)))
        rates = _rates(reoffended, members["decile_score"].to_numpy() >= thresholds)
        rows.append(pd.DataFrame({"threshold": thresholds[:, 0], "group": group, **rates, "people": len(members)}))
    return pd.concat(rows, ignore_index=True)


def calibration(people: pd.DataFrame, by: str = "race", groups: tuple[str, ...] | None = None) -> pd.DataFrame:
    """For each decile score and group: how many people and the share of them who reoffended. Similar
    shares across groups at a score is what "the score is calibrated" means."""
    people = _of_groups(people, by, groups)
    grouped = people.groupby([people[by].astype(str), "decile_score"], observed=True)["reoffended"]
    return grouped.agg(people="size", reoffended_share="mean").rename_axis(index=["group", "decile"]).reset_index()


def gender_shades_long() -> pd.DataFrame:
    """The published table in long form: classifier, subgroup, error (%)."""
    return GENDER_SHADES.melt(id_vars="classifier", var_name="subgroup", value_name="error_pct")


def per_class_errors(confusion: list[list[int]]) -> pd.DataFrame:
    """Per true class of a confusion matrix (rows: true, columns: predicted): its count, how many
    were right, and the error rate in %."""
    matrix = np.asarray(confusion)
    images, correct = matrix.sum(axis=1), np.diag(matrix)
    return pd.DataFrame({"digit": np.arange(len(matrix)), "images": images, "correct": correct,
                         "error_pct": 100 * (1 - correct / np.maximum(images, 1))})
