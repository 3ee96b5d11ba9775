from piccolo.columns import BigInt, BigSerial, Date, DoublePrecision, ForeignKey, Integer, OnDelete, Timestamptz, Varchar
from piccolo.table import Table

from server.activities.tables import Activity
from server.members.tables import Member


class VolunteerHours(Table, tablename="volunteer_hours"):
    """Hours from a check-in/check-out pair (DESIGN §5).

    ``hours`` is what the times give (clipped to the schedule, rounded down to 0.5 h);
    ``approved_hours`` is what the record counts now; ``auto_hours`` the part approved at
    check-out (up to 8 h a member a local day). Schema changes: migration m0006 (raw SQL)."""

    id = BigSerial(primary_key=True)
    member_id = ForeignKey(references=Member, on_delete=OnDelete.restrict, index=True)
    activity_id = ForeignKey(references=Activity, on_delete=OnDelete.restrict, index=True)
    checkin_in_id = BigInt()
    checkin_out_id = BigInt(null=True, default=None)
    local_date = Date()  # local day the service started (the 8 h/day quota counts here)
    hours = DoublePrecision()
    approved_hours = DoublePrecision(default=0)
    auto_hours = DoublePrecision(default=0)
    status = Varchar(length=16)  # approved | pending | rejected
    decided_by = Integer(null=True, default=None)
    decided_at = Timestamptz(null=True, default=None)
    note = Varchar(length=200, null=True, default=None)
    created_at = Timestamptz()


class HoursCorrection(Table, tablename="volunteer_hours_corrections"):
    """A change to a locked hours record: requested, then approved or rejected by an admin/secretary.
    Keeps the old and new values, who asked, who decided and when; at most one pending per record."""

    id = BigSerial(primary_key=True)
    hours_id = ForeignKey(references=VolunteerHours, on_delete=OnDelete.restrict)
    old_hours = DoublePrecision()
    new_hours = DoublePrecision()
    reason = Varchar(length=200)
    status = Varchar(length=16)  # pending | approved | rejected
    requested_by = Integer()
    requested_at = Timestamptz()
    decided_by = Integer(null=True, default=None)
    decided_at = Timestamptz(null=True, default=None)
    note = Varchar(length=200, null=True, default=None)
