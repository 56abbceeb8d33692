"""The Streamlit entry point: identifies the user and routes to the chat page, and to the admin
page for admins. Run it with `plumb serve` (or `streamlit run app/main.py`)."""

import streamlit as st

from app import services
from app.chat_page import chat_page, restore_conversation
from app.identity import current_user

st.set_page_config(page_title="Plumbline", page_icon=":material/plumbing:", layout="wide")
user = current_user(services.settings())
restore_conversation(user)
pages = [st.Page(lambda: chat_page(user), title="Ask", icon=":material/forum:", url_path="ask", default=True)]
if user.is_admin:
    from app.admin_page import admin_page

    pages.append(st.Page(lambda: admin_page(user), title="Admin", icon=":material/insights:", url_path="admin"))
st.navigation(pages).run()
