"""The four tabs of the RNN lab (app_pages/rnn_lab.py): layout and widgets; everything else is in core."""
from __future__ import annotations

import functools
import time

import pandas as pd
import streamlit as st

from core import rnn_explore as explore
from core import rnn_lab as lab
from core.data.human_numbers import load
from core.errors import UserError
from core.rnn_figures import (accuracy_figure, batches_figure, hidden_figure, lengths_figure, top_words_figure,
                              unrolled_figure)
from core.snippets import rnn_snippet
from core.text.unrolling import trace
from core.viz import training_figure
from ui.common import (LIVE_REFRESH_SECONDS, cached_run_view, checked, epoch_progress, job_manager, show_run_state, tr,
                       train_and_cancel, training_figure_labels, visible_runs, when)

VIEW_BS, MIN_VIEW_BS, MAX_VIEW_BS = 64, 2, 128  # the batches tab's own sliders start at the lesson's look
VIEW_BPTT, MAX_VIEW_BPTT = 70, 120  # at the validation stream: bs 64, bptt 70, 3 batches (95, 69, 38 rows)
STEP_NUMBER = 8123
PLAY_SECONDS = 1.2


def apply_preset() -> None:
    """The chosen model's preset, as the lesson configured it (on a change of model or preset)."""
    spec = lab.preset_spec(st.session_state.rnn_model, st.session_state.rnn_preset)
    st.session_state.update(rnn_epochs=spec.epochs, rnn_lr=f"{spec.max_lr:g}", rnn_pct=spec.pct_start,
                            rnn_bs=spec.bs, rnn_bptt=spec.bptt, rnn_rand=spec.randomise, rnn_nh=spec.nh)
    restart_stepping()


def runs() -> list[dict]:
    return lab.readable_runs(visible_runs(lab.KIND))


# ----- 1. the data --------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False)
def data_facts() -> dict:
    return explore.data_facts()


@st.cache_data(show_spinner=False)
def vocabulary_table() -> pd.DataFrame:
    return explore.vocabulary_table()


def data_tab() -> None:
    facts = data_facts()
    st.write(tr("rnn.data_intro"))
    one, two, three = st.columns(3)
    one.metric(tr("rnn.valid_tokens"), f"{facts['valid_tokens']:,}")
    two.metric(tr("rnn.vocab_size"), facts["vocab"])
    three.metric(tr("rnn.train_tokens"), f"{facts['train_tokens']:,}")
    same = facts["valid_tokens"] == facts["lesson_valid_tokens"] and facts["vocab"] == facts["lesson_vocab"]
    st.caption(tr("rnn.facts_same" if same else "rnn.facts_differ", tokens=facts["lesson_valid_tokens"],
                  vocab=facts["lesson_vocab"]))
    text, vocabulary = st.columns([1.4, 1], gap="large")
    with text:
        for split in ("train", "valid"):
            st.markdown(f"**{tr(f'rnn.{split}_text')}**")
            st.code(f"{facts[f'{split}_start']} …\n… {facts[f'{split}_end']}", language=None, wrap_lines=True)
        st.markdown(f"**{tr('rnn.as_ids')}**")
        st.code(str(facts["valid_ids_start"])[:-1] + ", …]", language=None, wrap_lines=True)
        st.caption(tr("rnn.as_ids_caption"))
        number = st.number_input(tr("rnn.write_number"), 1, 9999, 8123, key="rnn_any_number")
        words, ids = explore.number_as_tokens(int(number))
        st.code(f"{' '.join(words)}\n{ids}", language=None)
    with vocabulary:
        st.markdown(f"**{tr('rnn.vocabulary')}**")
        table = vocabulary_table().rename(columns={"id": tr("rnn.col_id"), "token": tr("rnn.col_token"),
                                                   "count": tr("rnn.col_count"), "special": tr("rnn.col_special")})
        st.dataframe(table, hide_index=True, height=420, width="stretch")
        st.caption(tr("rnn.vocabulary_caption"))


# ----- 2. how batches are cut ---------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=32)
def batch_picture(bs: int, bptt: int, randomise: bool) -> explore.BatchPicture:
    return explore.batch_picture(bs, bptt, randomise)


@st.cache_data(show_spinner=False, max_entries=32)
def lengths_drawn(bptt: int) -> tuple[list[int], int]:
    return explore.lengths_drawn(bptt)


def clamp_state(key: str, low: int, high: int) -> None:
    """A slider's value kept inside its current range (another slider may have shrunk it); ``low`` at first."""
    st.session_state[key] = min(max(st.session_state.get(key, low), low), high)


