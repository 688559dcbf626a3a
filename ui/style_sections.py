"""The four tabs of the style lab (app_pages/style_lab.py): layout and widgets; everything else is in core."""
from __future__ import annotations

import math

import numpy as np
import streamlit as st
import torch

from core.errors import UserError
from core.snippets import style_snippet
from core.vision import backbone as backbones
from core.vision import style
from core.vision.images import PAINTINGS, PHOTOS, SHIPPED, save_upload, square_tensor, tensor_png
from core.vision.style_figures import LOSS_LABEL_KEYS, feature_maps_png, gram_heatmap, losses_figure, per_layer_bars
from ui.common import (LIVE_REFRESH_SECONDS, cached_run_view, checked, lab_estimate, scrubbed_picture, show_run_state,
                       show_user_error, tr, train_and_cancel, weights_download_button)

TABS = ("gram", "shuffle", "layers", "transfer")
EXPLORE_SIZE = 224  # the explorer's pictures: the size the networks were trained at
LESSON_SUBSET = 19  # the lesson shows a 19 × 19 corner of a Gram matrix
FEATURE_MAPS = 8
CONTENT_EXPONENTS, STYLE_EXPONENTS = tuple(range(0, 10)), tuple(range(4, 15))


# ----- shared pieces -----------------------------------------------------------------------------------------
def picture_name(key: str) -> str:
    if key in SHIPPED:
        return tr(f"style.picture.{key}")
    return tr("style.picture.upload", digest=key.split(":")[1][:6])


def picture_choices(kind: str | None, uploads: str) -> list[str]:
    """Shipped pictures (paintings first for a style, photos first for a content, photos alone for a photo) and
    this browser's uploads (kept under ``uploads``)."""
    shipped = {"style": PAINTINGS + PHOTOS, "photo": PHOTOS}.get(kind, PHOTOS + PAINTINGS)
    return list(shipped) + st.session_state.setdefault(uploads, [])


def picture_picker(label: str, key: str, kind: str | None = None, uploads: str = "sty_uploads") -> str:
    """A picture chooser with an upload beside it; an upload becomes the choice (and joins ``uploads``)."""
    choices = picture_choices(kind, uploads)
    if st.session_state.get(key) not in choices:
        choices.append(st.session_state[key])  # a link's upload kept on this server
    st.selectbox(label, choices, key=key, format_func=picture_name)
    uploaded = st.file_uploader(tr("style.upload"), type=["png", "jpg", "jpeg", "webp"], key=f"{key}_file",
                                help=tr("style.upload_help"))
    if uploaded is not None and st.session_state.get(f"{key}_seen") != uploaded.file_id:
        st.session_state[f"{key}_seen"] = uploaded.file_id
        try:
            added = save_upload(uploaded.getvalue())
        except UserError as error:
            show_user_error(error)
        else:
            if added not in st.session_state[uploads]:
                st.session_state[uploads].append(added)
            st.session_state[f"{key}_pending"] = added
            st.rerun()  # the selectbox is drawn: it takes the new value on the next run
    return st.session_state[key]


def apply_pending_uploads(keys: tuple[str, ...] = ("sty_image", "sty_other", "sty_content", "sty_style")) -> None:
    """An upload chosen on the last run becomes its picker's value before the picker is drawn."""
    for key in keys:
        if (pending := st.session_state.pop(f"{key}_pending", None)) is not None:
            st.session_state[key] = pending


def layer_names() -> list[str]:
    return [tr("style.layer_name", layer=i + 1) for i in range(style.LAYERS)]


def weight_exponents(backbone: str) -> tuple[int, int]:
    """The network's default content and style weights as the powers of ten the sliders show."""
    return round(math.log10(style.CONTENT_WEIGHT[backbone])), round(math.log10(style.STYLE_WEIGHT[backbone]))


