"""Who is asking. In production a trusted proxy header (an OIDC-authenticating load balancer) or
Streamlit's own OIDC login supplies the identity; in dev mode the user types a name once, kept in
the page address so a reload keeps it."""

from dataclasses import dataclass

import streamlit as st

from pipeline.settings import Settings

NAME_MAX_CHARS = 64


@dataclass(frozen=True)
class User:
    name: str
    is_admin: bool
    is_expert: bool = False
    is_reviewer: bool = False


def _identify(settings: Settings) -> str | None:
    if settings.user_header:
        return st.context.headers.get(settings.user_header) or None
    if not settings.dev_mode:
        return st.user.get("email") if st.user.is_logged_in else None
    return st.query_params.get("user") or None


def current_user(settings: Settings) -> User:
    """The signed-in user; otherwise shows how to sign in and stops the page."""
    name = _identify(settings)
    if name:
        return User(
            name=name,
            is_admin=name in settings.admins,
            is_expert=name in settings.experts,
            is_reviewer=name in settings.reviewers,
        )
    if settings.user_header:
        st.error(f"No identity arrived in the {settings.user_header} header: open the app through the sign-in proxy.")
    elif not settings.dev_mode:
        st.button("Log in", on_click=st.login, type="primary")
    else:
        _ask_name()
    st.stop()


def _ask_name() -> None:
    with st.form("who"):
        st.write("Development mode: tell us your name once so your conversations and feedback are yours.")
        name = st.text_input("Your name", max_chars=NAME_MAX_CHARS)
        if st.form_submit_button("Start", type="primary"):
            if name.strip():
                st.query_params["user"] = name.strip()
                st.rerun()
            st.error("Type a name to start.")
