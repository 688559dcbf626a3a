"""The four tabs of the restoration lab (app_pages/restoration_lab.py): layout and widgets; everything else is in core."""
from __future__ import annotations

import streamlit as st
from PIL import Image

from core.i18n import duration
from core.models.unet import UPSAMPLERS, available_encoders
from core.snippets import restore_snippet
from core.vision import restore, restore_data
from core.vision.crappify import Recipe, crappify
from core.vision.images import load_picture, tensor_png
from core.vision.restore_figures import (LOSS_LABEL_KEYS, QUALITY_LABEL_KEYS, losses_figure, quality_figure,
                                         stage_table, unet_figure)
from core.viz import png_bytes
from ui.common import (LIVE_REFRESH_SECONDS, cached_run_view, checked, job_manager, lab_estimate, language,
                       scrubbed_picture, show_run_state, tr, train_and_cancel, visible_runs, weights_download_button,
                       when)
from ui.style_sections import apply_pending_uploads, picture_picker

TABS = ("crappify", "unet", "train", "restore")
UPLOADS = "rst_uploads"
PICKERS = ("rst_photo", "rst_rphoto")
__all__ = ["apply_pending_uploads"]  # the page calls it through this module
TABLE_SIZES = (48, 64, 96, 128, 160, 200, 256)
LR_CHOICES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1)
GAN_LR_CHOICES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3)
STEP_FIELDS = ("mse_steps", "feature_steps", "critic_steps", "gan_steps")


# ----- 1. crappify -------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=32)
def crappified(key: str, recipe: Recipe, seed: int) -> dict:
    picture = load_picture(key)
    made = crappify(picture, recipe, seed)
    # shown at the original's size, every pixel a square (the browser would smooth it): what was lost is visible
    shown = made.picture.resize(picture.size, Image.Resampling.NEAREST)
    return {"original": png_bytes(picture), "size": picture.size, "crappy": png_bytes(made.picture),
            "crappy_shown": png_bytes(shown),
            "crappy_size": made.picture.size, "quality": made.quality, "position": made.position,
            "enlarged": recipe.short_side > min(picture.size),
            "jpeg_bytes": made.jpeg_bytes}


def recipe_from_widgets() -> Recipe:
    low, high = st.session_state.rst_quality
    return Recipe(int(st.session_state.rst_short), int(low), int(high), bool(st.session_state.rst_number)).checked()


def crappify_tab() -> None:
    st.write(tr("restore.crappify_intro"))
    settings, pictures = st.columns([1, 2], gap="large")
    with settings:
        key = picture_picker(tr("restore.photo"), "rst_photo", "photo", uploads=UPLOADS)
        st.slider(tr("restore.short_side"), 16, 512, key="rst_short", help=tr("restore.short_side_help"))
        st.slider(tr("restore.quality"), 1, 95, key="rst_quality", help=tr("restore.quality_help"))
        st.checkbox(tr("restore.number"), key="rst_number", help=tr("restore.number_help"))
        seed, again = st.columns(2, vertical_alignment="bottom")
        seed.number_input(tr("restore.seed"), 0, 2**31 - 1, key="rst_seed", help=tr("restore.seed_help"))
        again.button(tr("restore.new_draw"), on_click=lambda: st.session_state.update(
            rst_seed=(int(st.session_state.rst_seed) + 1) % 2**31))
    recipe = checked(recipe_from_widgets)
    if recipe is None:
        return
    made = crappified(key, recipe, int(st.session_state.rst_seed))
    with pictures:
        left, right = st.columns(2)
        left.image(made["original"], width="stretch")
        left.caption(tr("restore.original_caption", width=made["size"][0], height=made["size"][1]))
        right.image(made["crappy_shown"], width="stretch")
        where = made["position"]
        right.caption(tr("restore.crappy_caption", width=made["crappy_size"][0], height=made["crappy_size"][1],
                         quality=made["quality"], kb=made["jpeg_bytes"] / 1000) +
                      (" " + tr("restore.number_at", x=where[0], y=where[1]) if where else "") +
                      (" " + tr("restore.enlarged") if made["enlarged"] else ""))
        right.download_button(tr("restore.download_crappy"), made["crappy"], file_name=f"crappy-{key}.png",
                              mime="image/png", on_click="ignore")
        st.info(tr("restore.crappify_lesson"), icon="🎓")


# ----- 2. the U-Net ------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=16)
def architecture(encoder: str, upsample: str, size: int):
    return restore.architecture_table(encoder, upsample, size)


def part_name(kind: str, index: int) -> str:
    return tr(f"restore.part.{kind}", n=index)


