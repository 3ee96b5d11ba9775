from typing import Annotated

from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from server.accounts import services
from server.accounts.schemas import (
    ActivateIn,
    GrantRole,
    LoginIn,
    LogoutIn,
    RefreshIn,
    RoleGrantIn,
    RoleGrantOut,
    TokenOut,
    UserOut,
)
from server.core.context import Ctx

PUBLIC = {"exclude_from_auth": True}


def client_ip(request: Request) -> str:
    """The socket peer, or the X-Forwarded-For hop just before a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    trusted = request.app.state.ctx.settings.trusted_proxies
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer in trusted:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        for hop in reversed(hops):
            if hop not in trusted:
                return hop
    return peer


@post("/auth/login", opt=PUBLIC, status_code=200, tags=["auth"], summary="Log in with phone and password")
async def login(request: Request, ctx: Ctx, data: JSONBody[LoginIn]) -> TokenOut:
    return await services.login(ctx, data.phone.strip(), data.password, client_ip(request))


@post("/auth/refresh", opt=PUBLIC, status_code=200, tags=["auth"], summary="Rotate a refresh token")
async def refresh(ctx: Ctx, data: JSONBody[RefreshIn]) -> TokenOut:
    return await services.refresh(ctx, data.refresh_token)


@post("/auth/logout", status_code=204, tags=["auth"], summary="Revoke the refresh token (or all of mine)")
async def logout(request: Request, ctx: Ctx, data: JSONBody[LogoutIn | None] = None) -> None:
    await services.logout(ctx, request.user.user_id, data.refresh_token if data else None)


@post("/auth/activate", opt=PUBLIC, status_code=200, tags=["auth"], summary="Set a password with an invite code")
async def activate(ctx: Ctx, data: JSONBody[ActivateIn]) -> TokenOut:
    return await services.activate(ctx, data.code.strip(), data.password)


@get("/me", tags=["auth"], summary="Who I am: member, roles and their scopes")
async def me(request: Request, ctx: Ctx) -> UserOut:
    return await services.user_out(ctx, request.user)


class GrantController(Controller):
    """Role grants, managed by admins within their org subtrees (out of scope is 404)."""

    path = "/grants"
    tags = ["auth"]

    @get("/", summary="Role grants within my admin subtrees (filter by org subtree, station, role or user)")
    async def list_grants(
        self,
        request: Request,
        ctx: Ctx,
        org_id: Annotated[int | None, QueryParameter(ge=1)] = None,
        station_id: Annotated[int | None, QueryParameter(ge=1)] = None,
        role: FromQuery[GrantRole | None] = None,
        user_id: Annotated[int | None, QueryParameter(ge=1)] = None,
    ) -> list[RoleGrantOut]:
        return await services.list_grants(ctx, request.user, org_id=org_id, station_id=station_id, role=role, user_id=user_id)

    @post("/", summary="Grant a role: staff on a station, secretary/admin on an org (the user must exist)")
    async def create_grant(self, request: Request, ctx: Ctx, data: JSONBody[RoleGrantIn]) -> RoleGrantOut:
        return await services.create_grant(ctx, request.user, data)

    @delete("/{grant_id:int}", summary="Revoke a role grant (takes effect at once)")
    async def delete_grant(self, request: Request, ctx: Ctx, grant_id: FromPath[int]) -> None:
        await services.delete_grant(ctx, request.user, grant_id)