def batches_tab() -> None:
    st.write(tr("rnn.batches_intro"))
    one, two, three = st.columns(3)
    one.slider(tr("rnn.bs"), MIN_VIEW_BS, MAX_VIEW_BS, key="rnn_vbs", help=tr("rnn.bs_help"))
    two.slider(tr("rnn.bptt"), 2, MAX_VIEW_BPTT, key="rnn_vbptt", help=tr("rnn.bptt_help"))
    three.toggle(tr("rnn.randomise"), key="rnn_vrand", help=tr("rnn.randomise_help"))
    bs, bptt, randomise = st.session_state.rnn_vbs, st.session_state.rnn_vbptt, st.session_state.rnn_vrand
    picture = batch_picture(bs, bptt, randomise)
    rows = picture.batch_of_cell.shape[0]
    st.info(tr("rnn.batches_facts", rows=rows, bs=bs, batches=len(picture.lengths),
               lengths=", ".join(map(str, picture.lengths[:12])) + (", …" if len(picture.lengths) > 12 else ""),
               inputs=(rows - 1) * bs, dropped=picture.dropped, last=bs), icon="🧮")
    clamp_state("rnn_vbatch", 1, len(picture.lengths))
    clamp_state("rnn_vcolumn", 0, bs - 1)
    left, right = st.columns(2)
    batch = left.slider(tr("rnn.which_batch"), 1, len(picture.lengths), key="rnn_vbatch") \
        if len(picture.lengths) > 1 else 1
    column = right.slider(tr("rnn.which_column"), 0, bs - 1, key="rnn_vcolumn")
    inputs, targets = explore.batch_text(picture, batch - 1, column)
    first_row = picture.start(batch - 1)
    st.markdown(tr("rnn.batch_shape", batch=batch, rows=picture.lengths[batch - 1], bs=bs, column=column))
    st.code(f"x: {inputs}\ny: {targets}", language=None, wrap_lines=True)
    st.caption(tr("rnn.shifted"))
    st.markdown(f"**{tr('rnn.batch_table', batch=batch)}**")
    st.dataframe(explore.batch_table(picture, batch - 1), width="stretch")
    st.caption(tr("rnn.batch_table_caption"))
    figure = batches_figure(picture.batch_of_cell, picture.words, {
        "hover": tr("rnn.grid_hover"), "column": tr("rnn.grid_column"), "row": tr("rnn.grid_row")},
        chosen_rows=(first_row, picture.lengths[batch - 1]), chosen_column=column)
    st.plotly_chart(figure, width="stretch", key="rnn_grid")
    st.caption(tr("rnn.grid_caption"))
    if not randomise:
        return
    lengths, first = lengths_drawn(bptt)
    st.markdown(f"**{tr('rnn.lengths_title')}**")
    st.plotly_chart(lengths_figure(lengths, bptt, first, {
        "drawn": tr("rnn.lengths_drawn"), "first": tr("rnn.lengths_first", first=first), "length": tr("rnn.lengths_axis"),
        "share": tr("rnn.lengths_share")}), width="stretch", key="rnn_lengths")
    st.caption(tr("rnn.lengths_caption", bptt=bptt, first=first))


# ----- 3. the network unrolled --------------------------------------------------------------------------
def model_for_stepping(name: str, all_runs: list[dict]):
    """The newest finished run of this model that this browser may see, with its trained model (loaded
    once per session: a stateful model is not shared between students); or None and an untrained one."""
    loaded = st.session_state.setdefault("rnn_models", {})
    for run in explore.finished_runs_of(all_runs, name):
        if run["id"] not in loaded:
            weights = job_manager().weights(run["id"])
            loaded[run["id"]] = None if weights is None else lab.trained_model(run["spec"], weights)
        if loaded[run["id"]] is not None:
            return run, loaded[run["id"]]
    return None, lab.untrained_model(name)


def unroll_tab() -> None:
    name = st.session_state.rnn_model
    all_runs = runs()
    run, model = model_for_stepping(name, all_runs)
    st.write(tr("rnn.unroll_intro") + (" " + tr("rnn.unroll_gru") if name == "model5" else ""))
    if run is None:
        st.warning(tr("rnn.untrained", model=tr(f"rnn.name.{name}")), icon="🎲")
    else:
        st.caption(tr("rnn.trained_weights", run=run["id"], accuracy=run["result"]["accuracy"] * 100,
                      when=when(run["created"])))
    st.number_input(tr("rnn.read_from"), 8001, 9999, key="rnn_number", on_change=restart_stepping,
                    help=tr("rnn.read_from_help"))
    stepper(model)
    with st.expander(tr("rnn.same_three_ways"), expanded=False):
        equivalence_panel(all_runs)