def encoder_choice(column) -> str:
    names = available_encoders()
    if st.session_state.get("rst_encoder") not in names:
        st.session_state.rst_encoder = names[0]
    column.radio(tr("restore.encoder"), names, key="rst_encoder", format_func=lambda n: tr(f"restore.encoder.{n}"),
                 help=tr("restore.encoder_help"))
    if st.session_state.rst_encoder == "random":
        column.warning(tr("restore.random_warning"), icon="🧪")
    if "resnet34" not in names:
        weights_download_button(column, tr("restore.download_resnet"), "resnet34", "rst_download")
    return st.session_state.rst_encoder


def unet_tab() -> None:
    st.write(tr("restore.unet_intro"))
    left, middle, right = st.columns(3)
    encoder = encoder_choice(left)
    upsample = middle.radio(tr("restore.upsample"), tuple(UPSAMPLERS), key="rst_up",
                            format_func=lambda u: tr(f"restore.upsample.{u}"))
    middle.caption(tr(f"restore.upsample_about.{upsample}"))
    size = right.select_slider(tr("restore.table_size"), TABLE_SIZES, key="rst_tsize", format_func=lambda s: f"{s} px")
    if size % 32:
        right.caption(tr("restore.padded", size=size, padded=-(-size // 32) * 32))
    table = architecture(encoder, upsample, size).copy()
    table["part"] = [part_name(k, i) for k, i in zip(table["kind"], table["index"])]
    table["side"] = table["kind"].map({"input": "input", "output": "output", "enc": "encoder",
                                       "mid": "middle"}).fillna("decoder")
    names = dict(zip(("enc" + table["index"].astype(str)).where(table["kind"] == "enc", table["kind"]), table["part"]))
    table["skip_from"] = table["skip_from"].map(lambda s: names.get(s, "") if s else "")
    st.plotly_chart(unet_figure(table, {"params": tr("restore.params"), "skip": tr("restore.skip")}), width="stretch",
                    key="rst_unet_figure")
    st.caption(tr("restore.unet_caption"))
    shown = table[["part", "shape", "skip_from", "params", "trainable"]].rename(columns={
        "part": tr("restore.column.part"), "shape": tr("restore.column.shape"), "skip_from": tr("restore.column.skip"),
        "params": tr("restore.column.params"), "trainable": tr("restore.column.trainable")})
    numbers = st.column_config.NumberColumn(format="localized")
    st.dataframe(shown, hide_index=True, width="stretch", height=35 * (len(shown) + 1) + 3,
                 column_config={tr("restore.column.params"): numbers, tr("restore.column.trainable"): numbers})
    st.caption(tr("restore.param_totals", total=int(table["params"].sum()), trainable=int(table["trainable"].sum())))


# ----- 3. train ----------------------------------------------------------------------------------------------
def apply_preset() -> None:
    values = restore.PRESET_VALUES[st.session_state.rst_preset]
    for field in STEP_FIELDS:
        st.session_state[f"rst_{field}"] = values[field]


def photo_sets() -> list[str]:
    return [restore_data.SHIPPED, *restore_data.own_folders()]


def spec_from_widgets() -> restore.RestoreSpec:
    state = st.session_state
    low, high = state.rst_quality
    return restore.spec_from_dict(restore.preset_spec(
        state.rst_preset, encoder=state.rst_encoder, upsample=state.rst_up, train_encoder=bool(state.rst_tenc),
        photos=state.rst_photos, lr=state.rst_lr, gan_lr=state.rst_glr, quality_low=int(low), quality_high=int(high),
        number=bool(state.rst_number), **{field: int(state[f"rst_{field}"]) for field in STEP_FIELDS}).to_dict())


def estimate_caption(spec: restore.RestoreSpec | None) -> float | None:
    if spec is None:
        return None
    seconds, device = lab_estimate(spec, restore.estimate_seconds, restore.readable_runs, restore.KIND)
    st.caption(tr("device.measuring") if seconds is None else
               tr("restore.estimate", size=spec.size, crops=spec.train_crops, time=duration(seconds, language()),
                  device=device))
    if seconds is not None and spec.preset == "lecture" and device == "CPU":
        st.warning(tr("restore.lecture_on_cpu"), icon="🐢")
    return seconds


def train_tab() -> None:
    st.write(tr("restore.train_intro"))
    settings, about = st.columns([1, 1], gap="large")
    with settings:
        if st.session_state.get("rst_encoder") not in available_encoders():
            st.session_state.rst_encoder = available_encoders()[0]
        st.radio(tr("mnist.preset"), restore.PRESETS, key="rst_preset", horizontal=True, on_change=apply_preset,
                 format_func=lambda p: tr(f"restore.preset.{p}"))
        st.caption(tr("restore.steps_per_stage"))
        columns = st.columns(4)
        for column, field in zip(columns, STEP_FIELDS):
            column.number_input(tr(f"restore.{field}"), 0, restore.MAX_STEPS, step=10, key=f"rst_{field}",
                                help=tr(f"restore.{field}_help"))
        left, right = st.columns(2)
        left.select_slider(tr("restore.lr"), LR_CHOICES, key="rst_lr", format_func=lambda v: f"{v:g}",
                           help=tr("restore.lr_help"))
        right.select_slider(tr("restore.gan_lr"), GAN_LR_CHOICES, key="rst_glr", format_func=lambda v: f"{v:g}",
                            help=tr("restore.gan_lr_help"))
        sets = photo_sets()
        if st.session_state.get("rst_photos") not in sets:
            st.session_state.rst_photos = restore_data.SHIPPED
        st.selectbox(tr("restore.photos"), sets, key="rst_photos", help=tr(
            "restore.photos_help", folder=str(restore_data.folders_dir())),
            format_func=lambda s: tr("restore.photos.shipped", count=len(restore_data.SHIPPED_FILES),
                                         held=len(restore_data.VALIDATION_PHOTOS)) if s == restore_data.SHIPPED else s)
        st.checkbox(tr("restore.train_encoder"), key="rst_tenc", help=tr("restore.train_encoder_help"))
        st.caption(tr("restore.network_line", encoder=tr(f"restore.encoder.{st.session_state.rst_encoder}"),
                      upsample=tr(f"restore.upsample.{st.session_state.rst_up}"),
                      feature=tr(f"style.backbone.{restore.preset_spec().feature_backbone}")))
        spec = checked(spec_from_widgets)
        seconds = estimate_caption(spec)
        watching = train_and_cancel("rst", restore.KIND, spec, tr("restore.train"), seconds)
    with about:
        st.markdown(tr("restore.stages_about"))
    st.divider()
    live_panel(watching, spec)
    with st.expander(tr("mnist.code")):
        stage = st.radio(tr("restore.code_stage"), restore.STAGES, key="rst_code", horizontal=True,
                         format_func=lambda s: tr(f"restore.stage.{s}"))
        st.code(restore_snippet(stage, restore.preset_spec().feature_backbone), language="python")


def progress_text(latest: dict) -> str:
    stage = latest.get("stage", "bicubic")
    return tr("restore.progress", step=latest["step"], total=latest["total_steps"], eta=latest.get("eta", 0),
              stage=tr(f"restore.stage.{stage}") if stage in restore.STAGES else stage)


def finished_text(result: dict) -> str:
    return tr("restore.finished", seconds=result["seconds"], device=result["device"])


def stage_labels() -> dict[str, str]:
    return {stage: tr(f"restore.stage.{stage}") for stage in restore.STAGES}


def live_panel(watching: bool, spec: restore.RestoreSpec | None) -> None:
    @st.fragment(run_every=LIVE_REFRESH_SECONDS if watching else None)
    def panel() -> None:
        run_id = st.session_state.get("rst_run_id")
        if not run_id:
            st.info(tr("restore.press_train"), icon="👆")
            return
        view = cached_run_view("rst", run_id)
        status = show_run_state(view, progress_text, finished_text, run_key="rst_run_id", polling=watching)
        if status is None:
            return
        if spec is not None and status["spec"] != spec.to_dict():
            run_spec = restore.RestoreSpec(**{k: v for k, v in status["spec"].items() if k in spec.to_dict()})
            st.caption(tr("restore.other_settings", run=run_id, preset=tr(f"restore.preset.{run_spec.preset}"),
                          steps=sum(run_spec.stage_steps(s) for s in restore.STAGES)))
        picture, charts = st.columns([1, 1.6], gap="large")
        with picture:
            shown = scrubbed_picture(view, "rst_scrub", tr("restore.scrubber"),
                                     lambda step: tr("restore.at_step", step=step), tr("restore.scrubber_help"))
            if shown:
                st.image(shown[0], width="stretch", caption=tr("restore.triptych_caption", step=shown[1]))
                st.download_button(tr("style.download_png"), shown[0], file_name=f"restore-{run_id}-{shown[1]}.png",
                                   mime="image/png", key="rst_png", on_click="ignore")
        frame = view.frame(("step",))
        with charts:
            if "stage" in frame:
                loss_tab, quality_tab = st.tabs([tr("restore.chart.losses"), tr("restore.chart.quality")])
                labels = {**stage_labels(), **{key: tr(f"restore.chart.{key}") for key in LOSS_LABEL_KEYS
                                               if key not in restore.STAGES}}
                loss_tab.plotly_chart(losses_figure(frame, labels), width="stretch", key="rst_losses")
                loss_tab.caption(tr("restore.losses_caption"))
                labels = {**stage_labels(), **{key: tr(f"restore.chart.{key}") for key in QUALITY_LABEL_KEYS
                                               if key not in restore.STAGES}}
                quality_tab.plotly_chart(quality_figure(frame, labels), width="stretch", key="rst_quality_chart")
                quality_tab.caption(tr("restore.quality_caption"))
        if view.result:
            labels = {**stage_labels(), "bicubic": tr("restore.chart.bicubic"), "stage": tr("restore.column.stage"),
                      "psnr": tr("restore.chart.psnr"), "ssim": tr("restore.chart.ssim")}
            st.dataframe(stage_table(view.result, labels), hide_index=True, width=480, column_config={
                labels["psnr"]: st.column_config.NumberColumn(format="%.2f"),
                labels["ssim"]: st.column_config.NumberColumn(format="%.3f")})
            st.caption(verdict(view.result))
        if watching and not view.active:
            st.rerun()  # the run ended: the whole page, so that the button is enabled again

    panel()


def verdict(result: dict) -> str:
    """A sentence on the numbers: did the U-Net beat bicubic, and which stage won PSNR."""
    stages = result.get("stages", {})
    if not stages:
        return ""
    best = max(stages, key=lambda s: stages[s]["psnr"])
    base = result["bicubic"]["psnr"]
    return tr("restore.verdict", best=tr(f"restore.stage.{best}"), psnr=stages[best]["psnr"], bicubic=base,
              gain=stages[best]["psnr"] - base)


# ----- 4. restore your photo ----------------------------------------------------------------------------------
def finished_runs() -> list[dict]:
    return [run for run in restore.readable_runs(visible_runs(restore.KIND)) if run.get("state") == "finished"]


@st.cache_resource(show_spinner=False, max_entries=2)
def trained_model(run_id: str):
    status = job_manager().status(run_id)
    weights = job_manager().weights(run_id)
    if status is None or weights is None:
        return None
    return restore.trained_unet(status["spec"], weights)


def run_label(run: dict) -> str:
    result = run.get("result") or {}
    stages = result.get("stages", {})
    done = " → ".join(tr(f"restore.stage.{s}") for s in stages)
    gain = max((v["psnr"] for v in stages.values()), default=0) - result.get("bicubic", {}).get("psnr", 0)
    return tr("restore.run_label", preset=tr(f"restore.preset.{run['spec']['preset']}"), stages=done or "–",
              gain=gain, when=when(run.get("created")))


def restore_tab() -> None:
    st.write(tr("restore.restore_intro"))
    runs = finished_runs()
    if not runs:
        st.info(tr("restore.no_runs"), icon="👆")
        return
    ids = [run["id"] for run in runs]
    if st.session_state.get("rst_model") not in ids:
        current = st.session_state.get("rst_run_id")
        st.session_state.rst_model = current if current in ids else ids[0]
    settings, pictures = st.columns([1, 3], gap="large")
    with settings:
        by_id = {run["id"]: run for run in runs}
        run_id = st.selectbox(tr("restore.model"), ids, key="rst_model", format_func=lambda r: run_label(by_id[r]))
        key = picture_picker(tr("restore.photo"), "rst_rphoto", "photo", uploads=UPLOADS)
        st.number_input(tr("restore.seed"), 0, 2**31 - 1, key="rst_rseed", help=tr("restore.seed_help"))
    model = trained_model(run_id)
    if model is None:
        st.warning(tr("restore.weights_missing"), icon="⚠️")
        return
    spec = restore.spec_from_dict(by_id[run_id]["spec"])
    with st.spinner(tr("restore.restoring")):
        made = restored_photo(run_id, key, int(st.session_state.rst_rseed))
    with pictures:
        columns = st.columns(3)
        for column, name in zip(columns, ("bicubic", "restored", "original")):
            column.image(made[name], width="stretch")
            numbers = made["quality"].get(name) or {}
            gain = numbers.get("psnr", 0) - made["quality"]["bicubic"]["psnr"]
            column.caption(tr(f"restore.photo_caption.{name}", gain=gain, **numbers))
        if made["quality"]["restored"]["psnr"] < made["quality"]["bicubic"]["psnr"]:
            st.info(tr("restore.below_bicubic"), icon="💡")
        columns[1].download_button(tr("restore.download_restored"), made["restored"], file_name=f"restored-{key}.png",
                                   mime="image/png", on_click="ignore")
        st.caption(tr("restore.photo_note", side=made["side"], shrink=spec.shrink, size=spec.size))


@st.cache_data(show_spinner=False, max_entries=16)
def restored_photo(run_id: str, key: str, seed: int) -> dict:
    model = trained_model(run_id)
    spec = restore.spec_from_dict(job_manager().status(run_id)["spec"])
    made = restore.restore_photo(model, spec, load_picture(key), seed)
    return {"bicubic": tensor_png(made["bicubic"]), "restored": tensor_png(made["restored"]),
            "original": tensor_png(made["original"]), "quality": made["quality"],
            "side": min(made["original"].shape[1:])}
