"""Home: the lessons as a map of labs."""
import streamlit as st

from core.labs import LABS
from ui.common import device_line, tr

st.title(tr("home.title"))
st.write(tr("home.intro"))
st.info(device_line(), icon="🖥️")

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