def restart_stepping() -> None:
    st.session_state.rnn_step = 1
    st.session_state.rnn_playing = False


def step_to(step: int) -> None:
    st.session_state.rnn_step = step


def play(from_step: int) -> None:
    st.session_state.update(rnn_playing=True, rnn_step=from_step, rnn_stepped_at=time.monotonic())


def pause() -> None:
    st.session_state.rnn_playing = False


def stepper(model) -> None:
    """Back, Next and Play through the words, with the diagram, the state and the guess at each step
    (a fragment: a step redraws only this; while playing, its timer steps it every PLAY_SECONDS)."""
    st.session_state.rnn_timer = bool(st.session_state.get("rnn_playing"))
    st.fragment(run_every=PLAY_SECONDS if st.session_state.rnn_timer else None)(step_panel)(model)


def step_panel(model) -> None:
    if bool(st.session_state.get("rnn_playing")) != st.session_state.get("rnn_timer"):
        st.rerun()  # Play or Pause was pressed: the whole page, so that the timer starts or stops
    vocab = load()[2]
    context, ids = explore.words_to_step(model, st.session_state.rnn_number)
    words = [vocab.itos[i] for i in ids.tolist()]
    steps = trace(model, ids[:-1], context)
    total = len(steps)
    step = min(max(st.session_state.get("rnn_step", 1), 1), total)
    # While playing, only the timer moves on (not a click of Next, nor a redraw of the page)
    if st.session_state.get("rnn_playing") and time.monotonic() - st.session_state.rnn_stepped_at >= 0.8 * PLAY_SECONDS:
        if step >= total:
            pause()
            st.rerun()
        step += 1
        st.session_state.rnn_stepped_at = time.monotonic()
    st.session_state.rnn_step = step
    back, forward, playing, where = st.columns([1, 1, 1, 3], vertical_alignment="center")
    back.button(tr("rnn.back"), disabled=step <= 1, on_click=step_to, args=(step - 1,), width="stretch",
                key="rnn_back")
    forward.button(tr("rnn.next"), disabled=step >= total, on_click=step_to, args=(step + 1,), width="stretch",
                   key="rnn_next")
    if st.session_state.get("rnn_playing"):
        playing.button(tr("rnn.pause"), width="stretch", key="rnn_pause", on_click=pause)
    else:
        playing.button(tr("rnn.play"), width="stretch", key="rnn_play", on_click=play, args=(1 if step >= total else step,))
    where.markdown(tr("rnn.step_of", step=step, total=total, word=words[step - 1]))
    if context is not None:
        st.caption(tr("rnn.context", words=vocab.textify(context)))

    layers = steps[0].hidden.shape[0]
    guessed = [vocab.itos[int(s.probabilities.argmax())] for s in steps]
    st.plotly_chart(unrolled_figure(words[:total], layers, model.predicts_every_word, model.keeps_state, step - 1, {
        "carried": tr("rnn.carried"), "word": tr("rnn.diagram_word"), "hidden": tr("rnn.diagram_hidden"),
        "output": tr("rnn.diagram_output")}, guessed), width="stretch", key="rnn_diagram")
    st.caption(tr("rnn.diagram_caption"))
    current = steps[step - 1]
    state, guesses = st.columns([1.4, 1], gap="large")
    with state:
        st.markdown(f"**{tr('rnn.inside', word=words[step - 1])}**")
        st.plotly_chart(hidden_figure(current.embedding, current.hidden, {
            "embedding": tr("rnn.embedding"), "state": tr("rnn.state"), "layer": tr("rnn.layer"),
            "cell": tr("rnn.cell_hover")}), width="stretch", key="rnn_hidden")
        st.caption(tr("rnn.inside_caption"))
    with guesses:
        truth = words[step]
        if model.predicts_every_word or step == total:
            best = int(current.probabilities.argmax())
            st.markdown(f"**{tr('rnn.guess', read=' '.join(words[:step]), guess=vocab.itos[best], p=current.probabilities[best] * 100)}**")
            st.plotly_chart(top_words_figure(current.probabilities, vocab.itos, truth,
                                             {"probability": tr("rnn.probability")}),
                            width="stretch", key="rnn_top")
            st.caption(tr("rnn.truth", truth=truth))
        else:
            st.info(tr("rnn.no_guess_yet", total=total), icon="⏭️")


