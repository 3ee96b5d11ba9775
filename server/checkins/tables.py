from piccolo.columns import (
    BigSerial,
    BigInt,
    Date,
    DoublePrecision,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from server.activities.tables import Activity
from server.members.tables import Member
from server.stations.tables import Station


class CheckinAttempt(Table, tablename="checkin_attempts"):
    """Every scan that reaches the server, accepted or not, with the raw token (audit, idempotency).

    (client_uuid, member_id) is unique: a replay returns the stored result; the same index finds a
    client_uuid used by another member.
    """

    id = BigSerial(primary_key=True)
    client_uuid = Varchar(length=64)
    member_id = ForeignKey(references=Member, on_delete=OnDelete.restrict)
    token = Text(default="")
    token_type = Varchar(length=4, null=True, default=None)
    kind = Varchar(length=4, default="in")
    method = Varchar(length=16, default="self")
    staff_user_id = Integer(null=True, default=None)
    station_id = Integer(null=True, default=None)
    activity_id = Integer(null=True, default=None)
    kiosk_id = Integer(null=True, default=None)
    scanned_at = Timestamptz()
    received_at = Timestamptz()
    lat = DoublePrecision(null=True, default=None)
    lng = DoublePrecision(null=True, default=None)
    accuracy_m = DoublePrecision(null=True, default=None)
    status = Varchar(length=16)
    reason = Varchar(length=24, null=True, default=None)
    checkin_id = BigInt(null=True, default=None)
    points_awarded = DoublePrecision(default=0)
    message = Varchar(length=200, default="")


class Checkin(Table, tablename="checkins"):
    """A presence record (accepted or waiting for review). At most one live 'in' and one 'out' per
    member and activity, and one station visit per member, station and local day (partial unique indexes)."""

    id = BigSerial(primary_key=True)
    # Indexed by the composite indexes of migration m0002 (no single-column ones: each costs every insert).
    member_id = ForeignKey(references=Member, on_delete=OnDelete.restrict)
    activity_id = ForeignKey(references=Activity, null=True, on_delete=OnDelete.restrict)
    station_id = ForeignKey(references=Station, on_delete=OnDelete.restrict)
    kind = Varchar(length=4, default="in")
    method = Varchar(length=16, default="self")
    status = Varchar(length=16)
    reason = Varchar(length=24, null=True, default=None)
    scanned_at = Timestamptz()
    received_at = Timestamptz()
    local_date = Date()
    staff_user_id = Integer(null=True, default=None)
    kiosk_id = Integer(null=True, default=None)
    decided_by = Integer(null=True, default=None)
    decided_at = Timestamptz(null=True, default=None)
    decision_note = Varchar(length=200, null=True, default=None)
