"""The Streamlit user interface: the chat page and the admin page."""
