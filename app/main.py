"""The Streamlit entry point: identifies the user and routes to the chat page, to the admin page
for admins and to the review page of AI scores for reviewers. Run it with `plumb serve` (or `streamlit run app/main.py`)."""

import streamlit as st

from app import services
from app.chat_page import chat_page, restore_conversation
from app.document_page import document_page
from app.identity import current_user

# An emoji icon is drawn in the page itself; a Material icon is fetched from Google's font server,
# which an air-gapped site cannot reach and no page should call by itself.
st.set_page_config(page_title="Plumbline", page_icon="🔧", layout="wide")
user = current_user(services.settings())
restore_conversation(user)
pages = [st.Page(lambda: chat_page(user), title="Ask", icon=":material/forum:", url_path="ask", default=True)]
pages.append(st.Page(document_page, title="Document", url_path="document", visibility="hidden"))
if user.is_admin:
    from app.admin_page import admin_page

    pages.append(st.Page(lambda: admin_page(user), title="Admin", icon=":material/insights:", url_path="admin"))
if user.is_expert:
    from app.expert_page import expert_page

    pages.append(st.Page(lambda: expert_page(user), title="Expert", icon=":material/support_agent:", url_path="expert"))
if user.is_reviewer:
    from app.review_page import review_page

    pages.append(st.Page(lambda: review_page(user), title="Review", icon=":material/rule:", url_path="review"))
    from app.review_batch_page import review_batch_page

    pages.append(
        st.Page(lambda: review_batch_page(user), title="Transcripts", icon=":material/fact_check:", url_path="transcripts")
    )
st.navigation(pages).run()
