"""The pages people use (/signup, /login, /logout, /account, /verify-email) and the token endpoints
(POST /v1/auth/token, /v1/auth/refresh), on the accounts service's self-service RPCs.

Every posted form is checked (edge.sessions.check_form: origin and token); a login always gets a new
session (the browser's previous one ends). A page whose session expired, was logged out or belongs to
a disabled user answers the login page with the reason (401). Secrets are never logged: a new API
key's secret appears once, in the answer to the form that created it (not cached), and nowhere else.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from edge.auth import Principal
from edge.clients import Clients, ServiceClients, call
from edge.endpoints.account import pages, translate
from edge.endpoints.account.protocol import RefreshRequest, TokenRequest, TokenResponse
from edge.endpoints.account.translate import NOTICES, client_ip, user_agent
from edge.endpoints.videos.router import library
from edge.errors import APIError, error_responses
from edge.routing import LeanRoute
from edge.sessions import (
    check_form,
    clear_session_cookie,
    ensure_form_cookie,
    form_cookie_token,
    require_same_origin,
    session_form_token,
    session_token,
    set_session_cookie,
)
from univence.accounts.v1 import accounts_pb2 as pb

router = APIRouter(route_class=LeanRoute)
PAGE = {"include_in_schema": False}
FormText = Annotated[str, Form(max_length=1024)]
RPC_TIMEOUT = 30
USAGE_ROWS = 50
VIDEOS = 20


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# -- the static files ------------------------------------------------------------------------------------

@router.get(pages.STATIC_PREFIX + "{name}", **PAGE)
async def static(name: str) -> Response:
    return pages.static_file(name)


# -- sign-up and login ----------------------------------------------------------------------------------

def _anonymous_page(request: Request, template: str, status: int = 200, error: APIError | None = None,
                    **context) -> Response:
    """A page with the login/sign-up form, its token in the form cookie."""
    token = form_cookie_token(request)
    if error is not None:
        response = pages.error_page(template, error, csrf_token=token, **context)
    else:
        response = pages.render(template, status, csrf_token=token, **context)
    ensure_form_cookie(request, response, token)
    return response


async def _log_in(request: Request, clients: ServiceClients, email: str, password: str, target: str) -> Response:
    """A new session (ending the browser's previous one) in the cookie, then `target`."""
    previous = session_token(request)
    created = await call("accounts", clients.accounts.CreateSession, pb.CreateSessionRequest(
        email=email, password=password, client_ip=client_ip(request), user_agent=user_agent(request),
        previous_session_token=previous), timeout=RPC_TIMEOUT)
    if previous:
        request.app.state.authenticator.forget(previous)
    response = _see_other(target)
    set_session_cookie(request, response, created.session_token, translate.seconds_left(created.session.expire_time))
    return response


@router.get("/login", **PAGE)
async def login_page(request: Request, done: str = "") -> Response:
    return _anonymous_page(request, "login.html", title="Log in", notice=NOTICES.get(done, ""), email_value="")


@router.post("/login", **PAGE)
async def login(request: Request, clients: Clients, email: FormText = "", password: FormText = "",
                csrf_token: FormText = "") -> Response:
    try:
        check_form(request, csrf_token)
        return await _log_in(request, clients, email, password, "/account")
    except APIError as error:
        return _anonymous_page(request, "login.html", error=error, title="Log in", email_value=email)


@router.get("/signup", **PAGE)
async def signup_page(request: Request) -> Response:
    return _anonymous_page(request, "signup.html", title="Sign up", email_value="")


@router.post("/signup", **PAGE)
async def signup(request: Request, clients: Clients, email: FormText = "", password: FormText = "",
                 password_again: FormText = "", csrf_token: FormText = "") -> Response:
    try:
        check_form(request, csrf_token)
        if password != password_again:
            raise APIError(400, "the two passwords differ", param="password_again")
        signed = await call("accounts", clients.accounts.SignUp, pb.SignUpRequest(
            email=email, password=password, client_ip=client_ip(request)), timeout=RPC_TIMEOUT)
        if signed.verification_required:
            return pages.render("message.html", title="Check your email", heading="Check your email",
                                message=f"We have sent a link to {email.strip()}. Open it to confirm your "
                                        "address, then log in.")
        return await _log_in(request, clients, email, password, "/account?done=welcome")
    except APIError as error:
        return _anonymous_page(request, "signup.html", error=error, title="Sign up", email_value=email)


@router.get("/verify-email", **PAGE)
async def verify_email(request: Request, clients: Clients, token: str = "") -> Response:
    try:
        await call("accounts", clients.accounts.VerifyEmail, pb.VerifyEmailRequest(token=token[:256]),
                   timeout=RPC_TIMEOUT)
    except APIError as error:
        return _anonymous_page(request, "login.html", error=error, title="Log in", email_value="")
    return _anonymous_page(request, "login.html", title="Log in", email_value="",
                           notice="Your email address is confirmed: log in.")


# -- the session's pages ----------------------------------------------------------------------------------

async def _session(request: Request) -> tuple[str, Principal]:
    """The browser's session token and its user; APIError 401 when there is none or it no longer works."""
    token = session_token(request)
    if not token:
        raise APIError(401, "log in to see your account", "authentication_error", code="missing_session")
    return token, await request.app.state.authenticator.authenticate(token)


def _session_lost(request: Request, error: APIError) -> Response:
    """The login page saying why the session stopped (expired, logged out, disabled), the cookie cleared."""
    if error.code == "missing_session":
        return _see_other("/login")
    response = _anonymous_page(request, "login.html", error=error, title="Log in", email_value="")
    clear_session_cookie(request, response)
    return response


async def _account_page(request: Request, clients: ServiceClients, token: str, principal: Principal, *,
                        status: int = 200, **context) -> Response:
    accounts = clients.accounts
    leases = request.app.state.meter.leases
    if leases is not None:  # the charges this edge has not reported yet are on the page the user reads now
        await leases.sender.flush(2.0)
    balance, ledger, keys, videos, prices = await asyncio.gather(
        call("accounts", accounts.GetBalance, pb.GetBalanceRequest(user_id=principal.user_id), timeout=RPC_TIMEOUT),
        call("accounts", accounts.ListLedgerEntries, pb.ListLedgerEntriesRequest(
            user_id=principal.user_id, page_size=USAGE_ROWS), timeout=RPC_TIMEOUT),
        call("accounts", accounts.ListOwnApiKeys, pb.ListOwnApiKeysRequest(session_token=token), timeout=RPC_TIMEOUT),
        library(request, clients, principal.user_id, limit=VIDEOS),
        call("accounts", accounts.GetPriceTable, pb.GetPriceTableRequest(), timeout=RPC_TIMEOUT),
    )
    return pages.render(
        "account.html", status, title="Your account", email=principal.email, csrf_token=session_form_token(token),
        balance=translate.credits(balance.balance_mc), available=translate.credits(balance.available_mc),
        held=translate.credits(balance.held_mc), premium=balance.premium, keys=translate.key_rows(keys.api_keys),
        usage=translate.usage_rows(ledger.entries), videos=translate.video_rows(videos.data),
        more_videos=videos.has_more, prices=translate.price_rows(prices), discounts=translate.discounts(prices),
        **{"new_key": None, "new_secret": "", "password_error": "", **context})


@router.get("/account", **PAGE)
async def account(request: Request, clients: Clients, done: str = "") -> Response:
    try:
        token, principal = await _session(request)
        return await _account_page(request, clients, token, principal, notice=NOTICES.get(done, ""))
    except APIError as error:
        if error.status == 401:  # no session, or it ended (even while the page was being put together)
            return _session_lost(request, error)
        raise


async def _session_form(request: Request, csrf_token: str) -> tuple[str, Principal]:
    token, principal = await _session(request)
    check_form(request, csrf_token, token)
    return token, principal


@router.post("/account/keys", **PAGE)
async def create_key(request: Request, clients: Clients, name: Annotated[str, Form(max_length=200)] = "",
                     csrf_token: FormText = "") -> Response:
    try:
        token, principal = await _session_form(request, csrf_token)
        created = await call("accounts", clients.accounts.CreateOwnApiKey, pb.CreateOwnApiKeyRequest(
            session_token=token, name=name), timeout=RPC_TIMEOUT)
    except APIError as error:
        return _form_failed(request, error)
    # The one time the secret is shown: this answer, which is not cached (pages send no-store).
    return await _account_page(request, clients, token, principal, new_key=created.api_key,
                               new_secret=created.secret)


@router.post("/account/keys/{key_id}/revoke", **PAGE)
async def revoke_key(request: Request, clients: Clients, key_id: str, csrf_token: FormText = "") -> Response:
    try:
        token, _ = await _session_form(request, csrf_token)
        await call("accounts", clients.accounts.RevokeOwnApiKey, pb.RevokeOwnApiKeyRequest(
            session_token=token, key_id=key_id[:64]), timeout=RPC_TIMEOUT)
    except APIError as error:
        return _form_failed(request, error)
    return _see_other("/account?done=revoked")


@router.post("/account/password", **PAGE)
async def change_password(request: Request, clients: Clients, current_password: FormText = "",
                          new_password: FormText = "", new_password_again: FormText = "",
                          csrf_token: FormText = "") -> Response:
    try:
        token, principal = await _session_form(request, csrf_token)
    except APIError as error:
        return _form_failed(request, error)
    try:
        if new_password != new_password_again:
            raise APIError(400, "the two new passwords differ", param="new_password_again")
        changed = await call("accounts", clients.accounts.ChangePassword, pb.ChangePasswordRequest(
            session_token=token, current_password=current_password, new_password=new_password,
            client_ip=client_ip(request), user_agent=user_agent(request)), timeout=RPC_TIMEOUT)
    except APIError as error:
        if error.status == 401:
            return _session_lost(request, error)
        return await _account_page(request, clients, token, principal, status=error.status,
                                   password_error=pages.page_message(error))
    request.app.state.authenticator.forget(token)
    response = _see_other("/account?done=password")
    set_session_cookie(request, response, changed.session_token, translate.seconds_left(changed.session.expire_time))
    return response


def _form_failed(request: Request, error: APIError) -> Response:
    if error.status == 401:
        return _session_lost(request, error)
    return pages.error_page("message.html", error, title="Not done", heading="That did not work",
                            message="", link="/account", link_text="Back to your account")


@router.get("/logout", **PAGE)
async def logout_page(request: Request) -> Response:
    token = session_token(request)
    if not token:
        return _see_other("/login")
    return pages.render("logout.html", title="Log out", csrf_token=session_form_token(token))


@router.post("/logout", **PAGE)
async def logout(request: Request, clients: Clients, csrf_token: FormText = "") -> Response:
    token = session_token(request)
    if token:
        try:
            check_form(request, csrf_token, token)
        except APIError as error:
            return _form_failed(request, error)
        await call("accounts", clients.accounts.RevokeSession, pb.RevokeSessionRequest(session_token=token),
                   timeout=RPC_TIMEOUT)
        request.app.state.authenticator.forget(token)
    response = _see_other("/login?done=logged-out")
    clear_session_cookie(request, response)
    return response


# -- tokens ---------------------------------------------------------------------------------------------

TOKEN_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _credentials_refused(error: APIError) -> APIError:
    if error.status == 401:
        error.code = "invalid_credentials"
    return error


@router.post("/v1/auth/token", response_model=TokenResponse, tags=["auth"],
             summary="A short-lived JWT and a refresh token, for email and password or the session cookie",
             responses=error_responses(400, 401, 403, 429),
             # Email and password in the body need no credential; without them, the session cookie.
             openapi_extra={"security": [{}, {"SessionCookie": []}]})
async def issue_token(request: Request, response: Response, clients: Clients,
                      body: TokenRequest | None = None) -> TokenResponse:
    if body is not None and (body.email or body.password):
        grant = pb.IssueTokenRequest(password=pb.PasswordGrant(email=body.email, password=body.password),
                                     client_ip=client_ip(request))
    elif session_token(request):
        require_same_origin(request)
        grant = pb.IssueTokenRequest(session_token=session_token(request), client_ip=client_ip(request))
    else:
        raise APIError(401, "send {\"email\", \"password\"}, or call from a logged-in browser (session cookie)",
                       "authentication_error", code="missing_credentials")
    try:
        issued = await call("accounts", clients.accounts.IssueToken, grant, timeout=RPC_TIMEOUT)
    except APIError as error:
        raise _credentials_refused(error) from None
    response.headers.update(TOKEN_HEADERS)
    return translate.token_response(issued.tokens)


@router.post("/v1/auth/refresh", response_model=TokenResponse, tags=["auth"],
             summary="A new JWT and refresh token for a refresh token (each refresh token works once)",
             responses=error_responses(400, 401, 403))
async def refresh_token(body: RefreshRequest, response: Response, clients: Clients) -> TokenResponse:
    try:
        refreshed = await call("accounts", clients.accounts.RefreshToken,
                               pb.RefreshTokenRequest(refresh_token=body.refresh_token), timeout=RPC_TIMEOUT)
    except APIError as error:
        raise _credentials_refused(error) from None
    response.headers.update(TOKEN_HEADERS)
    return translate.token_response(refreshed.tokens)
