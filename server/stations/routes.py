import asyncio
from typing import Literal

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from server.core.context import Ctx
from server.core.downloads import JSON, PDF, PNG, SVG, content_disposition, file_operation
from server.core.qr import poster_pdf, poster_svg, qr_png, qr_svg
from server.stations import live, services
from server.stations.schemas import KioskIn, KioskOut, LiveOut, StationIn, StationOut, StationPatch

STATION_HINT = "党员扫码签到 · 到站登记"


class StationController(Controller):
    path = "/stations"
    tags = ["stations"]

    @get("/", summary="Stations I work at or manage (members: active stations of their tree)")
    async def list_stations(self, request: Request, ctx: Ctx) -> list[StationOut]:
        return await services.list_stations(ctx, request.user)

    @post("/", summary="Create a station (admin)")
    async def create_station(self, request: Request, ctx: Ctx, data: JSONBody[StationIn]) -> StationOut:
        return await services.create_station(ctx, request.user, data)

    @get("/{station_id:int}", summary="One station")
    async def get_station(self, request: Request, ctx: Ctx, station_id: FromPath[int]) -> StationOut:
        station, _ = await services.reachable_station(ctx, request.user, station_id)
        return station

    @patch("/{station_id:int}", summary="Edit a station; revoke_posters bumps the poster version")
    async def update_station(self, request: Request, ctx: Ctx, station_id: FromPath[int], data: JSONBody[StationPatch]) -> StationOut:
        return await services.update_station(ctx, request.user, station_id, data)

    @get(
        "/{station_id:int}/poster", operation_class=file_operation(SVG, PDF, PNG, JSON),
        summary="Station check-in poster: A4 SVG or PDF, the QR as PNG/SVG, or its token as JSON",
    )
    async def poster(
        self, request: Request, ctx: Ctx, station_id: FromPath[int],
        format: FromQuery[Literal["svg", "pdf", "png", "qr.svg", "json"]] = "svg",
    ) -> Response:
        station, _ = await services.reachable_station(ctx, request.user, station_id, manage=True)
        token = ctx.tokens.station_token(station.id, station.poster_version)
        url = ctx.tokens.qr_url(token)
        if format == "json":  # for screens that draw the code themselves (staff panel, kiosk)
            return Response({"station_id": station.id, "poster_version": station.poster_version, "token": token, "url": url})
        headers = {"Content-Disposition": f'inline; filename="station-{station.id}-v{station.poster_version}.{format}"'}
        subtitle = station.address or station.org_name
        if format == "pdf":
            body = await asyncio.to_thread(poster_pdf, station.name, subtitle, url, STATION_HINT)
            disposition = content_disposition(
                f"{station.name}-签到海报.pdf", f"station-{station.id}-v{station.poster_version}.pdf", inline=True
            )
            return Response(body, media_type=PDF, headers={"Content-Disposition": disposition})
        if format == "png":
            return Response(await asyncio.to_thread(qr_png, url), media_type=PNG, headers=headers)
        if format == "qr.svg":
            return Response(await asyncio.to_thread(qr_svg, url), media_type=SVG, headers=headers)
        # A first render takes 10–30 ms: off the event loop (repeats come from the cache).
        body = await asyncio.to_thread(poster_svg, station.name, subtitle, url, STATION_HINT)
        return Response(body, media_type=SVG, headers=headers)

    @get("/{station_id:int}/live", summary="Live feed: today's and open activities with counts, the last 10 check-ins")
    async def live_feed(self, request: Request, ctx: Ctx, station_id: FromPath[int]) -> Response[LiveOut]:
        feed = await live.live_feed(ctx, request.user, station_id)
        return Response(feed, headers={"Cache-Control": "private, no-store"})

    @get("/{station_id:int}/kiosks", summary="Kiosks of a station")
    async def list_kiosks(self, request: Request, ctx: Ctx, station_id: FromPath[int]) -> list[KioskOut]:
        return await services.list_kiosks(ctx, request.user, station_id)

    @post("/{station_id:int}/kiosks", summary="Register a kiosk's Ed25519 public key")
    async def register_kiosk(self, request: Request, ctx: Ctx, station_id: FromPath[int], data: JSONBody[KioskIn]) -> KioskOut:
        return await services.register_kiosk(ctx, request.user, station_id, data)


@delete("/kiosks/{kiosk_id:int}", tags=["stations"], summary="Revoke a kiosk: its codes stop being accepted")
async def revoke_kiosk(request: Request, ctx: Ctx, kiosk_id: FromPath[int]) -> None:
    await services.revoke_kiosk(ctx, request.user, kiosk_id)
