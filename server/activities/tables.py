from piccolo.columns import Boolean, ForeignKey, Integer, OnDelete, Text, Timestamptz, Varchar
from piccolo.table import Table

from server.orgs.tables import Org
from server.stations.tables import Station


class Activity(Table, tablename="activities"):
    """活动. Stored status is planned/cancelled/closed; 'open' is derived from the check-in window."""

    type = Varchar(length=32)
    title = Varchar(length=200)
    description = Text(default="")
    station_id = ForeignKey(references=Station, on_delete=OnDelete.restrict)  # see ix_activities_station_window
    org_id = ForeignKey(references=Org, on_delete=OnDelete.restrict, index=True)
    org_path = Varchar(length=255, default="")
    starts_at = Timestamptz()
    ends_at = Timestamptz()
    checkin_opens_at = Timestamptz()
    checkin_closes_at = Timestamptz()
    required = Boolean(default=False)
    records_hours = Boolean(default=False)
    capacity = Integer(null=True, default=None)
    status = Varchar(length=16, default="planned")
    created_by = Integer(null=True, default=None)
    created_at = Timestamptz()
    closed_at = Timestamptz(null=True, default=None)