@st.cache_data(show_spinner=False, max_entries=64)
def preview(key: str) -> bytes:
    """The picture as the network sees it: its centre square at EXPLORE_SIZE px."""
    return tensor_png(square_tensor(key, EXPLORE_SIZE))


@st.cache_data(show_spinner=False, max_entries=32)
def explore(backbone: str, key: str) -> list[dict]:
    """What the explorer draws of a picture: per block end, its shape, the first feature maps and the Gram matrix."""
    with torch.no_grad():
        found = style.activations(backbones.load(backbone), square_tensor(key, EXPLORE_SIZE))
    return [{"shape": tuple(f.shape[1:]), "maps": feature_maps_png(f[0], FEATURE_MAPS),
             "gram": style.gram_matrix(f)[0].numpy()} for f in found]


@st.cache_data(show_spinner=False, max_entries=32)
def distances(backbone: str, first: str, second: str) -> list[float]:
    net = backbones.load(backbone)
    return style.gram_distances(net, square_tensor(first, EXPLORE_SIZE), square_tensor(second, EXPLORE_SIZE))


@st.cache_data(show_spinner=False, max_entries=32)
def shuffled(backbone: str, key: str, pieces: int) -> tuple[bytes, list[float], list[float]]:
    picture, grams, contents = style.shuffle_effect(backbones.load(backbone), square_tensor(key, EXPLORE_SIZE),
                                                    pieces)
    return tensor_png(picture), grams, contents


def backbone_panel() -> str:
    """Which network the lab uses (the page says so), the online path to the lesson's VGG16-BN, and a warning
    on the untrained one."""
    names = backbones.available()
    if st.session_state.get("sty_backbone") not in names:
        st.session_state.sty_backbone = names[0]
    left, right = st.columns([2, 3])
    left.radio(tr("style.backbone"), names, key="sty_backbone", horizontal=True, on_change=apply_backbone,
               format_func=lambda name: tr(f"style.backbone.{name}"))
    chosen = st.session_state.sty_backbone
    right.caption(tr(f"style.backbone_about.{chosen}"))
    if chosen == "random":
        right.warning(tr("style.random_warning"), icon="🧪")
    if "vgg16_bn" not in names:
        weights_download_button(right, tr("style.download_vgg"), "vgg16_bn", "sty_download")
    return chosen


def apply_backbone() -> None:
    """The chosen network's loss weights (its activations are on their own scale)."""
    st.session_state.sty_cw, st.session_state.sty_sw = weight_exponents(st.session_state.sty_backbone)


# ----- 1. the Gram matrix ---------------------------------------------------------------------------------------
def gram_tab(backbone: str) -> None:
    st.write(tr("style.gram_intro"))
    choose, picture = st.columns([1, 1], gap="large")
    with choose:
        key = picture_picker(tr("style.picture"), "sty_image")
        layer = st.select_slider(tr("style.layer"), list(range(1, style.LAYERS + 1)), key="sty_layer",
                                 format_func=lambda i: tr("style.layer_name", layer=i), help=tr("style.layer_help"))
    try:
        found = explore(backbone, key)[layer - 1]
    except UserError as error:
        show_user_error(error)
        return
    channels, height, width = found["shape"]
    with picture:
        st.image(preview(key), width=200, caption=tr("style.explore_caption", size=EXPLORE_SIZE))
    st.markdown(f"**{tr('style.maps_title', count=FEATURE_MAPS, channels=channels, height=height, width=width)}**")
    st.image(found["maps"], width="stretch")
    elements = f"{channels * height * width:,}".replace(",", "{,}")  # a thousands comma, not a LaTeX separator
    st.latex(rf"G = \frac{{F\,F^\top}}{{C\cdot H\cdot W}},\quad F \in \mathbb{{R}}^{{C\times HW}} = "
             rf"\mathbb{{R}}^{{{channels}\times {height * width}}},\quad G \in \mathbb{{R}}^{{{channels}\times "
             rf"{channels}}},\quad C\cdot H\cdot W = {elements}")
    full, corner = st.columns([3, 2], gap="large")
    labels = {"channel": tr("style.channel"), "value": tr("style.gram_value")}
    with full:
        st.markdown(f"**{tr('style.gram_full', channels=channels)}**")
        st.plotly_chart(gram_heatmap(found["gram"], labels), width="stretch", key="sty_gram")
    with corner:
        subset = min(LESSON_SUBSET, channels)
        st.markdown(f"**{tr('style.gram_corner', n=subset)}**")
        st.plotly_chart(gram_heatmap(found["gram"][:subset, :subset], labels, height=320), width="stretch",
                        key="sty_gram_corner")
        diagonal = np.diag(found["gram"])
        st.caption(tr("style.gram_caption", top=int(diagonal.argmax()) + 1, share=diagonal.max() / diagonal.sum()))
    st.divider()
    st.markdown(f"**{tr('style.distance_title')}**")
    choose, chart = st.columns([1, 2], gap="large")
    with choose:
        other = picture_picker(tr("style.other_picture"), "sty_other", "style")
    try:
        values = distances(backbone, key, other)
    except UserError as error:
        show_user_error(error)
        return
    series = {tr("style.distance_series", a=picture_name(key), b=picture_name(other)): values}
    with chart:
        st.plotly_chart(per_layer_bars(series, layer_names(), {"layer": tr("style.block"),
                                                                       "axis": tr("style.distance_axis")}),
                        width="stretch", key="sty_distances")
        st.caption(tr("style.distance_caption"))


