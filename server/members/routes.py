import asyncio
from typing import Annotated, Literal

from litestar import Controller, Request, Response, get, patch, post
from litestar.datastructures import UploadFile
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from server.accounts.schemas import InviteOut
from server.accounts.services import create_invite
from server.core.context import Ctx
from server.core.downloads import PNG, SVG, XLSX, content_disposition, file_operation
from server.core.errors import APIError, forbidden
from server.core.qr import card_svg, qr_png
from server.members import importer, services
from server.members.schemas import ImportOut, MemberIn, MemberOut, MemberPatch
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

    @post(
        "/import", status_code=200, request_max_body_size=importer.MAX_BYTES + 256 * 1024,
        summary="Import members from xlsx/csv (multipart field `file`, or the raw file as text/csv or xlsx); all or nothing",
        description=(
            "Columns (Chinese headers): 姓名, 手机号, 所在支部 (name or org id in my subtrees) required; 党员类型 (正式/预备), "
            "入党日期, 转正日期, 性别, 出生日期, 身份证号, 标签 optional. `dry_run=true` (default) only checks: "
            "200 `{ok, dry_run, rows, created, error_count, errors: [{row, column, message}]}`. `dry_run=false` imports "
            "every row in one transaction (201) or nothing (422 `import_invalid` with the same error list). "
            "Files over 5 MiB or 10 000 rows: 413."
        ),
    )
    async def import_members(
        self, request: Request, ctx: Ctx, dry_run: Annotated[bool, QueryParameter(description="only check (default)")] = True,
    ) -> Response[ImportOut]:
        importer.require_manager(request.user)
        content = await _upload(request)
        result = await importer.import_members(ctx, request.user, content, dry_run=dry_run)
        return Response(result, status_code=201 if result.created else 200, headers={"Cache-Control": "no-store"})

    @get("/import/template.xlsx", media_type=XLSX, summary="The import template: 党员信息 (headers), 填写说明, 组织列表 (my orgs with ids)")
    async def import_template(self, request: Request, ctx: Ctx) -> Response[bytes]:
        body = await importer.template(ctx, request.user)
        headers = {
            "Content-Disposition": content_disposition("党员导入模板.xlsx", "member-import-template.xlsx"),
            "Cache-Control": "private, no-store",
        }
        return Response(body, media_type=XLSX, headers=headers)

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

    @get(
        "/{member_id:int}/card", operation_class=file_operation(SVG, PNG),
        summary="Member card with QR for staff to scan (SVG card or PNG QR)",
    )
    async def card(
        self, request: Request, ctx: Ctx, member_id: FromPath[int], format: FromQuery[Literal["svg", "png"]] = "svg"
    ) -> Response[bytes]:
        member, _ = await services.visible_member(ctx, request.user, member_id)
        url = ctx.tokens.qr_url(await services.card_token(ctx, member_id))
        headers = {"Cache-Control": "private, no-store"}
        if format == "png":
            return Response(await asyncio.to_thread(qr_png, url), media_type=PNG, headers=headers)
        body = await asyncio.to_thread(card_svg, member.name, member.org_name, url)
        return Response(body, media_type=SVG, headers=headers)


async def _upload(request: Request) -> bytes:
    """The file of a multipart form (field ``file``) or the raw body (text/csv or the xlsx type)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if media_type == "multipart/form-data":
            form = await request.form()
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise APIError(400, "file_missing", "请在表单字段 file 中上传 xlsx 或 csv 文件")
            content = await upload.read()
        elif media_type in importer.XLSX_TYPES or media_type in importer.CSV_TYPES or media_type == "application/octet-stream":
            content = await request.body()
        else:
            raise APIError(415, "unsupported_media_type", "请上传 xlsx 或 csv 文件（multipart 字段 file，或 text/csv / xlsx 请求体）")
    except HTTPException as exc:
        if exc.status_code == 413:
            raise importer.too_large() from exc
        raise APIError(400, "bad_upload", "上传内容不完整或格式不正确，请重新上传") from exc
    if len(content) > importer.MAX_BYTES:
        raise importer.too_large()
    if not content.strip():
        raise APIError(400, "empty_file", "上传的文件是空的")
    return content
