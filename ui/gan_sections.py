"""The three tabs of the GAN lab (app_pages/gan_lab.py): layout and widgets; everything else is in core."""
from __future__ import annotations

import streamlit as st
import torch

from core.data.domains import SOURCES, download_horse2zebra, horse2zebra_folder, load_domains
from core.errors import UserError
from core.gan import cyclegan, dcgan
from core.gan.figures import CYCLE_LABEL_KEYS, GAN_LABEL_KEYS, cyclegan_figure, gan_figure
from core.i18n import t_message
from core.gan.fade import fitted_paths
from core.models.progressive import fade_in
from core.snippets import cyclegan_step_snippet, gan_step_snippet
from ui.common import (LIVE_REFRESH_SECONDS,
                       cached_run_view, checked, job_manager, language, scrubbed_picture, show_run_state,
                       show_user_error, tr, train_and_cancel, visible_runs)

WIDTHS = (8, 16, 32, 64, 128)
INTERPOLATION_STEPS = 9


def apply_preset() -> None:
    """The preset's steps, width and the loss's learning rate (on a change of loss or preset)."""
    spec = dcgan.preset_spec(st.session_state.gan_preset, st.session_state.gan_loss)
    st.session_state.update(gan_steps=spec.steps, gan_width=spec.width, gan_lr=f"{spec.lr:g}")


def spec_from_widgets() -> dcgan.GanSpec:
    try:
        lr = float(st.session_state.gan_lr)
    except ValueError:
        raise UserError("check.lr_not_a_number", "The learning rate must be a number (got {lr}).",
                        lr=st.session_state.gan_lr) from None
    return dcgan.spec_from_dict({"preset": st.session_state.gan_preset, "loss": st.session_state.gan_loss,
                                 "steps": int(st.session_state.gan_steps), "width": st.session_state.gan_width,
                                 "batch_size": 64, "lr": lr, "seed": int(st.session_state.gan_seed)})


def scrubbed_grid(view, key: str) -> tuple[bytes, int] | None:
    return scrubbed_picture(view, key, tr("gan.scrubber"), lambda step: tr("gan.at_step", step=step),
                            tr("gan.scrubber_help"))


# ----- 1. DCGAN / WGAN ------------------------------------------------------------------------------------
def chart_labels(keys: tuple[str, ...]) -> dict:
    return {key: tr(f"gan.chart.{key}") for key in keys}


@st.cache_data(show_spinner=False)
def architecture(width: int):
    return dcgan.architecture_table(width)


def dcgan_tab() -> None:
    st.write(tr("gan.dcgan_intro"))
    manager = job_manager()
    settings, facts = st.columns([1, 1.2], gap="large")
    with settings:
        st.radio(tr("gan.loss"), dcgan.LOSSES, key="gan_loss", horizontal=True, on_change=apply_preset,
                 format_func=lambda loss: tr(f"gan.loss.{loss}"))
        st.radio(tr("mnist.preset"), dcgan.PRESETS, key="gan_preset", horizontal=True, on_change=apply_preset,
                 format_func=lambda p: tr(f"preset.{p}"), help=tr("gan.preset_help"))
        st.select_slider(tr("gan.width"), WIDTHS, key="gan_width", help=tr("gan.width_help"))
        left, right = st.columns(2)
        left.number_input(tr("gan.steps"), step=50, key="gan_steps", help=tr("gan.steps_help"))
        right.text_input(tr("gan.lr"), key="gan_lr", help=tr("gan.lr_help"))
        with st.expander(tr("mnist.more")):
            st.number_input(tr("mnist.seed"), step=1, key="gan_seed")
        spec, seconds = checked(spec_from_widgets), None
        if spec is not None:
            seconds = dcgan.estimate_seconds(spec, manager.info, dcgan.readable_runs(visible_runs(dcgan.KIND)),
                                             manager.info.get("device", ""))
            st.caption(tr("device.measuring") if seconds is None else
                       tr("gan.estimate", steps=spec.steps, seconds=max(seconds, 1),
                          device=manager.info.get("device", "")))
        loss_name = tr(f"gan.loss.{st.session_state.gan_loss}")
        watching = train_and_cancel("gan", dcgan.KIND, spec, tr("gan.train", loss=loss_name), seconds)
    with facts:
        st.markdown(tr(f"gan.recipe.{st.session_state.gan_loss}"))
        table = architecture(st.session_state.gan_width)
        st.dataframe(table.rename(columns={name: tr(f"gan.col.{name}") for name in table.columns}),
                     hide_index=True, width="stretch", height=320, column_config={
                         tr("gan.col.network"): st.column_config.TextColumn(width="small"),
                         tr("gan.col.kernel"): st.column_config.TextColumn(width="small"),
                         tr("gan.col.parameters"): st.column_config.NumberColumn(width="small")})
        st.caption(tr("gan.architecture_caption"))
    st.divider()
    dcgan_live(watching)
    with st.expander(tr("mnist.code")):
        st.code(gan_step_snippet(st.session_state.gan_loss), language="python")


