"""The one Piccolo app: every domain's tables, migrations in ``migrations/`` at the repo root."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from server.accounts.tables import InviteCode, RefreshToken, RoleGrant, User
from server.activities.tables import Activity
from server.checkins.tables import Checkin, CheckinAttempt
from server.hours.tables import HoursCorrection, VolunteerHours
from server.leave.tables import LeaveRequest
from server.members.tables import Member
from server.orgs.tables import Org
from server.pairings.tables import Pairing, PairingVisit
from server.points.tables import LedgerEntry, PointRule, PointsTally
from server.stations.tables import Kiosk, Station

APP_CONFIG = AppConfig(
    app_name="hongyi",
    migrations_folder_path=str(Path(__file__).resolve().parent.parent / "migrations"),
    table_classes=[
        Org,
        Member,
        LeaveRequest,
        Station,
        Kiosk,
        User,
        RoleGrant,
        RefreshToken,
        InviteCode,
        Activity,
        CheckinAttempt,
        Checkin,
        PointRule,
        LedgerEntry,
        PointsTally,
        VolunteerHours,
        Pairing,
        PairingVisit,
        HoursCorrection,
    ],
    migration_dependencies=[],
    commands=[],
)
