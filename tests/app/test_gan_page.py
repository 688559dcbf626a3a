"""The GAN lab, run by AppTest: the DCGAN tab's recipe and settings, bad settings explained, a short real run
with its grid, health notes and interpolation, the CycleGAN tab's domains, a link to a CycleGAN run, and the
fade-in."""
from core.gan import cyclegan
from tests.app.test_pages import click, open_page, texts
from tests.unit.conftest import wait_for

PAGE = "app_pages/gan_lab.py"


def everything(app) -> str:
    return " ".join(texts(app.markdown) + texts(app.caption) + texts(app.info) + texts(app.success)
                    + texts(app.warning))


def image_captions(app) -> list[str]:
    return [caption for image in app.get("image") for caption in image.captions]


def train_button(app):
    return next(b for b in app.button if b.label.startswith("Train"))


def wait_for_state(app, run_id: str, state: str = "finished") -> None:
    from ui.common import job_manager

    wait_for(lambda: job_manager().status(run_id)["state"] == state, f"the run to be {state}", timeout=120)
    app.run()


def test_the_dcgan_tab_shows_the_recipe_and_the_networks_shapes():
    app = open_page(PAGE)
    assert "GANs" in app.title[0].value and not app.error
    assert "Adam, lr 2e-4, β1 0.5" in everything(app)
    table = app.dataframe[0].value
    assert list(table.iloc[:, 3])[:4] == ["128 × 4 × 4", "64 × 8 × 8", "32 × 16 × 16", "1 × 32 × 32"]
    assert not train_button(app).disabled
    app.radio(key="gan_loss").set_value("wgan").run()
    assert app.text_input(key="gan_lr").value == "0.0001" and app.number_input(key="gan_steps").value == 120
    assert "clipped to ±0.01" in everything(app)


def test_a_bad_learning_rate_says_what_to_change_and_disables_train():
    app = open_page(PAGE)
    app.text_input(key="gan_lr").set_value("fast").run()
    assert "must be a number" in " ".join(texts(app.error)) and train_button(app).disabled
    app.text_input(key="gan_lr").set_value("-2e-4").run()
    assert "above 0" in " ".join(texts(app.error)) and train_button(app).disabled
    app.text_input(key="gan_lr").set_value("2e-4").run()
    assert not app.error and not train_button(app).disabled


def test_junk_in_the_link_is_named_and_replaced_by_defaults():
    app = open_page(PAGE, loss="lsgan", width="7", alpha="3", steps="100")
    warnings = " ".join(texts(app.warning))
    assert all(f"setting '{name}' was not usable" in warnings for name in ("loss", "width", "alpha"))
    assert app.number_input(key="gan_steps").value == 100 and app.radio(key="gan_loss").value == "dcgan"


def test_a_short_dcgan_run_shows_its_grid_health_chart_and_interpolation():
    app = open_page(PAGE)
    app.number_input(key="gan_steps").set_value(5).run()
    app.select_slider(key="gan_width").set_value(8).run()
    click(app, "Train")
    wait_for_state(app, app.session_state["gan_run_id"])
    assert "Done: 5 steps" in " ".join(texts(app.success))
    assert any("The same 64 noise vectors at step" in caption for caption in image_captions(app))
    assert "Too early to judge: after 5 steps the classifier finds" in everything(app)
    assert app.get("plotly_chart") and app.number_input(key="gan_from").value == 1
    assert any("straight line between the two samples" in caption for caption in texts(app.caption))
    assert app.select_slider(key="gan_scrub").value is not None  # the saved grids, scrubbed


def test_the_cyclegan_tab_shows_the_synthetic_domains_and_explains_a_missing_horse2zebra():
    app = open_page(PAGE, tab="cycle")
    assert "Synthetic stand-in for horse2zebra" in everything(app) and not app.error
    assert "cycle consistency L1 × 10" in everything(app)
    app.radio(key="gan_source").set_value("horse2zebra").run()
    assert "horse2zebra" in " ".join(texts(app.error)) and "trainA/" in " ".join(texts(app.error))
    assert any(button.label.startswith("Download horse2zebra") for button in app.button)


def test_a_link_to_a_cyclegan_run_opens_the_cyclegan_tab_with_it():
    from ui.common import job_manager

    spec = {**cyclegan.preset_spec("quick").to_dict(), "steps": 2, "width": 4, "blocks": 1, "batch_size": 2}
    run_id = job_manager().submit(cyclegan.KIND, spec, "someone")
    wait_for(lambda: job_manager().status(run_id)["state"] == "finished", "the CycleGAN run", timeout=120)
    app = open_page(PAGE, run=run_id)
    assert app.session_state["gan_tab"] == "cycle" and app.session_state["cyc_run_id"] == run_id
    assert "Done: 2 steps" in " ".join(texts(app.success))
    assert any("A → B → A" in caption for caption in image_captions(app))


def test_the_fade_in_blends_the_old_and_new_outputs_with_the_formula():
    app = open_page(PAGE, tab="fade", alpha="0.25")
    assert not app.error and app.slider(key="gan_alpha").value == 0.25
    assert "0.75" in app.latex[0].value and "0.25" in app.latex[0].value
    app.slider(key="gan_alpha").set_value(1.0).run()
    assert "0.00" in app.latex[0].value and len(app.get("image")) == 3
