"""The tabs of the bias lab (layout and widgets only; the counting is in core.fairness, the simulations
in core.bias_sims, the figures in core.bias_figures)."""
from __future__ import annotations

import functools

import pandas as pd
import streamlit as st

from core import bias_figures as figures
from core import bias_sims as sims
from core import fairness
from core import mnist_lab
from core.data.compas import load_compas
from core.snippets import bias_snippet
from core.viz import confusion_figure
from ui.common import (LIVE_REFRESH_SECONDS,
                       cached_run_view, checked, epoch_progress, job_manager, session_id, show_refusal, show_run_state,
                       submit, tr, visible_runs)

TABS = ("compas", "shades", "amplify", "loop", "model")
MAX_DAYS = 365
BOOTSTRAP_RESAMPLES = 1000
SMALL_GROUP = 50  # fewer people than this: a group's rates and their intervals say little
FIGURE_WORDS = (
    "crosstab_title", "crosstab_hover", "rows_score_text", "rows_decile_score", "reoffended_pct", "fpr_title",
    "fnr_title", "rate_hover", "published", "rate_axis", "calibration_title", "calibration_hover", "threshold_axis",
    "decile_axis", "subgroup_axis", "error_axis", "shades_title", "predicted_share", "true_share", "lesson_share",
    "step_axis", "share_axis", "shares_title", "records_title", "patrol_share_a", "record_share_a", "truth",
    "district_a", "district_b", "day_axis", "incidents_axis", "class_hover", "digit_axis", "replay",
    "reoffended_axis", "share_of_a_axis",
    *(f"sub_{name}" for name in fairness.GENDER_SHADES.columns[1:]),
)
run_view = functools.partial(cached_run_view, "bias")


def words() -> dict[str, str]:
    return {key: tr(f"bias.fig.{key}") for key in FIGURE_WORDS}


def csv_button(table: pd.DataFrame, name: str, key: str) -> None:
    st.download_button(tr("bias.csv"), table.to_csv(index=False, float_format="%.6g").encode(), file_name=f"{name}.csv",
                       mime="text/csv", icon="⬇️", key=key, on_click="ignore")


@st.cache_data(show_spinner=False)
def error_rates(by: str, threshold: int) -> pd.DataFrame:
    return fairness.error_rates(load_compas(), by, threshold, n_boot=BOOTSTRAP_RESAMPLES)


@st.cache_data(show_spinner=False)
def headline() -> dict:
    return fairness.headline(load_compas())


@st.cache_data(show_spinner=False)
def amplification(share: float, cue: float) -> pd.DataFrame:
    return sims.amplification(sims.Amplification(share=share, cue=cue))


# ----- COMPAS ---------------------------------------------------------------------------------------------
def compas_tab() -> None:
    people = load_compas()
    st.caption(tr("bias.compas_source", people=len(people)))
    headline_panel()
    st.divider()
    crosstab_panel(people)
    st.divider()
    rates_panel(people)
    st.divider()
    tradeoff_panel(people)
    with st.expander(tr("bias.code")):
        st.code(bias_snippet(st.session_state.bias_by, st.session_state.bias_threshold), language="python")


def headline_panel() -> None:
    facts = headline()
    st.subheader(tr("bias.headline"))
    columns = st.columns(2)
    for column, rate in zip(columns, ("fpr", "fnr")):
        with column:
            st.markdown(f"**{tr(f'bias.headline_{rate}')}**")
            for group, label in ((fairness.BLACK, tr("bias.black")), (fairness.WHITE, tr("bias.white"))):
                ours, published = facts[rate][group], facts["published"][rate][group]
                st.metric(label, f"{ours:.1%}", tr("bias.published_was", value=f"{published:.1%}"),
                          delta_color="off", delta_arrow="off")
    st.info(tr("bias.headline_ratio", ratio=facts["fpr_ratio"]), icon="⚖️")
    st.caption(tr("bias.why_differ"))


