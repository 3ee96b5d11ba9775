from piccolo.columns import BigSerial, Date, ForeignKey, Integer, OnDelete, Text, Timestamptz, Varchar
from piccolo.table import Table

from server.members.tables import Member


class Pairing(Table, tablename="pairings"):
    """一帮一: a helper member (党员) paired with a counterpart. Created by migration m0007 (raw SQL);
    this class mirrors it. Scope follows the helper's current org (``members.org_path``)."""

    id = BigSerial(primary_key=True)
    member_id = ForeignKey(references=Member, on_delete=OnDelete.restrict)  # the helper; see ix_pairings_member
    kind = Varchar(length=16)  # resident | worker | new_member | other
    name = Varchar(length=50)  # the counterpart
    category = Varchar(length=50, default="")  # 困难群众, 独居老人, …
    contact = Varchar(length=100, null=True, default=None)  # minimal; masked for those who do not manage the helper
    goals = Text(default="")
    start_date = Date()
    end_date = Date(null=True, default=None)
    interval_days = Integer(default=30)  # expected contact interval
    status = Varchar(length=16, default="active")  # active | ended
    created_by = Integer(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class PairingVisit(Table, tablename="pairing_visits"):
    """One visit (走访). (member_id, client_uuid) is unique: a replay from the PWA outbox finds the stored row.
    ``pending`` → ``approved`` (points) or ``rejected`` (a reversal entry if points were awarded)."""

    id = BigSerial(primary_key=True)
    pairing_id = ForeignKey(references=Pairing, on_delete=OnDelete.restrict)
    member_id = ForeignKey(references=Member, on_delete=OnDelete.restrict)  # the helper (denormalised for the index)
    client_uuid = Varchar(length=64)
    visited_at = Timestamptz()
    mode = Varchar(length=16)  # home | phone | online | station | other
    content = Text()
    help_given = Text(default="")  # the actions taken / help given
    problems = Text(default="")
    outcome = Text(default="")
    status = Varchar(length=16, default="pending")  # pending | approved | rejected
    method = Varchar(length=8, default="self")  # self | staff (recorded on the helper's behalf)
    recorded_by = Integer()
    created_at = Timestamptz()
    verified_by = Integer(null=True, default=None)
    verified_at = Timestamptz(null=True, default=None)
    verify_note = Varchar(length=200, null=True, default=None)