def equivalence_panel(all_runs: list[dict]) -> None:
    _, model0 = model_for_stepping("model0", all_runs)
    _, model3 = model_for_stepping("model3", all_runs)
    st.write(tr("rnn.same_intro"))
    for row in explore.equivalence(model0, model3):
        what = row["what"]
        st.markdown(f"**{tr(f'rnn.same.{what}')}**")
        sides, verdict = st.columns([3, 1], vertical_alignment="center")
        sides.code(f"{tr(f'rnn.same_left.{what}')}: {', '.join(f'{v:+.5f}' for v in row['left'])}, …\n"
                   f"{tr(f'rnn.same_right.{what}')}: {', '.join(f'{v:+.5f}' for v in row['right'])}, …", language=None)
        verdict.metric(tr("rnn.same_largest", numbers=row["numbers"]), f"{row['largest_difference']:.1e}")
    st.caption(tr("rnn.same_caption"))


# ----- 4. training --------------------------------------------------------------------------------------
def spec_from_widgets() -> lab.RnnSpec:
    try:
        lr = float(str(st.session_state.rnn_lr).strip())
    except ValueError:
        raise UserError("mnist.lr_not_number", "Type the learning rate as a number, such as 0.1 or 3e-3.") from None
    return lab.validate(lab.RnnSpec(
        model=st.session_state.rnn_model, preset=st.session_state.rnn_preset, epochs=int(st.session_state.rnn_epochs),
        max_lr=lr, pct_start=float(st.session_state.rnn_pct), bs=int(st.session_state.rnn_bs),
        bptt=int(st.session_state.rnn_bptt), randomise=bool(st.session_state.rnn_rand), nh=int(st.session_state.rnn_nh),
        seed=int(st.session_state.rnn_seed),
    ))


run_view = functools.partial(cached_run_view, "rnn")


def run_label(run: dict) -> str:
    spec, result = run["spec"], run.get("result") or {}
    accuracy = f" · {result['accuracy']:.1%}" if result.get("accuracy") is not None else ""
    return f"{run['id'][:6]} · {tr('rnn.name.' + spec['model'])} · {tr('preset.' + spec['preset'])}{accuracy}"


def train_tab() -> None:
    manager = job_manager()
    all_runs = runs()
    settings, facts = st.columns([1, 1.2], gap="large")
    with settings:
        st.radio(tr("mnist.preset"), lab.PRESETS, key="rnn_preset", horizontal=True, on_change=apply_preset,
                 format_func=lambda p: tr(f"preset.{p}"), help=tr("rnn.preset_help"))
        left, right = st.columns(2)
        left.number_input(tr("mnist.epochs"), step=1, key="rnn_epochs")
        right.text_input(tr("mnist.lr"), key="rnn_lr", help=tr("rnn.lr_help"))
        with st.expander(tr("mnist.more")):
            one, two = st.columns(2)
            one.number_input(tr("rnn.bs"), step=8, key="rnn_bs", help=tr("rnn.bs_help"))
            two.number_input(tr("rnn.bptt"), step=1, key="rnn_bptt", help=tr("rnn.bptt_help"))
            one.number_input(tr("rnn.nh"), step=8, key="rnn_nh", help=tr("rnn.nh_help"))
            two.number_input(tr("rnn.pct"), step=0.05, format="%.2f", key="rnn_pct", help=tr("rnn.pct_help"))
            one.number_input(tr("mnist.seed"), step=1, key="rnn_seed")
            two.toggle(tr("rnn.randomise"), key="rnn_rand", help=tr("rnn.randomise_help"))
        spec, seconds = checked(spec_from_widgets), None
        if spec is not None:
            per_row = lab.seconds_per_row(manager.info.get("rnn_seconds_per_step", {}), all_runs,
                                          manager.info.get("device", ""))
            seconds = lab.estimate_seconds(spec, per_row)
            st.caption(tr("device.measuring") if seconds is None else
                       tr("rnn.estimate", seconds=max(seconds, 1), device=manager.info.get("device", "")))
        watching = train_and_cancel("rnn", lab.KIND, spec, tr("rnn.train", model=tr(f"rnn.name.{st.session_state.rnn_model}")),
                                    seconds)
    with facts:
        model = lab.untrained_model(st.session_state.rnn_model, spec.nh if spec else lab.LESSON_NH)
        table = explore.parameter_table(model)
        st.markdown(f"**{tr('rnn.layers', model=tr('rnn.name.' + st.session_state.rnn_model))}**")
        table.insert(1, "role", [tr(f"rnn.role.{name}") for name in table["layer"]])
        st.dataframe(table.rename(columns={"layer": tr("table.layer"), "role": tr("rnn.col_role"),
                                           "module": tr("rnn.col_module"), "parameters": tr("table.params")}),
                     hide_index=True, width="stretch", column_config={
                         tr("table.layer"): st.column_config.TextColumn(width="small"),
                         tr("rnn.col_role"): st.column_config.TextColumn(width="medium"),
                         tr("table.params"): st.column_config.NumberColumn(width="small")})
        st.caption(tr("rnn.param_total", total=int(table["parameters"].sum())))
        if model.keeps_state:  # Model3 to Model5: where the lesson's BatchNorm went wrong
            st.info(tr("rnn.norm_note"), icon="📏")
    st.divider()
    past = [run for run in all_runs if run["id"] != st.session_state.get("rnn_run_id")]
    compare = st.multiselect(tr("mnist.compare"), [run["id"] for run in past if run["state"] == "finished"],
                             format_func=lambda rid: next(run_label(r) for r in past if r["id"] == rid),
                             key="rnn_compare", placeholder=tr("mnist.compare_placeholder"))
    live_panel(watching, compare, past)
    results_panel(all_runs)
    with st.expander(tr("mnist.code")):
        st.code(explore.model_source(st.session_state.rnn_model), language="python")
        if spec:
            st.code(rnn_snippet(spec.model, spec.epochs, spec.max_lr, spec.pct_start, spec.bs, spec.bptt,
                                model.predicts_every_word, model.keeps_state), language="python")