def crosstab_panel(people: pd.DataFrame) -> None:
    st.subheader(tr("bias.crosstab"))
    left, right = st.columns(2)
    left.selectbox(tr("bias.rows"), fairness.RISK_ROWS, key="bias_rows", format_func=lambda r: tr(f"bias.rows.{r}"))
    right.selectbox(tr("bias.by"), fairness.GROUPINGS, key="bias_by", format_func=lambda b: tr(f"bias.by.{b}"))
    rows, by = st.session_state.bias_rows, st.session_state.bias_by
    table = fairness.crosstab(people, rows, by)
    st.plotly_chart(figures.crosstab_figure(table, rows, by, words()), width="stretch", key="bias_crosstab_chart")
    st.caption(tr("bias.crosstab_caption"))
    shown = table.rename(columns={by: tr(f"bias.by.{by}"), rows: tr(f"bias.rows.{rows}"),
                                  "did_not_reoffend": tr("bias.col.did_not"), "reoffended": tr("bias.col.did"),
                                  "people": tr("bias.col.people"), "reoffended_pct": tr("bias.col.did_pct"),
                                  "did_not_reoffend_pct": tr("bias.col.did_not_pct")})
    st.dataframe(shown, hide_index=True, width="stretch", height=min(320, 35 * (len(shown) + 1) + 3),
                 key="bias_crosstab_table",
                 column_config={tr("bias.col.did_pct"): st.column_config.NumberColumn(format="%.1f%%"),
                                tr("bias.col.did_not_pct"): st.column_config.NumberColumn(format="%.1f%%")})
    csv_button(table, f"compas_{rows}_by_{by}", "bias_crosstab_csv")


def rates_panel(people: pd.DataFrame) -> None:
    by = st.session_state.bias_by
    st.subheader(tr("bias.rates", by=tr(f"bias.by.{by}").lower()))
    st.slider(tr("bias.threshold"), 1, 10, key="bias_threshold", help=tr("bias.threshold_help"))
    threshold = st.session_state.bias_threshold
    with st.spinner(tr("bias.bootstrapping")):
        rates = error_rates(by, threshold)
    published = fairness.PUBLISHED if by == "race" and threshold == fairness.HIGHER_RISK_DECILE else None
    st.plotly_chart(figures.error_rates_figure(rates, words(), published), width="stretch", key="bias_rates_chart")
    st.caption(tr("bias.rates_caption", resamples=BOOTSTRAP_RESAMPLES))
    small = rates.loc[rates["people"] < SMALL_GROUP, "group"].tolist()
    if small:
        st.warning(tr("bias.small_groups", groups=", ".join(small), people=SMALL_GROUP), icon="🔍")
    intervals = {f"{rate}_ci": [f"{low:.1%} – {high:.1%}"
                                for low, high in zip(rates[f"{rate}_low"], rates[f"{rate}_high"])]
                 for rate in ("fpr", "fnr")}
    shown = rates[["group", "people", "base_rate", "fpr", "fnr", "precision", "labelled_higher"]].assign(**intervals)
    shown = shown[["group", "people", "base_rate", "fpr", "fpr_ci", "fnr", "fnr_ci", "precision", "labelled_higher"]]
    shown = shown.rename(columns={"group": tr(f"bias.by.{by}"), "people": tr("bias.col.people"),
                                  "base_rate": tr("bias.col.base_rate"), "fpr": tr("bias.col.fpr"),
                                  "fpr_ci": tr("bias.col.interval"), "fnr": tr("bias.col.fnr"),
                                  "fnr_ci": tr("bias.col.interval") + " ", "precision": tr("bias.col.precision"),
                                  "labelled_higher": tr("bias.col.labelled_higher")})
    percent = st.column_config.NumberColumn(format="percent")
    st.dataframe(shown, hide_index=True, width="stretch", key="bias_rates_table", column_config={
        column: percent for column in shown.columns
        if column in (tr("bias.col.base_rate"), tr("bias.col.fpr"), tr("bias.col.fnr"), tr("bias.col.precision"),
                      tr("bias.col.labelled_higher"))})
    csv_button(rates, f"compas_error_rates_by_{by}_threshold_{threshold}", "bias_rates_csv")


def tradeoff_panel(people: pd.DataFrame) -> None:
    st.subheader(tr("bias.tradeoff"))
    groups = (fairness.BLACK, fairness.WHITE)
    sweep = fairness.threshold_sweep(people, "race", groups)
    calibration = fairness.calibration(people, "race", groups)
    threshold = st.session_state.bias_threshold
    st.plotly_chart(figures.tradeoff_figure(sweep, calibration, threshold, words()), width="stretch",
                    key="bias_tradeoff_chart")
    at = sweep[sweep["threshold"] == threshold].set_index("group")
    base = people[people["race"].isin(groups)].groupby("race")["reoffended"].mean()
    st.markdown(tr("bias.tradeoff_text", threshold=threshold, base_black=base[fairness.BLACK],
                   base_white=base[fairness.WHITE], prec_black=at.at[fairness.BLACK, "precision"],
                   prec_white=at.at[fairness.WHITE, "precision"], fpr_black=at.at[fairness.BLACK, "fpr"],
                   fpr_white=at.at[fairness.WHITE, "fpr"]))


