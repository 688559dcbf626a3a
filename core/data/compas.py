"""ProPublica's COMPAS two-year recidivism data (Lesson 13, ethics), shipped in sample_data/compas/.

The shipped file holds the columns this app uses, taken from ``compas-scores-two-years.csv``
(7,214 people; names, birth dates and case numbers left out); sample_data/README.md says where
it came from. ``load_compas`` applies ProPublica's own filter, which leaves 6,172 people.
"""
from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from core.data.mnist import REPO_ROOT

COMPAS_CSV = REPO_ROOT / "sample_data" / "compas" / "compas-two-years-columns.csv"
RISK_ORDER = ("Low", "Medium", "High")
AGE_ORDER = ("Less than 25", "25 - 45", "Greater than 45")


@functools.lru_cache(maxsize=2)
def load_compas(path: Path = COMPAS_CSV) -> pd.DataFrame:
    """The people ProPublica kept: the charge within 30 days of the screening, recidivism known, not an
    ordinary traffic offence, and a score present. Adds ``reoffended`` (within two years) and
    ``higher_risk`` (scored Medium or High, decile 5 or more: ProPublica's "labelled higher risk")."""
    raw = pd.read_csv(path)
    kept = raw[raw["days_b_screening_arrest"].between(-30, 30) & (raw["is_recid"] != -1)
               & (raw["c_charge_degree"] != "O") & raw["score_text"].notna() & (raw["score_text"] != "N/A")]
    return kept.assign(
        reoffended=kept["two_year_recid"] == 1,
        higher_risk=kept["score_text"] != "Low",
        score_text=pd.Categorical(kept["score_text"], categories=RISK_ORDER, ordered=True),
        age_cat=pd.Categorical(kept["age_cat"], categories=AGE_ORDER, ordered=True),
    ).reset_index(drop=True)