def finished_text(result: dict) -> str:
    return tr("rnn.finished", model=tr(f"rnn.short.{result['model']}"), accuracy=result["accuracy"] * 100,
              lesson=result["lesson_accuracy"] * 100,
              seconds=result["seconds"], device=result["device"])


def live_panel(watching: bool, compare: list[str], past: list[dict]) -> None:
    @st.fragment(run_every=LIVE_REFRESH_SECONDS if watching else None)
    def panel() -> None:
        run_id = st.session_state.get("rnn_run_id")
        if not run_id:
            st.info(tr("rnn.press_train"), icon="👆")
            st.plotly_chart(training_figure([], training_figure_labels()), width="stretch", key="rnn_chart")
            return
        view = run_view(run_id)
        if show_run_state(view, epoch_progress, finished_text, run_key="rnn_run_id", polling=watching) is None:
            return
        curves = [(tr("mnist.this_run"), view.frame())]
        curves += [(run_label(next(r for r in past if r["id"] == rid)), run_view(rid).frame()) for rid in compare]
        st.plotly_chart(training_figure(curves, training_figure_labels()), width="stretch", key="rnn_chart")
        st.caption(tr("rnn.chart_caption"))
        st.markdown(f"**{tr('rnn.strip')}**")
        if view.sample_png:
            st.image(view.sample_png, width="stretch")
        st.caption(tr("rnn.strip_caption"))
        if watching and not view.active:
            st.rerun()  # the run ended: the whole page, so that Train is enabled again and the table has it

    panel()


def results_panel(all_runs: list[dict]) -> None:
    st.subheader(tr("rnn.results"))
    rows = explore.results_rows(all_runs)
    st.plotly_chart(accuracy_figure([{**row, "model": tr(f"rnn.short.{row['model']}")} for row in rows], {
        "lesson": tr("rnn.lesson_accuracy"), "here": tr("rnn.here_accuracy"), "accuracy": tr("chart.accuracy_axis")}),
        width="stretch", key="rnn_results")
    st.dataframe(pd.DataFrame([{
        tr("rnn.col_model"): tr(f"rnn.name.{row['model']}"),
        tr("rnn.lesson_accuracy"): f"{row['lesson']:.1%}",
        tr("rnn.here_accuracy"): "" if row["here"] is None else f"{row['here']:.1%}",
        tr("runs.preset"): "" if row["preset"] is None else tr(f"preset.{row['preset']}"),
        tr("runs.epochs"): "" if row["epochs"] is None else str(row["epochs"]),
        tr("rnn.col_seconds"): "" if row["seconds"] is None else f"{row['seconds']:.1f}",
        tr("runs.id"): row["run"] or "",
    } for row in rows]), hide_index=True, width="stretch")
    st.caption(tr("rnn.results_caption"))
