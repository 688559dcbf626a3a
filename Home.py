"""The entry point: language, device status, and the navigation between the labs."""
import streamlit as st

from core.i18n import LANGUAGES
from core.labs import LABS
from ui.common import (device_line, is_instructor, job_manager, language, remember_student, session_id, settle_imports,
                       shared_server, tr, wait_for_worker)

st.set_page_config(page_title="fast.ai lesson playground", page_icon="🧪", layout="wide")

if "lang" not in st.session_state:
    requested = st.query_params.get("lang")
    st.session_state.lang = requested if requested in LANGUAGES else "en"

try:
    job_manager()  # start the worker now, so that it has warmed up when Train is pressed
    settle_imports()
except ValueError as error:  # a deployment setting that makes no sense (PLAYGROUND_RAY_*)
    st.error(str(error), icon="🛠️")
    st.stop()
with st.sidebar:
    st.selectbox("Language · 语言", list(LANGUAGES), format_func=LANGUAGES.get, key="lang")
    st.caption(device_line())
    if shared_server() and not is_instructor():
        st.caption(tr("teach.you_are", id=session_id()[:6]))
    remember_student()
    wait_for_worker()
if language() != "en":
    st.query_params["lang"] = language()
elif "lang" in st.query_params:
    del st.query_params["lang"]

pages = [st.Page("app_pages/home.py", title=tr("nav.home"), icon="🏠", default=True)]
pages += [
    st.Page(lab.page, title=tr(f"lab.{lab.key}.title"), icon=lab.icon, url_path=lab.key)
    for lab in LABS if lab.page
]
pages.append(st.Page("app_pages/instructor.py", title=tr("nav.instructor"), icon="🧑‍🏫", url_path="instructor"))
st.navigation(pages).run()
