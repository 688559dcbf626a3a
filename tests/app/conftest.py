"""AppTest runs the real pages in this process; their job manager starts one worker process."""
import pytest
import streamlit as st

TIMEOUT = 120  # AppTest's default of 3 s is too short for a page that draws plotly figures on 2 busy cores


@pytest.fixture(scope="session", autouse=True)
def run_store(tmp_path_factory):
    """All app tests share one run store and one job manager (as a server would)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PLAYGROUND_DB", str(tmp_path_factory.mktemp("store") / "runs.sqlite"))
    yield
    from ui.common import job_manager

    job_manager().shutdown()
    job_manager.clear()
    st.cache_resource.clear()
    mp.undo()
