from piccolo.columns import BigInt, BigSerial, Date, DoublePrecision, ForeignKey, Integer, OnDelete, Timestamptz, Varchar
from piccolo.table import Table

from server.activities.tables import Activity
from server.members.tables import Member


class VolunteerHours(Table, tablename="volunteer_hours"):
    """Hours from a check-in/check-out pair (DESIGN §5); approval and locking follow in the hours issue."""

    id = BigSerial(primary_key=True)
    member_id = ForeignKey(references=Member, on_delete=OnDelete.restrict, index=True)
    activity_id = ForeignKey(references=Activity, on_delete=OnDelete.restrict, index=True)
    checkin_in_id = BigInt()
    checkin_out_id = BigInt(null=True, default=None)
    local_date = Date()
    hours = DoublePrecision()
    status = Varchar(length=16)  # approved | pending | rejected
    decided_by = Integer(null=True, default=None)
    decided_at = Timestamptz(null=True, default=None)
    note = Varchar(length=200, null=True, default=None)
    created_at = Timestamptz()