# ----- Gender Shades --------------------------------------------------------------------------------------
def shades_tab() -> None:
    st.markdown(tr("bias.shades_intro"))
    st.plotly_chart(figures.gender_shades_figure(fairness.gender_shades_long(), words()), width="stretch",
                    key="bias_shades_chart")
    table = fairness.GENDER_SHADES
    shown = table.rename(columns={"classifier": tr("bias.col.classifier"),
                                  **{c: tr(f"bias.fig.sub_{c}") for c in table.columns[1:]}})
    st.dataframe(shown, hide_index=True, width="stretch", key="bias_shades_table",
                 column_config={c: st.column_config.NumberColumn(format="%.1f%%") for c in shown.columns[1:]})
    st.caption(tr("bias.shades_source"))
    csv_button(table, "gender_shades_error_rates", "bias_shades_csv")


# ----- bias amplification ---------------------------------------------------------------------------------
def amplify_tab() -> None:
    st.markdown(tr("bias.amplify_intro"))
    left, right = st.columns(2)
    left.slider(tr("bias.share"), 0.5, 0.95, step=0.01, key="bias_share", format="%.2f", help=tr("bias.share_help"))
    right.slider(tr("bias.cue"), 0.1, 3.0, step=0.1, key="bias_cue", format="%.1f", help=tr("bias.cue_help"))
    history = amplification(st.session_state.bias_share, st.session_state.bias_cue)
    st.plotly_chart(figures.amplification_figure(history, sims.LESSON_PREDICTED_SHARE, words()), width="stretch",
                    key="bias_amplify_chart")
    last = history.iloc[-1]
    one, two, three = st.columns(3)
    one.metric(tr("bias.true_share"), f"{last['true_share']:.0%}")
    two.metric(tr("bias.predicted_share"), f"{last['predicted_share']:.0%}",
               f"{100 * (last['predicted_share'] - last['true_share']):+.0f} pt", delta_color="inverse")
    three.metric(tr("bias.accuracy"), f"{last['accuracy']:.0%}")
    st.caption(tr("bias.amplify_caption"))
    csv_button(history, "bias_amplification", "bias_amplify_csv")


# ----- runaway feedback loop ------------------------------------------------------------------------------
def add_days(days: int) -> None:
    st.session_state.bias_days = min(MAX_DAYS, max(0, st.session_state.bias_days + days) if days else 0)


def loop_tab() -> None:
    st.markdown(tr("bias.loop_intro"))
    st.radio(tr("bias.rule"), sims.FEEDBACK_RULES, key="bias_rule", horizontal=True,
             format_func=lambda r: tr(f"bias.rule.{r}"))
    st.caption(tr(f"bias.rule_what.{st.session_state.bias_rule}"))
    one, two, three = st.columns([1, 1, 1.4])
    one.slider(tr("bias.rate_a"), 0.02, 0.3, step=0.01, key="bias_rate_a")
    two.slider(tr("bias.rate_b"), 0.02, 0.3, step=0.01, key="bias_rate_b")
    with three:
        st.slider(tr("bias.days"), 0, MAX_DAYS, key="bias_days")
        a, b, c = st.columns(3)
        a.button(tr("bias.next_day"), on_click=add_days, args=(1,), width="stretch")
        b.button(tr("bias.next_30"), on_click=add_days, args=(30,), width="stretch")
        c.button(tr("bias.reset"), on_click=add_days, args=(0,), width="stretch")
    setup = sims.Feedback(rule=st.session_state.bias_rule, days=st.session_state.bias_days,
                          rate_a=st.session_state.bias_rate_a, rate_b=st.session_state.bias_rate_b)
    days = sims.feedback_loop(setup)
    st.plotly_chart(figures.feedback_figure(days, setup.rate_a, setup.rate_b, words()), width="stretch",
                    key="bias_loop_chart")
    last = days.iloc[-1]
    st.info(tr("bias.loop_now", day=int(last["day"]), patrols=last["patrol_share_a"], records=last["record_share_a"],
               truth=setup.rate_a / (setup.rate_a + setup.rate_b)), icon="🚓")
    csv_button(days, f"feedback_loop_{setup.rule}", "bias_loop_csv")


