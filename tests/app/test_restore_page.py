"""The restoration lab, run by AppTest: crappify draws a reproducible pair, the U-Net tab shows its shapes for each
upsampling, junk links and bad settings are explained, and a quick run trains the three stages, shows its
triptych, charts and table, and then restores a photo."""
import io

from PIL import Image

from tests.app.test_pages import click, open_page, texts
from tests.unit.conftest import wait_for

PAGE = "app_pages/restoration_lab.py"


def everything(app) -> str:
    return " ".join(texts(app.markdown) + texts(app.caption) + texts(app.info) + texts(app.success)
                    + texts(app.warning))


def test_crappify_draws_the_lessons_recipe_and_the_seed_reproduces_it():
    app = open_page(PAGE)
    assert "Image restoration" in app.title[0].value and not app.error
    first = next(c for c in texts(app.caption) if c.startswith("Crappified"))
    assert first.startswith("Crappified: 144×96 px")  # chelsea is 451×300: its short side to 96 px
    click(app, "🎲 New draw")
    assert app.number_input(key="rst_seed").value == 1
    app.number_input(key="rst_seed").set_value(0).run()
    assert next(c for c in texts(app.caption) if c.startswith("Crappified")) == first
    app.slider(key="rst_short").set_value(48).run()
    assert "×48 px" in next(c for c in texts(app.caption) if c.startswith("Crappified"))


def test_the_unet_tab_shows_the_shapes_for_every_upsampling_and_pads_odd_sizes():
    app = open_page(PAGE, tab="unet")
    table = app.dataframe[0].value
    assert table.iloc[-1, 1] == "3×128×128" and table.iloc[5, 1] == "320×4×4"  # the head; the deepest encoder stage
    for upsample in ("transposed", "nearest", "bilinear", "pixel_shuffle"):
        app.radio(key="rst_up").set_value(upsample).run()
        assert app.dataframe[0].value.iloc[-1, 1] == "3×128×128" and not app.error
    app.select_slider(key="rst_tsize").set_value(200).run()
    assert "pads it to 224 px" in everything(app) and app.dataframe[0].value.iloc[-1, 1] == "3×200×200"


def test_junk_in_the_link_is_named_and_replaced_by_defaults():
    app = open_page(PAGE, tab="train", photo="../../etc/passwd", up="magic", mse_steps="-5", lr="7",
                    photos="../../home")
    warnings = " ".join(texts(app.warning))
    assert all(f"setting '{name}' was not usable" in warnings for name in ("photo", "up", "mse_steps", "lr", "photos"))
    assert app.number_input(key="rst_mse_steps").value == 300 and not app.error


def test_every_stage_at_zero_says_what_to_change_and_disables_train():
    app = open_page(PAGE, tab="train")
    for field in ("mse_steps", "feature_steps", "gan_steps"):
        app.number_input(key=f"rst_{field}").set_value(0)
    app.run()
    assert "Every stage has 0 steps" in " ".join(texts(app.error))
    assert next(b for b in app.button if b.label.startswith("🪄 Train")).disabled


def test_an_upload_can_be_crappified_and_a_broken_one_is_refused():
    app = open_page(PAGE)
    buffer = io.BytesIO()
    Image.new("RGB", (320, 200), (30, 120, 200)).save(buffer, format="PNG")
    app.get("file_uploader")[0].upload("blue.png", buffer.getvalue(), "image/png").run()
    assert app.selectbox(key="rst_photo").value.startswith("upload:") and not app.error
    assert "Crappified: 154×96 px" in everything(app)
    app.get("file_uploader")[0].upload("broken.jpg", b"\xff\xd8\xff\xe0 cut short", "image/jpeg").run()
    assert "not a picture that can be read" in " ".join(texts(app.error))


def test_a_quick_run_trains_three_stages_then_restores_a_photo():
    from ui.common import job_manager

    app = open_page(PAGE, tab="train", preset="quick", mse_steps="4", feature_steps="2", critic_steps="2",
                    gan_steps="2")
    click(app, "🪄 Train")
    run_id = app.session_state["rst_run_id"]
    wait_for(lambda: job_manager().status(run_id)["state"] == "finished", "the run to finish", timeout=180)
    app.run()
    assert "Finished in" in " ".join(texts(app.success))
    assert any("Held-out crops after step" in c for image in app.get("image") for c in image.captions)
    assert len(app.get("plotly_chart")) == 2  # the losses and the PSNR & SSIM
    table = app.dataframe[0].value
    assert list(table.iloc[:, 0]) == ["bicubic", "MSE", "feature loss", "GAN"]
    assert "Best PSNR after" in everything(app)
    app.radio(key="rst_code").set_value("feature").run()
    assert "def feature_loss(restored, original)" in app.code[0].value
    app.radio(key="rst_preset").set_value("demo").run()  # the results shown are no longer those of the settings
    assert f"These are the results of run {run_id} (Quick (32 px), 10 steps)" in everything(app)

    restored = open_page(PAGE, tab="restore", rphoto="coffee")
    assert restored.selectbox(key="rst_model").value == run_id
    assert any(c.startswith("Restored by the U-Net: PSNR") for c in texts(restored.caption)) and not restored.error
    assert any(b.label == "Download the restored picture (PNG)" for b in restored.get("download_button"))
