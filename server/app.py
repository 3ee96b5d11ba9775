"""Application assembly: routers per domain, auth, errors, lifespan of the shared services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.types import Message, Scope

from server.accounts import routes as accounts
from server.activities.routes import ActivityController
from server.checkins.fastlane import install_outer_lane
from server.checkins.writer import WriterClient
from server.checkins.routes import CheckinController, my_checkins
from server.core.auth import BearerAuthMiddleware
from server.core.context import open_context, provide_ctx
from server.core.errors import EXCEPTION_HANDLERS, document_error_responses
from server.core.logs import install_log_masking
from server.health.routes import health
from server.hours.routes import VolunteerHoursController, my_volunteer_hours
from server.keys.routes import jwks
from server.leave import routes as leave
from server.members.routes import MemberController
from server.orgs.routes import OrgController
from server.pairings.routes import PairingController
from server.points.routes import PointsController, my_points
from server.reports.routes import ReportController
from server.settings import Settings
from server.stations.routes import StationController, revoke_kiosk
from server.web import routes as web

MAX_BODY_BYTES = 1024 * 1024

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; font-src 'self' data:; "
        b"style-src 'self' 'unsafe-inline'; "
        b"script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; worker-src 'self'; frame-ancestors 'none'; "
        b"base-uri 'self'; form-action 'self'",
    ),
]
_SCHEMA_CSP = (
    b"content-security-policy",
    b"default-src 'self' https: 'unsafe-inline'; img-src 'self' data: https:; frame-ancestors 'none'",
)


async def security_headers(message: Message, scope: Scope) -> None:
    """Adds no-sniff, frame and content-security headers to every answer (the API docs get a looser CSP).

    A before-send hook, not a middleware: it also sees what the CORS and exception layers outside the
    middleware stack send — a 401 from the auth middleware, a CORS preflight."""
    if message["type"] == "http.response.start":
        headers = list(message.get("headers") or [])
        headers.extend(_SECURITY_HEADERS[:3])
        headers.append(_SCHEMA_CSP if scope["path"].startswith("/schema") else _SECURITY_HEADERS[3])
        message["headers"] = headers


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_context(settings, serving=True) as ctx:
            app.state.ctx = ctx
            if settings.checkin_writer_socket:
                ctx.checkin_writer = WriterClient(settings.checkin_writer_socket)
            try:
                yield
            finally:
                if ctx.checkin_writer is not None:
                    ctx.checkin_writer.close()

    api = Router(
        path="/api/v1",
        route_handlers=[
            accounts.login,
            accounts.refresh,
            accounts.logout,
            accounts.activate,
            accounts.me,
            accounts.GrantController,
            leave.ask_leave,
            leave.LeaveController,
            jwks,
            health,
            OrgController,
            MemberController,
            StationController,
            revoke_kiosk,
            ActivityController,
            CheckinController,
            my_checkins,
            my_points,
            PointsController,
            PairingController,
            VolunteerHoursController,
            my_volunteer_hours,
            ReportController,
        ],
    )
    cors = CORSConfig(allow_origins=list(settings.cors_origins), allow_credentials=False) if settings.cors_origins else None
    logging.basicConfig(level=logging.DEBUG if settings.debug else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    install_log_masking()  # uvicorn's access log prints paths with /q/{token} and ?code=…
    app = Litestar(
        route_handlers=[api, web.index, web.spa],
        lifespan=[lifespan],
        dependencies={"ctx": Provide(provide_ctx, sync_to_thread=False)},
        middleware=[DefineMiddleware(BearerAuthMiddleware, exclude=["^/schema"], exclude_from_auth_key="exclude_from_auth")],
        before_send=[security_headers],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_BODY_BYTES,
        cors_config=cors,
        openapi_config=OpenAPIConfig(
            title="红驿 Hongyi API", version="1.0.0", path="/schema", render_plugins=[ScalarRenderPlugin()],
        ),
        debug=settings.debug,
    )
    document_error_responses(app)
    install_outer_lane(app)
    return app
