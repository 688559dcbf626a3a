"""The style lab, run by AppTest: each tab draws from the offline backbone, bad settings and junk links are
explained, an upload becomes the chosen picture, and a short transfer run shows its frames, chart and PNG."""
import io

from PIL import Image

from tests.app.test_pages import click, open_page, texts
from tests.unit.conftest import wait_for

PAGE = "app_pages/style_lab.py"


def everything(app) -> str:
    return " ".join(texts(app.markdown) + texts(app.caption) + texts(app.info) + texts(app.success)
                    + texts(app.warning))


def button(app, label: str):
    return next(b for b in app.button if b.label.startswith(label))


def test_the_gram_tab_names_the_backbone_and_fills_in_the_shapes():
    app = open_page(PAGE)
    assert "Style transfer" in app.title[0].value and not app.error
    assert "In use: MobileNetV2 with its real ImageNet weights" in everything(app)
    assert "The first 8 of 32 feature maps, each 28 × 28" in everything(app)  # block 3 of a 224 px picture
    assert r"\mathbb{R}^{32\times 784}" in app.get("latex")[0].value  # the formula with this layer's shapes
    assert len(app.get("plotly_chart")) == 3  # the Gram matrix, its 19 × 19 corner, the distances
    app.select_slider(key="sty_layer").set_value(5).run()
    assert "The first 8 of 320 feature maps, each 7 × 7" in everything(app)


def test_the_shuffle_tab_shows_the_gram_matrix_changing_less_than_the_content():
    app = open_page(PAGE, tab="shuffle", pieces="4")
    caption = next(c for c in texts(app.caption) if c.startswith("At block"))
    assert "times less" in caption and not app.error
    app.slider(key="sty_pieces").set_value(1).run()
    assert "Move the slider above 1" in everything(app)


def test_junk_in_the_link_is_named_and_replaced_by_defaults():
    app = open_page(PAGE, tab="transfer", content="upload:../../../etc/passwd", w="1,1,x,1,1", backbone="vgg99",
                    steps="40")
    warnings = " ".join(texts(app.warning))
    assert all(f"setting '{name}' was not usable" in warnings for name in ("content", "w", "backbone"))
    assert app.selectbox(key="sty_content").value == "chelsea" and app.number_input(key="sty_steps").value == 40


def test_bad_settings_say_what_to_change_and_disable_paint():
    app = open_page(PAGE, tab="transfer")
    app.text_input(key="sty_lr").set_value("-1").run()
    assert "above 0" in " ".join(texts(app.error)) and button(app, "▶ Paint").disabled
    app.text_input(key="sty_lr").set_value("0.5").run()
    for i in range(1, 6):
        app.number_input(key=f"sty_w{i}").set_value(0.0)
    app.run()
    assert "Every style layer has weight 0" in " ".join(texts(app.error)) and button(app, "▶ Paint").disabled


def test_an_upload_becomes_the_picture_and_a_broken_one_is_refused():
    app = open_page(PAGE)
    buffer = io.BytesIO()
    Image.new("CMYK", (300, 200), (0, 200, 0, 0)).save(buffer, format="JPEG")
    uploader = app.get("file_uploader")[0]
    uploader.upload("green.jpg", buffer.getvalue(), "image/jpeg").run()
    assert app.selectbox(key="sty_image").value.startswith("upload:") and not app.error
    app.get("file_uploader")[0].upload("notes.png", b"not a picture", "image/png").run()
    assert "not a picture that can be read" in " ".join(texts(app.error))


def test_a_short_transfer_shows_frames_losses_and_a_png_to_download():
    from ui.common import job_manager

    app = open_page(PAGE, tab="transfer", preset="quick", opt="adam", lr="0.03", steps="6")
    click(app, "▶ Paint")
    run_id = app.session_state["sty_run_id"]
    wait_for(lambda: job_manager().status(run_id)["state"] == "finished", "the run to finish", timeout=120)
    app.run()
    assert "Done: 6 evaluations" in " ".join(texts(app.success))
    assert any("After 6 evaluations" in c for image in app.get("image") for c in image.captions)
    assert app.get("plotly_chart") and app.select_slider(key="sty_scrub").value is not None
    assert any(b.label == "Download this picture (PNG)" for b in app.get("download_button"))
    assert "torch.optim.Adam([picture], lr=0.03)" in app.code[0].value


def test_a_link_to_a_rebuild_run_opens_the_layers_tab():
    from ui.common import job_manager

    app = open_page(PAGE, tab="layers", preset="quick", steps="3", rmode="style", rlayer="2")
    click(app, "▶ Rebuild from noise")
    run_id = app.session_state["rec_run_id"]
    wait_for(lambda: job_manager().status(run_id)["state"] == "finished", "the run to finish", timeout=120)
    reopened = open_page(PAGE, run=run_id)
    assert reopened.session_state["sty_tab"] == "layers" and "Done: 3 evaluations" in " ".join(texts(reopened.success))


def test_a_link_sets_each_blocks_style_weight_and_keeps_them():
    app = open_page(PAGE, tab="transfer", w="1,0.5,0,0,2")
    assert [app.number_input(key=f"sty_w{i}").value for i in range(1, 6)] == [1.0, 0.5, 0.0, 0.0, 2.0]
    app.number_input(key="sty_w3").set_value(0.25).run()
    assert app.query_params["w"] == "1,0.5,0.25,0,2"  # the link follows the boxes
