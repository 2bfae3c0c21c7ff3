"""Sign-in and access control: OAuth2 password flow, signed expiring tokens, argon2 password
hashes, role checks per endpoint with default deny, and the audit log.

Every route declares who may call it with :func:`allow` (roles) or :func:`public`; a route
that declares nothing is refused for everyone (``default_deny``), and
``tests/api/test_security.py`` checks that no route is left undeclared. A token is a JWT
(HS256) carrying the user id and role, valid ``WANGGE_TOKEN_MINUTES``; it is read from the
``Authorization: Bearer`` header or, for pages, from the ``wangge_token`` cookie.
"""

from __future__ import annotations

import html
import logging
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.deps import SessionDep
from gis.access import RESIDENT, ROLES, Principal
from gis.db.config import get_settings
from gis.db.queries.users import audit, get_user_by_name, load_principal
from gis.db.session import transaction

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
COOKIE = "wangge_token"
ACCESS_ATTR = "__wangge_access__"  # marks a dependency as an access declaration
_hasher = PasswordHasher()
_oauth2 = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)

router = APIRouter(prefix="/auth", tags=["auth"])
ANONYMOUS = Principal(0, "anonymous", "admin", None)


def hash_password(password: str) -> str:
    """An argon2id hash of a password."""
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches; constant time, never raises on a bad hash."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def _secret() -> str:
    """``WANGGE_SECRET_KEY``, else a random key kept in ``var/secret.key`` (mode 600)."""
    settings = get_settings()
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.var_dir) / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def create_token(user_id: int | str, role: str, *, now: datetime | None = None) -> str:
    """A signed token for one user (or ``resident:<phone key>``), valid ``token_minutes``."""
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "role": role,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(minutes=get_settings().token_minutes)).timestamp()),
    }
    return jwt.encode(claims, _secret(), algorithm=ALGORITHM)


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def current_principal(
    request: Request,
    session: SessionDep,
    bearer: Annotated[str | None, Depends(_oauth2)] = None,
) -> Principal:
    """The signed-in user, from the bearer token or the page cookie; 401 otherwise."""
    token = bearer or request.cookies.get(COOKIE)
    if not token and not get_settings().auth:
        return ANONYMOUS  # sign-in is switched off (WANGGE_AUTH=false): development only
    if not token:
        raise _unauthorised("sign in first: no token")
    try:
        claims = jwt.decode(token, _secret(), algorithms=[ALGORITHM])
    except jwt.ExpiredSignatureError:
        raise _unauthorised("the token has expired: sign in again") from None
    except jwt.PyJWTError:
        raise _unauthorised("the token is not valid") from None
    if claims.get("role") == RESIDENT:
        key = str(claims["sub"]).removeprefix("resident:")
        principal = Principal(0, f"resident:{key[:8]}", RESIDENT, frozenset(), subject=key)
        request.state.principal = principal
        return principal
    principal = load_principal(session, int(claims["sub"]))
    if principal is None:
        raise _unauthorised("the account does not exist or is disabled")
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def allow(*roles: str) -> Any:
    """Declare who may call an endpoint: a dependency admitting only these roles. A write
    (any method but GET/HEAD) by a read-only role is refused, and every admitted write is
    written to the audit log in the request's own transaction."""
    unknown = set(roles) - {*ROLES, RESIDENT}
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    admitted = frozenset(roles)

    def check(request: Request, session: SessionDep, principal: PrincipalDep) -> Principal:
        write = request.method not in ("GET", "HEAD", "OPTIONS")
        if not principal.may(admitted, write=write):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {principal.role!r} may not {request.method} {request.url.path}",
            )
        if write:
            audit(
                session,
                action="write",
                user_id=principal.user_id or None,
                username=principal.username,
                method=request.method,
                path=request.url.path,
            )
        return principal

    setattr(check, ACCESS_ATTR, admitted)
    return Depends(check)


def public(*, audit_writes: bool = True) -> Any:
    """Declare an endpoint open to everyone (sign-in, the API docs, Open311...). A write
    (any method but GET/HEAD) through it is written to the audit log in the request's own
    transaction, as ``public:<client address>``; the sign-in routes, which audit every
    sign-in themselves, pass ``audit_writes=False``."""
    if not audit_writes:

        def open_to_all() -> None:
            return None

    else:

        def open_to_all(request: Request, session: SessionDep) -> None:  # type: ignore[misc]
            if request.method in ("GET", "HEAD", "OPTIONS"):
                return None
            client = request.client.host if request.client else "unknown"
            audit(
                session,
                action="write",
                username=f"public:{client}"[:64],
                method=request.method,
                path=request.url.path,
            )
            return None

    setattr(open_to_all, ACCESS_ATTR, "public")
    return Depends(open_to_all)


