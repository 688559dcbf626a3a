"""Home: the runs the instructor pinned, and the lessons as a map of labs."""
import streamlit as st

from core.labs import LABS, lab_of_kind
from ui.common import device_line, job_manager, open_run, share_link, tr


def pinned_runs() -> None:
    """What the instructor pinned for everyone: a finished run to open, or one to watch replayed."""
    store = job_manager().store
    pinned = [(store.get_run(run_id), speed) for run_id, speed in store.pins().items()]
    pinned = [(run, speed, lab_of_kind(run["kind"])) for run, speed in pinned if run and lab_of_kind(run["kind"])]
    if not pinned:
        return
    st.subheader(tr("home.pinned"))
    for run, speed, lab in pinned:
        with st.container(border=True):
            text, button = st.columns([4, 1], vertical_alignment="center")
            accuracy = (run["result"] or {}).get("accuracy")
            text.markdown(f"**{lab.icon} {tr(f'lab.{lab.key}.title')}** · {run['id']} · {tr('state.' + run['state'])}"
                          + (f" · {accuracy:.2%}" if accuracy else ""))
            label = tr("home.replay", speed=speed) if speed else tr("home.open_run")
            if button.button(label, key=f"home_pin_{run['id']}", icon="▶️", width="stretch"):
                open_run(lab, run["id"], speed)


st.title(tr("home.title"))
st.write(tr("home.intro"))
st.info(device_line(), icon="🖥️")
pinned_runs()

columns = st.columns(3)
for i, lab in enumerate(LABS):
    with columns[i % 3].container(border=True):
        st.markdown(f"### {lab.icon} {tr(f'lab.{lab.key}.title')}")
        st.caption(tr("lab.lesson", part=lab.part, lesson=lab.lesson))
        st.write(tr(f"lab.{lab.key}.what"))
        if lab.page:
            st.page_link(lab.page, label=tr("home.open"), icon="▶️")
        else:
            st.caption(tr("home.not_built"))

share_link("")