# ----- 2. shuffling: a Gram matrix forgets where ------------------------------------------------------------------
def shuffle_tab(backbone: str) -> None:
    st.write(tr("style.shuffle_intro"))
    choose, _ = st.columns([1, 1])
    with choose:
        key = picture_picker(tr("style.picture"), "sty_image")
    pieces = st.slider(tr("style.pieces"), 1, 16, key="sty_pieces", help=tr("style.pieces_help"))
    try:
        png, grams, contents = shuffled(backbone, key, pieces)
        original = preview(key)
    except UserError as error:
        show_user_error(error)
        return
    left, right, _ = st.columns([1, 1, 1])
    left.image(original, caption=tr("style.original"), width="stretch")
    if pieces == 1:
        right.info(tr("style.shuffle_one"), icon="👆")
        return
    right.image(png, caption=tr("style.shuffled", n=pieces * pieces), width="stretch")
    series = {tr("style.change_gram"): grams, tr("style.change_content"): contents}
    st.plotly_chart(per_layer_bars(series, layer_names(), {"layer": tr("style.block"),
                                                                   "axis": tr("style.change_axis")}, percent=True),
                    width="stretch", key="sty_shuffle")
    clearest = int(np.argmax(np.array(contents) / np.maximum(grams, 1e-12)))  # the block that shows it best
    st.caption(tr("style.shuffle_caption", layer=clearest + 1, content=contents[clearest], gram=grams[clearest],
                  times=contents[clearest] / max(grams[clearest], 1e-12)))


# ----- 3 and 4: runs that paint ------------------------------------------------------------------------------------
def apply_preset() -> None:
    spec = style.preset_spec(st.session_state.sty_preset, st.session_state.sty_backbone)
    st.session_state.update(sty_steps=spec.steps)


def apply_optimizer() -> None:
    st.session_state.sty_lr = f"{style.DEFAULT_LR[st.session_state.sty_opt]:g}"


def run_settings() -> None:
    """Size, optimizer, step size and length: shared by the layers tab and the transfer tab."""
    st.radio(tr("mnist.preset"), style.PRESETS, key="sty_preset", horizontal=True, on_change=apply_preset,
             format_func=lambda p: tr(f"style.preset.{p}"), help=tr("style.preset_help"))
    left, middle, right = st.columns(3)
    left.radio(tr("style.optimizer"), style.OPTIMIZERS, key="sty_opt", on_change=apply_optimizer,
               format_func=lambda o: tr(f"style.optimizer.{o}"), help=tr("style.optimizer_help"))
    middle.number_input(tr("style.steps"), step=10, key="sty_steps", help=tr("style.steps_help"))
    right.text_input(tr("style.lr"), key="sty_lr", help=tr("style.lr_help"))