def dcgan_finished(result: dict) -> str:
    verdict = result["verdict"]
    return tr("gan.finished", steps=result["steps"], seconds=result["seconds"], device=result["device"],
              confidence=verdict["confidence"], present=verdict["classes_present"])


def step_progress(latest: dict) -> str:
    return tr("conv.progress", step=latest["step"], total=latest["total_steps"], eta=latest["eta"])


def dcgan_live(watching: bool) -> None:
    @st.fragment(run_every=LIVE_REFRESH_SECONDS if watching else None)
    def panel() -> None:
        run_id = st.session_state.get("gan_run_id")
        if not run_id:
            st.info(tr("gan.press_train"), icon="👆")
            return
        view = cached_run_view("gan", run_id)
        status = show_run_state(view, step_progress, dcgan_finished, run_key="gan_run_id", polling=watching)
        if status is None:
            return
        loss = status["spec"].get("loss", "dcgan")
        picture, notes = st.columns([1, 1], gap="large")
        with picture:
            shown = scrubbed_grid(view, "gan_scrub")
            if shown:
                st.image(shown[0], caption=tr("gan.grid_caption", step=shown[1]), width=420)
        with notes:
            st.markdown(f"**{tr('gan.health')}**")
            found = dcgan.health(view.rows, loss)
            for level, key, english, params in found:
                {"warning": st.warning, "info": st.info, "success": st.success}[level](
                    t_message({"key": key, "text": english.format(**params), "params": params}, language()))
            if not found:
                st.caption(tr("gan.health_waiting"))
            if view.result and view.result.get("recognisable_after") is not None:
                st.caption(tr("gan.recognisable_after", seconds=view.result["recognisable_after"]))
        frame = view.frame(("step",))
        if not frame.empty:
            st.plotly_chart(gan_figure(frame, loss, chart_labels(GAN_LABEL_KEYS)), width="stretch", key="gan_chart")
            st.caption(tr(f"gan.chart_caption.{loss}"))
        if view.result and status["state"] == "finished":
            interpolation_panel(run_id, status["spec"])
        if watching and not view.active:
            st.rerun()  # the run ended: the whole page, so that Train is enabled again

    panel()


@st.cache_resource(show_spinner=False, max_entries=4)
def trained_generator(run_id: str, spec_values: tuple):
    weights = job_manager().weights(run_id)
    return None if weights is None else dcgan.trained_generator(dict(spec_values), weights)


def interpolation_panel(run_id: str, spec_values: dict) -> None:
    generator = trained_generator(run_id, tuple(sorted(spec_values.items())))
    if generator is None:
        return
    st.markdown(f"**{tr('gan.interpolation')}**")
    left, right = st.columns(2)
    st.session_state.setdefault("gan_from", 1)
    st.session_state.setdefault("gan_to", 2)
    first = left.number_input(tr("gan.from_sample"), 1, dcgan.GRID_SAMPLES, key="gan_from")
    last = right.number_input(tr("gan.to_sample"), 1, dcgan.GRID_SAMPLES, key="gan_to")
    path = dcgan.interpolation(generator, spec_values["seed"], int(first) - 1, int(last) - 1, INTERPOLATION_STEPS)
    st.image(dcgan.grid_png(path, columns=INTERPOLATION_STEPS, zoom=4), width="stretch")
    st.caption(tr("gan.interpolation_caption", steps=INTERPOLATION_STEPS))


# ----- 2. CycleGAN ------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=4)
def domain_preview(source: str, size: int) -> tuple[bytes, bool, list[str]]:
    domains = load_domains(source, size, 8, 0)
    return cyclegan.samples_png(torch.cat([domains.a[:4], domains.b[:4]])), domains.synthetic, list(domains.names)


def download_button() -> None:
    """The online path: fetch horse2zebra into the data folder (offline, a message says how to place it by hand)."""
    if st.session_state.gan_source != "horse2zebra":
        return
    if st.button(tr("gan.download"), key="gan_download"):
        try:
            with st.spinner(tr("gan.download")):
                folder = download_horse2zebra()
        except UserError as error:
            show_user_error(error)
        else:
            domain_preview.clear()
            st.success(tr("gan.downloaded", folder=str(folder)))


def cyclegan_spec() -> cyclegan.CycleGanSpec:
    return cyclegan.spec_from_dict({**cyclegan.preset_spec(st.session_state.gan_cpreset).to_dict(),
                                    "source": st.session_state.gan_source})