# ----- your own model -------------------------------------------------------------------------------------
PRESET_BASELINES = ("quick", "demo")
MAX_BASELINE_RUNS = 20


def baseline_runs(runs: list[dict]) -> dict[str, dict]:
    """Of this browser's MNIST runs (newest first), the finished ones trained on every digit: each can be
    the baseline."""
    finished = [run for run in runs if run["state"] == "finished" and run["spec"]["scarce_digit"] == -1]
    return {run["id"]: run for run in finished[:MAX_BASELINE_RUNS]}


def baseline_label(choice: str, runs: dict[str, dict]) -> str:
    if choice in PRESET_BASELINES:
        return tr(f"bias.from.{choice}")
    run = runs[choice]
    return tr("bias.from_run", run=choice[:6], arch=tr(f"arch.{run['spec']['arch']}"), epochs=run["spec"]["epochs"],
              accuracy=100 * (run.get("result") or {}).get("accuracy", 0))


def experiment_specs(runs: dict[str, dict]) -> tuple[mnist_lab.MnistSpec, mnist_lab.MnistSpec]:
    """The baseline (every digit: a new one of a preset, or a finished run's) and the same run with the
    chosen digit under-represented."""
    choice = st.session_state.bias_size
    base = mnist_lab.spec_from_dict(runs[choice]["spec"]) if choice in runs else \
        mnist_lab.preset_spec("basic_cnn", choice)
    scarce = mnist_lab.validate(mnist_lab.MnistSpec(**{**base.to_dict(), "scarce_digit": st.session_state.bias_digit,
                                                       "scarce_keep": st.session_state.bias_keep / 100}))
    return base, scarce


def start_experiment(base: dict, scarce: dict, estimate: float | None, baseline_run: str | None) -> None:
    """Queue the scarce run, and the baseline unless ``baseline_run`` (a finished run of the same spec:
    the one chosen, or the last baseline here) can be reused: it does not depend on the digit."""
    status = job_manager().status(baseline_run) if baseline_run else None
    if status and status["state"] == "finished" and mnist_lab.spec_from_dict(status["spec"]).to_dict() == base:
        st.session_state.bias_base_run_id = baseline_run
    elif not submit("bias_base_run_id", mnist_lab.KIND, base, estimate):
        return
    submit("bias_rare_run_id", mnist_lab.KIND, scarce, estimate)


def model_tab() -> None:
    manager = job_manager()
    st.markdown(tr("bias.model_intro"))
    all_runs = mnist_lab.readable_runs(visible_runs(mnist_lab.KIND))
    runs = baseline_runs(all_runs)
    choices = [*PRESET_BASELINES, *runs]
    if st.session_state.bias_size not in choices:  # a link's run this browser may not list, or no longer has
        st.session_state.bias_size = PRESET_BASELINES[0]
    one, two, three = st.columns([1, 1, 1.3])
    one.selectbox(tr("bias.digit"), tuple(range(10)), key="bias_digit")
    two.slider(tr("bias.keep"), 1, 100, key="bias_keep", format="%d%%", help=tr("bias.keep_help"))
    three.selectbox(tr("bias.from"), choices, key="bias_size", format_func=lambda c: baseline_label(c, runs),
                    help=tr("bias.from_help"))
    chosen_run = st.session_state.bias_size if st.session_state.bias_size in runs else None
    reuse = chosen_run or st.session_state.get("bias_base_run_id")
    chosen = checked(lambda: experiment_specs(runs))
    run_ids = [st.session_state.get(key) for key in ("bias_base_run_id", "bias_rare_run_id")]
    active = [rid for rid in run_ids if rid and run_view(rid).active]
    mine = [rid for rid in active if rid in manager.active_runs(session_id())]
    training = any(run_view(rid).live for rid in active)
    estimate = None
    if chosen:
        device = manager.info.get("device", "")
        timings = mnist_lab.step_seconds(manager.info.get("mnist_seconds_per_step", {}), all_runs, device)
        estimate = mnist_lab.estimate_seconds(chosen[1], timings)
        st.caption(tr("device.measuring") if estimate is None else
                   tr("bias.estimate", seconds=max(2 * estimate, 1), device=device))
    left, right = st.columns(2)
    left.button(tr("bias.train_both"), type="primary", disabled=chosen is None or bool(mine), width="stretch",
                on_click=start_experiment, key="bias_train",
                args=(chosen[0].to_dict(), chosen[1].to_dict(), estimate, reuse) if chosen else ({}, {}, None, None))
    for key in ("bias_base_run_id", "bias_rare_run_id"):
        show_refusal(key)
    if right.button(tr("mnist.cancel"), disabled=not mine, width="stretch", key="bias_cancel"):
        for rid in mine:
            manager.cancel(rid, session_id())
        st.toast(tr("mnist.cancel_sent"))
    experiment_panel(training)


