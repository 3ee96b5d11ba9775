import asyncio
from typing import Annotated, Literal

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from server.accounts.schemas import InviteOut
from server.accounts.services import create_invite
from server.core.context import Ctx
from server.core.errors import forbidden
from server.core.qr import card_svg, qr_png
from server.members import services
from server.members.schemas import MemberIn, MemberOut, MemberPatch
from server.members.schemas import MemberStatus


class MemberController(Controller):
    path = "/members"
    tags = ["members"]

    @get("/", summary="Search members in my scope")
    async def list_members(
        self,
        request: Request,
        ctx: Ctx,
        q: Annotated[str | None, QueryParameter(max_length=50)] = None,
        org_id: Annotated[int | None, QueryParameter(ge=1)] = None,
        status: FromQuery[MemberStatus | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
    ) -> list[MemberOut]:
        return await services.list_members(ctx, request.user, q=q, org_id=org_id, status=status, limit=limit, offset=offset)

    @post("/", summary="Create a member (and their not-yet-activated login)")
    async def create_member(self, request: Request, ctx: Ctx, data: JSONBody[MemberIn]) -> MemberOut:
        return await services.create_member(ctx, request.user, data)

    @get("/{member_id:int}", summary="One member")
    async def get_member(self, request: Request, ctx: Ctx, member_id: FromPath[int]) -> MemberOut:
        member, _ = await services.visible_member(ctx, request.user, member_id)
        return member

    @patch("/{member_id:int}", summary="Edit, transfer, change status, or revoke a lost card")
    async def update_member(self, request: Request, ctx: Ctx, member_id: FromPath[int], data: JSONBody[MemberPatch]) -> MemberOut:
        return await services.update_member(ctx, request.user, member_id, data)

    @post("/{member_id:int}/invite", status_code=201, summary="An activation code and link for the member")
    async def invite(self, request: Request, ctx: Ctx, member_id: FromPath[int]) -> InviteOut:
        await services.visible_member(ctx, request.user, member_id)
        if not request.user.is_staff_like:
            raise forbidden("只有工作人员可以生成激活码")
        user_id = await services.member_user_id(ctx, member_id)
        return await create_invite(ctx, user_id, request.user.user_id)

    @get("/{member_id:int}/card", summary="Member card with QR for staff to scan (SVG card or PNG QR)")
    async def card(
        self, request: Request, ctx: Ctx, member_id: FromPath[int], format: FromQuery[Literal["svg", "png"]] = "svg"
    ) -> Response[bytes]:
        member, _ = await services.visible_member(ctx, request.user, member_id)
        url = ctx.tokens.qr_url(await services.card_token(ctx, member_id))
        headers = {"Cache-Control": "private, no-store"}
        if format == "png":
            return Response(await asyncio.to_thread(qr_png, url), media_type="image/png", headers=headers)
        body = await asyncio.to_thread(card_svg, member.name, member.org_name, url)
        return Response(body, media_type="image/svg+xml", headers=headers)
