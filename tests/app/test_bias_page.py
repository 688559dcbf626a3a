"""The bias lab, run by AppTest: the COMPAS headline and pivot, Gender Shades, the two simulations, the link,
and the MNIST experiment with one digit made scarce (two real runs at a tiny size)."""
from tests.app.test_pages import click, open_page, texts
from ui.common import job_manager
from tests.app.test_schedule_page import wait_for

PAGE = "app_pages/bias_lab.py"


def metric_values(app) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for metric in app.metric:
        values.setdefault(metric.label, []).append(metric.value)
    return values


def table_with(app, column: str):
    """The first table on the page with this column."""
    return next(frame.value for frame in app.dataframe if column in frame.value.columns)


def test_the_compas_tab_reproduces_the_lessons_headline():
    app = open_page(PAGE)
    assert "Bias" in app.title[0].value and not app.error
    assert any("6,172 people" in caption for caption in texts(app.caption))
    metrics = metric_values(app)
    assert metrics["African-American"] == ["42.3%", "28.5%"]  # false-positive, then false-negative rate
    assert metrics["White (“Caucasian” in the data)"] == ["22.0%", "49.6%"]
    assert any("1.92× as often" in info for info in texts(app.info))


def test_changing_the_pivot_changes_the_table_and_the_link():
    app = open_page(PAGE)
    table = table_with(app, "% reoffended")
    assert set(table["Race"]) == {"African-American", "Asian", "Caucasian", "Hispanic", "Native American", "Other"}
    assert table.groupby("Race")["people"].sum()["Caucasian"] == 2103  # the margins are the group sizes
    app.selectbox(key="bias_by").set_value("sex").run()
    app.selectbox(key="bias_rows").set_value("decile_score").run()
    table = table_with(app, "% reoffended")
    assert set(table["Sex"]) == {"Female", "Male"} and len(table) == 20  # 2 sexes × 10 deciles
    assert app.query_params["by"] == "sex" and app.query_params["rows"] == "decile_score"
    rates = table_with(app, "false-positive rate")
    assert list(rates["Sex"]) == ["Female", "Male"] and {"false-positive rate", "false-negative rate"} <= set(rates)


def test_a_link_opens_a_tab_with_its_settings_and_names_junk():
    app = open_page(PAGE, tab="loop", rule="per_patrol", days="120", threshold="99", rate_a="junk")
    assert [w for w in texts(app.warning) if "threshold" in w] and [w for w in texts(app.warning) if "rate_a" in w]
    assert "Day 120: district A gets 5" in " ".join(texts(app.info))  # the correction keeps ~50%
    click(app, "Reset")
    assert "Day 0: district A gets 50%" in " ".join(texts(app.info))


def test_a_link_to_runs_this_server_does_not_know_names_them():
    app = open_page(PAGE, tab="model", base="ffffffffff", rare="0123456789")
    warnings = " ".join(texts(app.warning))
    assert "base" in warnings and "rare" in warnings
    assert "base" not in app.query_params and "rare" not in app.query_params
    assert any("Press Train both models" in info for info in texts(app.info))


def test_tiny_groups_are_flagged_as_too_few_to_judge():
    app = open_page(PAGE)
    assert any("Too few people to judge: Asian, Native American" in w for w in texts(app.warning))


def test_the_hot_spot_rule_runs_away():
    app = open_page(PAGE, tab="loop", days="100")
    info = " ".join(texts(app.info))
    assert "district A gets 80%" in info or "district A gets 20%" in info
    click(app, "+30 days")
    assert "Day 130" in " ".join(texts(app.info))


def test_gender_shades_and_amplification():
    app = open_page(PAGE, tab="shades")
    shades = table_with(app, "classifier")
    assert shades.set_index("classifier").loc["IBM", "Darker female"] == 34.7
    app = open_page(PAGE, tab="amplify")
    metrics = {metric.label: metric.value for metric in app.metric}
    predicted, true = (int(metrics[k].rstrip("%")) for k in ("Cooking pictures it calls \"woman\"",
                                                             "Women in the test cooking pictures"))
    assert predicted >= true + 10  # 67% in the pictures comes out as 80% and more
    app.slider(key="bias_cue").set_value(3.0).run()
    metrics = {metric.label: metric.value for metric in app.metric}
    assert abs(int(metrics["Cooking pictures it calls \"woman\""].rstrip("%")) - true) <= 2  # a clear cue: none


def test_the_scarce_digit_experiment_trains_two_models_and_compares_them():
    app = open_page(PAGE, tab="model", digit="3", keep="2")
    click(app, "▶ Train both models")
    assert app.session_state["bias_base_run_id"] and app.session_state["bias_rare_run_id"]
    wait_for(app, lambda a: "Error on digit 3" in metric_values(a), seconds=240)
    table = table_with(app, "True digit")
    errors = table.set_index("True digit")
    assert errors.loc[3, "3 at 2%: error, %"] > errors.loc[3, "baseline: error, %"] + 10
    assert app.query_params["rare"] == app.session_state["bias_rare_run_id"]
    rerun = open_page(PAGE, base=app.session_state["bias_base_run_id"], rare=app.session_state["bias_rare_run_id"],
                      digit="0", keep="50")
    assert "Error on digit 3" in metric_values(rerun)  # a link to the experiment shows it ...
    assert rerun.selectbox(key="bias_digit").value == 3 and rerun.slider(key="bias_keep").value == 2  # ... as trained


def test_a_finished_mnist_run_can_be_the_baseline():
    mnist = open_page("app_pages/mnist_lab.py", preset="quick", n_train="1000", epochs="1")
    click(mnist, "▶ Train")
    run_id = mnist.session_state["mnist_run_id"]
    wait_for(mnist, lambda a: any("Finished" in s for s in texts(a.success)), seconds=120)
    app = open_page(PAGE, tab="model", digit="7", keep="1")
    choices = app.selectbox(key="bias_size").options
    assert any(run_id[:6] in choice for choice in choices)
    app.selectbox(key="bias_size").set_value(run_id).run()
    click(app, "▶ Train both models")
    assert app.session_state["bias_base_run_id"] == run_id  # the chosen run is the baseline: not trained again
    wait_for(app, lambda a: "Error on digit 7" in metric_values(a), seconds=120)
    rare = job_manager().status(app.session_state["bias_rare_run_id"])["spec"]
    assert (rare["n_train"], rare["epochs"], rare["scarce_digit"], rare["scarce_keep"]) == (1000, 1, 7, 0.01)