def layer_weights() -> tuple[float, ...]:
    return tuple(float(st.session_state[f"sty_w{i}"]) for i in range(1, style.LAYERS + 1))


def spec_from_widgets(mode: str) -> style.StyleSpec:
    try:
        lr = float(st.session_state.sty_lr)
    except ValueError:
        raise UserError("style.lr_not_a_number", "The step size must be a number (got {lr}).",
                        lr=st.session_state.sty_lr) from None
    return style.spec_from_dict({
        "mode": mode, "content": st.session_state.sty_content, "style": st.session_state.sty_style,
        "backbone": st.session_state.sty_backbone, "preset": st.session_state.sty_preset,
        "size": style.PRESET_SIZE[st.session_state.sty_preset], "optimizer": st.session_state.sty_opt,
        "steps": int(st.session_state.sty_steps), "lr": lr, "content_weight": 10.0 ** st.session_state.sty_cw,
        "style_weight": 10.0 ** st.session_state.sty_sw, "layer_weights": layer_weights(),
        "content_layer": (st.session_state.sty_rlayer - 1) if mode == "content" else style.CONTENT_LAYER,
        "style_layers": st.session_state.sty_rlayer if mode == "style" else style.LAYERS,
        "start": st.session_state.sty_start if mode == "transfer" else "noise", "seed": 0})


def estimate_caption(spec: style.StyleSpec | None) -> float | None:
    if spec is None:
        return None
    seconds, device = lab_estimate(spec, style.estimate_seconds, style.readable_runs, style.KIND)
    st.caption(tr("device.measuring") if seconds is None else
               tr("style.estimate", steps=spec.steps, size=spec.size, seconds=max(seconds, 1), device=device))
    if seconds is not None and spec.size >= 512 and device == "CPU":
        st.warning(tr("style.large_on_cpu"), icon="🐢")
    return seconds


def layers_tab(backbone: str) -> None:
    st.write(tr("style.layers_intro"))
    settings, pictures = st.columns([1, 1], gap="large")
    with settings:
        mode = st.radio(tr("style.rebuild"), ("content", "style"), key="sty_rmode", horizontal=True,
                        format_func=lambda m: tr(f"style.rebuild.{m}"))
        st.select_slider(tr("style.rebuild_layer" if mode == "content" else "style.rebuild_upto"),
                         list(range(1, style.LAYERS + 1)), key="sty_rlayer",
                         format_func=lambda i: tr("style.layer_name", layer=i))
        run_settings()
        spec = checked(lambda: spec_from_widgets(mode))
        seconds = estimate_caption(spec)
        watching = train_and_cancel("rec", style.KIND, spec, tr("style.rebuild_button"), seconds)
    with pictures:
        key = "sty_content" if mode == "content" else "sty_style"
        picture_picker(tr("style.content" if mode == "content" else "style.style"), key, mode)
        st.image(preview(st.session_state[key]), width=200)
        st.caption(tr(f"style.rebuild_caption.{mode}"))
        if mode == "content" and st.session_state.sty_rlayer >= 4 and int(st.session_state.sty_steps) < 300:
            st.info(tr("style.deep_needs_more"), icon="⏳")
    st.divider()
    live_panel("rec", watching)


