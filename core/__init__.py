"""Everything of the playground that can be tested without Streamlit."""
