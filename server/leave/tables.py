from piccolo.columns import BigSerial, ForeignKey, Integer, OnDelete, Timestamptz, Varchar
from piccolo.table import Table

from server.activities.tables import Activity
from server.members.tables import Member


class LeaveRequest(Table, tablename="leave_requests"):
    """请假 for a required activity: one per member and activity (a rejected one may be asked again)."""

    id = BigSerial(primary_key=True)
    activity_id = ForeignKey(references=Activity, on_delete=OnDelete.restrict, index=True)
    member_id = ForeignKey(references=Member, on_delete=OnDelete.restrict, index=True)
    reason = Varchar(length=200)
    status = Varchar(length=16)  # pending | approved | rejected | withdrawn
    created_by = Integer()
    created_at = Timestamptz()
    decided_by = Integer(null=True, default=None)
    decided_at = Timestamptz(null=True, default=None)
    note = Varchar(length=200, null=True, default=None)