def transfer_tab(backbone: str) -> None:
    st.write(tr("style.transfer_intro"))
    pictures, settings = st.columns([1, 1], gap="large")
    with pictures:
        left, right = st.columns(2)
        with left:
            picture_picker(tr("style.content"), "sty_content", "content")
            st.image(preview(st.session_state.sty_content), width="stretch")
        with right:
            picture_picker(tr("style.style"), "sty_style", "style")
            st.image(preview(st.session_state.sty_style), width="stretch")
    with settings:
        left, right = st.columns(2)
        left.select_slider(tr("style.content_weight"), CONTENT_EXPONENTS, key="sty_cw",
                           format_func=lambda k: f"1e{k}", help=tr("style.content_weight_help"))
        right.select_slider(tr("style.style_weight"), STYLE_EXPONENTS, key="sty_sw",
                            format_func=lambda k: f"1e{k}", help=tr("style.style_weight_help"))
        st.caption(tr("style.layer_weights"))
        columns = st.columns(style.LAYERS)
        for i, column in enumerate(columns, start=1):
            column.number_input(tr("style.layer_name", layer=i), 0.0, 10.0, step=0.25, key=f"sty_w{i}")
        st.radio(tr("style.start"), style.STARTS, key="sty_start", horizontal=True,
                 format_func=lambda s: tr(f"style.start.{s}"), help=tr("style.start_help"))
        if st.session_state.sty_start == "noise" and int(st.session_state.sty_steps) < 150:
            st.caption(tr("style.noise_needs_more"))
        run_settings()
        spec = checked(lambda: spec_from_widgets("transfer"))
        seconds = estimate_caption(spec)
        watching = train_and_cancel("sty", style.KIND, spec, tr("style.paint"), seconds)
    st.divider()
    live_panel("sty", watching)
    with st.expander(tr("mnist.code")):
        st.code(style_snippet(backbone if backbone != "random" else "mobilenet_v2", 10.0 ** st.session_state.sty_cw,
                              10.0 ** st.session_state.sty_sw, layer_weights(), st.session_state.sty_opt,
                              spec.lr if spec else style.DEFAULT_LR[st.session_state.sty_opt],
                              style.PRESET_SIZE[st.session_state.sty_preset], int(st.session_state.sty_steps)),
                language="python")


def finished_text(result: dict) -> str:
    return tr("style.finished", steps=result["steps"], seconds=result["seconds"], device=result["device"])


def progress_text(latest: dict) -> str:
    return tr("style.progress", step=latest["step"], total=latest["total_steps"], eta=latest["eta"])


def live_panel(prefix: str, watching: bool) -> None:
    @st.fragment(run_every=LIVE_REFRESH_SECONDS if watching else None)
    def panel() -> None:
        run_id = st.session_state.get(f"{prefix}_run_id")
        if not run_id:
            st.info(tr("style.press_paint" if prefix == "sty" else "style.press_rebuild"), icon="👆")
            return
        view = cached_run_view(prefix, run_id)
        status = show_run_state(view, progress_text, finished_text, run_key=f"{prefix}_run_id", polling=watching)
        if status is None:
            return
        picture, chart = st.columns([1, 1.3], gap="large")
        with picture:
            shown = scrubbed_frame(view, f"{prefix}_scrub")
            if shown:
                st.image(shown[0], width="stretch", caption=tr("style.frame_caption", step=shown[1]))
                st.download_button(tr("style.download_png"), shown[0], file_name=f"style-{run_id}-{shown[1]}.png",
                                   mime="image/png", key=f"{prefix}_png", on_click="ignore")
        with chart:
            frame = view.frame(("step",))
            if not frame.empty:
                labels = {key: tr(f"style.chart.{key}") for key in LOSS_LABEL_KEYS}
                st.plotly_chart(losses_figure(frame, labels), width="stretch", key=f"{prefix}_chart")
                st.caption(tr(f"style.chart_caption.{status['spec'].get('mode', 'transfer')}"))
        if watching and not view.active:
            st.rerun()  # the run ended: the whole page, so that the button is enabled again

    panel()


def scrubbed_frame(view, key: str) -> tuple[bytes, int] | None:
    return scrubbed_picture(view, key, tr("style.scrubber"), lambda step: tr("style.at_evaluation", step=step),
                            tr("style.scrubber_help"))
