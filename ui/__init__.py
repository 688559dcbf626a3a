"""Streamlit glue shared by the pages: the job manager, the language, the session."""
