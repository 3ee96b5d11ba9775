from piccolo.columns import DoublePrecision, ForeignKey, Integer, OnDelete, Text, Timestamptz, Varchar
from piccolo.table import Table

from server.orgs.tables import Org


class Station(Table, tablename="stations"):
    """党员联络服务站. Bumping ``poster_version`` revokes every printed poster."""

    name = Varchar(length=100)
    org_id = ForeignKey(references=Org, on_delete=OnDelete.restrict, index=True)
    org_path = Varchar(length=255, index=True, default="")
    address = Varchar(length=200, default="")
    lat = DoublePrecision(null=True, default=None)
    lng = DoublePrecision(null=True, default=None)
    geofence_m = Integer(null=True, default=None)
    service_hours = Varchar(length=200, default="")
    poster_version = Integer(default=1)
    status = Varchar(length=16, default="active")
    created_at = Timestamptz()


class Kiosk(Table, tablename="kiosks"):
    """A station screen with its own Ed25519 key (generated in the browser)."""

    station_id = ForeignKey(references=Station, on_delete=OnDelete.restrict, index=True)
    name = Varchar(length=100)
    public_key_jwk = Text()
    status = Varchar(length=16, default="active")
    created_by = Integer(null=True, default=None)
    created_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