def experiment_panel(watching: bool) -> None:
    @st.fragment(run_every=LIVE_REFRESH_SECONDS if watching else None)
    def panel() -> None:
        base_id, rare_id = st.session_state.get("bias_base_run_id"), st.session_state.get("bias_rare_run_id")
        if not rare_id:
            st.info(tr("bias.press_train"), icon="👆")
            return
        views = {}
        for column, (name, rid) in zip(st.columns(2), (("baseline", base_id), ("scarce", rare_id))):
            with column:
                if rid is None:
                    continue
                view, status = run_view(rid), job_manager().status(rid)
                spec = (status or {}).get("spec") or {}
                title = tr(f"bias.model.{name}", digit=spec.get("scarce_digit", -1),
                           keep=100 * spec.get("scarce_keep", 1.0))
                st.markdown(f"**{title}**")
                if show_run_state(view, epoch_progress, model_done, polling=watching) is not None and view.result:
                    views[name] = (view.result, spec)
        if watching and not any(run_view(rid).active for rid in (base_id, rare_id) if rid):
            st.rerun()  # both ended: the whole page, so that Train and Cancel above follow
        if len(views) == 2:
            results_panel(views["baseline"][0], *views["scarce"])
    panel()


def model_done(result: dict) -> str:
    return tr("bias.model_done", accuracy=result["accuracy"] * 100, seconds=result["seconds"])


def results_panel(base: dict, scarce: dict, spec: dict) -> None:
    digit, keep = spec["scarce_digit"], spec["scarce_keep"]
    scarce_name = tr("bias.model.scarce_short", digit=digit, keep=100 * keep)
    tables = {tr("bias.model.baseline_short"): fairness.per_class_errors(base["confusion"]),
              scarce_name: fairness.per_class_errors(scarce["confusion"])}
    before, after = (table.at[digit, "error_pct"] for table in tables.values())
    one, two, three = st.columns(3)
    one.metric(tr("bias.digit_error", digit=digit), f"{after:.1f}%", f"{after - before:+.1f} pt", delta_color="inverse")
    two.metric(tr("bias.overall"), f"{100 * scarce['accuracy']:.1f}%",
               f"{100 * (scarce['accuracy'] - base['accuracy']):+.1f} pt")
    three.metric(tr("bias.overall_base"), f"{100 * base['accuracy']:.1f}%")
    st.plotly_chart(figures.per_class_figure(tables, digit, words()), width="stretch", key="bias_class_chart")
    st.caption(tr("bias.class_caption", digit=digit, digit_rise=after - before,
                  overall_drop=100 * (base["accuracy"] - scarce["accuracy"])))
    merged = pd.concat({name: table.set_index("digit") for name, table in tables.items()}, axis=1)
    merged.columns = [f"{name}: {tr(f'bias.col.{column}')}" for name, column in merged.columns]
    percent = {column: st.column_config.NumberColumn(format="%.1f%%")
               for column in merged.columns if column.endswith("%")}
    st.dataframe(merged.reset_index().rename(columns={"digit": tr("bias.fig.digit_axis")}), hide_index=True,
                 width="stretch", key="bias_class_table", column_config=percent)
    csv_button(merged.reset_index(), f"mnist_per_class_digit_{digit}_keep_{round(100 * keep)}", "bias_class_csv")
    st.markdown(f"**{tr('bias.confusion', digit=digit)}**")
    words_of_matrix = {"predicted": tr("chart.predicted"), "actual": tr("chart.actual"),
                       "hover": tr("chart.confusion_hover")}
    st.plotly_chart(confusion_figure(scarce["confusion"], words_of_matrix), width="stretch", key="bias_confusion")