def declared_access(route: Any) -> object | None:
    """The access declaration of a route (roles or "public"), or None."""
    dependant = getattr(route, "dependant", None)
    stack = [dependant] if dependant is not None else []
    while stack:
        dep = stack.pop()
        marker = getattr(dep.call, ACCESS_ATTR, None) if dep.call else None
        if marker is not None:
            return marker
        stack.extend(dep.dependencies)
    return None


def default_deny(request: Request) -> None:
    """App-wide dependency: refuse a route that declares no access (default deny)."""
    if not get_settings().auth:
        return
    route = request.scope.get("route")
    if route is None or declared_access(route) is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this endpoint is closed")


def api_routes(routes: list[Any]) -> list[Any]:
    """Every endpoint route, also those inside included routers."""
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            out.extend(api_routes(list(inner.routes)))
        elif hasattr(route, "dependant"):
            out.append(route)
    return out


class Token(BaseModel):
    """An OAuth2 bearer token."""

    access_token: str
    token_type: str = "bearer"
    role: str
    expires_in: int


class _FailedLogins:
    """Sign-in attempts per user name in a sliding minute: after five failures, 429."""

    def __init__(self, limit: int = 5, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self.failures: dict[str, deque[float]] = defaultdict(deque)

    def blocked(self, username: str, now: Callable[[], float] = time.monotonic) -> bool:
        q = self.failures[username]
        while q and now() - q[0] > self.window_s:
            q.popleft()
        return len(q) >= self.limit

    def fail(self, username: str) -> None:
        self.failures[username].append(time.monotonic())


failed_logins = _FailedLogins()


@router.post("/token", response_model=Token, summary="Sign in (OAuth2 password flow)")
def sign_in(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    _open: Annotated[None, public(audit_writes=False)] = None,
) -> Token:
    """Exchange user name and password for a bearer token. Five failures for one name
    within a minute block it for the rest of that minute."""
    name = form.username.strip()
    if failed_logins.blocked(name):
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed sign-ins; wait")
    user = get_user_by_name(session, name)
    if (
        user is None
        or not user["active"]
        or not verify_password(user["password_hash"], form.password)
    ):
        failed_logins.fail(name)
        with transaction() as own:  # kept although this request's transaction rolls back
            audit(own, action="login_failed", username=name[:64], path="/auth/token")
        raise _unauthorised("wrong user name or password")
    audit(session, action="login", user_id=user["id"], username=name, path="/auth/token")
    return Token(
        access_token=create_token(user["id"], user["role"]),
        role=user["role"],
        expires_in=get_settings().token_minutes * 60,
    )


LOGIN_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>网格 · 登录</title>
<style>
body{{font-family:"Noto Sans CJK SC",sans-serif;background:#f3f1ec;display:flex;
justify-content:center;align-items:center;min-height:100vh;margin:0}}
form{{background:#fff;padding:2em;border-radius:8px;box-shadow:0 2px 8px #0002;width:18em}}
h1{{font-size:1.3em;margin:0 0 1em}} label{{display:block;margin:.6em 0 .2em}}
input{{width:100%;padding:.5em;box-sizing:border-box;font-size:1em}}
button{{margin-top:1.2em;width:100%;padding:.6em;font-size:1em;background:#b22222;
color:#fff;border:0;border-radius:4px}} .err{{color:#b22222;margin:.5em 0 0}}
</style></head><body>
<form method="post" action="/auth/login">
<h1>网格化基层治理平台</h1>
<label for="u">用户名</label><input id="u" name="username" autocomplete="username" required>
<label for="p">密码</label>
<input id="p" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{next}">
{error}<button type="submit">登录</button>
</form></body></html>"""


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no open redirect to another host)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/login", include_in_schema=False, dependencies=[public()])
def login_page(next: str = "/", error: int = 0) -> HTMLResponse:
    """The sign-in form for the pages (offline: no script, no outside file)."""
    message = '<p class="err">用户名或密码错误</p>' if error else ""
    return HTMLResponse(LOGIN_PAGE.format(next=html.escape(_safe_next(next)), error=message))


@router.post("/login", include_in_schema=False, dependencies=[public(audit_writes=False)])
def login_form(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> RedirectResponse:
    """Sign in from the form: the token goes into an HttpOnly, SameSite=Strict cookie."""
    form = OAuth2PasswordRequestForm(username=username, password=password)
    try:
        token = sign_in(form, session)
    except HTTPException as exc:
        if exc.status_code != status.HTTP_401_UNAUTHORIZED:
            raise
        return RedirectResponse(
            f"/auth/login?error=1&next={quote(_safe_next(next))}", status.HTTP_303_SEE_OTHER
        )
    response = RedirectResponse(_safe_next(next), status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        COOKIE,
        token.access_token,
        max_age=token.expires_in,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", include_in_schema=False, dependencies=[public(audit_writes=False)])
def logout() -> RedirectResponse:
    """Forget the page cookie."""
    response = RedirectResponse("/auth/login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(COOKIE)
    return response