def cycle_tab() -> None:
    st.write(tr("gan.cycle_intro"))
    manager = job_manager()
    settings, preview = st.columns([1, 1.2], gap="large")
    with preview:
        pictures_ready = show_domains()
    with settings:
        st.radio(tr("gan.source"), SOURCES, key="gan_source", format_func=lambda s: tr(f"gan.source.{s}"),
                 help=tr("gan.source_help", folder=str(horse2zebra_folder())))
        st.radio(tr("mnist.preset"), cyclegan.PRESETS, key="gan_cpreset", horizontal=True,
                 format_func=lambda p: tr(f"preset.{p}"), help=tr("gan.cpreset_help"))
        spec, seconds = checked(cyclegan_spec) if pictures_ready else None, None
        if spec is not None:
            st.caption(tr("gan.cycle_spec", size=spec.size, blocks=spec.blocks, width=spec.width, steps=spec.steps,
                          batch=spec.batch_size))
            seconds = cyclegan.estimate_seconds(spec, manager.info, cyclegan.readable_runs(visible_runs(cyclegan.KIND)),
                                                manager.info.get("device", ""))
            st.caption(tr("device.measuring") if seconds is None else
                       tr("gan.estimate", steps=spec.steps, seconds=max(seconds, 1),
                          device=manager.info.get("device", "")))
        watching = train_and_cancel("cyc", cyclegan.KIND, spec, tr("gan.cycle_train"), seconds)
        st.markdown(tr("gan.cycle_recipe"))
    st.divider()
    cyclegan_live(watching)
    with st.expander(tr("mnist.code")):
        st.code(cyclegan_step_snippet(), language="python")


def show_domains() -> bool:
    """A few pictures of each domain; False, with what to do, when the chosen ones cannot be read."""
    try:
        png, synthetic, names = domain_preview(st.session_state.gan_source, 32)
    except UserError as error:
        if not st.session_state.get("gan_download"):  # when Download was pressed, its own outcome is the news
            show_user_error(error)
        download_button()
        return False
    a, b = (tr(f"gan.domain.{name.replace(' ', '_')}") for name in names)
    st.image(png, width=260, caption=tr("gan.domains_caption", a=a, b=b))
    if synthetic:
        st.info(tr("gan.synthetic_note"), icon="🦓")
    return True


def cycle_finished(result: dict) -> str:
    return tr("gan.cycle_finished", steps=result["steps"], seconds=result["seconds"], device=result["device"])


def cyclegan_live(watching: bool) -> None:
    @st.fragment(run_every=LIVE_REFRESH_SECONDS if watching else None)
    def panel() -> None:
        run_id = st.session_state.get("cyc_run_id")
        if not run_id:
            st.info(tr("gan.cycle_press_train"), icon="👆")
            return
        view = cached_run_view("cyc", run_id)
        if show_run_state(view, step_progress, cycle_finished, run_key="cyc_run_id", polling=watching) is None:
            return
        picture, chart = st.columns([1, 1.4], gap="large")
        with picture:
            shown = scrubbed_grid(view, "cyc_scrub")
            if shown:
                st.image(shown[0], width=300, caption=tr("gan.cycle_grid_caption", step=shown[1]))
        with chart:
            frame = view.frame(("step",))
            if not frame.empty:
                st.plotly_chart(cyclegan_figure(frame, chart_labels(CYCLE_LABEL_KEYS)), width="stretch",
                                key="cyc_chart")
                st.caption(tr("gan.cycle_chart_caption"))
        if watching and not view.active:
            st.rerun()

    panel()


# ----- 3. progressive growing's fade-in ---------------------------------------------------------------------
def fade_tab() -> None:
    st.write(tr("gan.fade_intro"))
    alpha = st.slider("α", 0.0, 1.0, step=0.05, key="gan_alpha", help=tr("gan.alpha_help"))
    st.latex(rf"x = (1-\alpha)\cdot \mathrm{{up}}_{{2\times}}\big(\mathrm{{rgb}}_{{16}}(h)\big) + \alpha\cdot "
             rf"\mathrm{{rgb}}_{{32}}\big(\mathrm{{block}}_{{32}}(h)\big) = {1 - alpha:.2f}\cdot \mathrm{{old}} + "
             rf"{alpha:.2f}\cdot \mathrm{{new}}")
    with st.spinner(tr("gan.fade_fitting")):
        old, new = fitted_paths()
    columns = st.columns(3)
    for column, pictures, key in zip(columns, (old, fade_in(old, new, alpha), new),
                                     ("gan.fade_old", "gan.fade_blend", "gan.fade_new")):
        column.image(dcgan.grid_png(pictures, columns=2, zoom=4), caption=tr(key, alpha=alpha), width="stretch")
    st.caption(tr("gan.fade_caption"))
