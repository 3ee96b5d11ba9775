from litestar import Controller, Request, get, patch, post
from litestar.params import FromPath, JSONBody

from server.core.context import Ctx
from server.orgs import services
from server.orgs.schemas import OrgIn, OrgOut, OrgPatch


class OrgController(Controller):
    path = "/orgs"
    tags = ["orgs"]

    @get("/", summary="Orgs I manage, and the orgs above me")
    async def list_orgs(self, request: Request, ctx: Ctx) -> list[OrgOut]:
        return await services.list_orgs(ctx, request.user)

    @post("/", summary="Create an org under a parent I administer")
    async def create_org(self, request: Request, ctx: Ctx, data: JSONBody[OrgIn]) -> OrgOut:
        return await services.create_org(ctx, request.user, data)

    @patch("/{org_id:int}", summary="Edit or move an org")
    async def update_org(self, request: Request, ctx: Ctx, org_id: FromPath[int], data: JSONBody[OrgPatch]) -> OrgOut:
        return await services.update_org(ctx, request.user, org_id, data)
