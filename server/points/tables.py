from piccolo.columns import (
    BigSerial,
    BigInt,
    Boolean,
    Date,
    DoublePrecision,
    ForeignKey,
    Integer,
    OnDelete,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from server.members.tables import Member
from server.orgs.tables import Org


class PointRule(Table, tablename="point_rules"):
    """A rule; edits bump ``version`` — ledger entries keep the version and delta they used."""

    code = Varchar(length=40, unique=True)
    name = Varchar(length=100)
    category = Varchar(length=16)  # basic | reward | penalty
    trigger = Varchar(length=32)  # activity type, 'manual', 'pairing_visit', 'absence', 'volunteer_hour'
    points = DoublePrecision()
    cap_day = DoublePrecision(null=True, default=None)
    cap_month = DoublePrecision(null=True, default=None)
    cap_year = DoublePrecision(null=True, default=None)
    needs_approval = Boolean(default=False)
    valid_from = Date(null=True, default=None)
    valid_to = Date(null=True, default=None)
    version = Integer(default=1)
    status = Varchar(length=16, default="active")
    created_at = Timestamptz()
    updated_at = Timestamptz()


class LedgerEntry(Table, tablename="points_ledger"):
    """Append-only. A correction is a new entry with ``reverses_id``; nothing is ever updated."""

    id = BigSerial(primary_key=True)
    member_id = ForeignKey(references=Member, on_delete=OnDelete.restrict)
    rule_id = ForeignKey(references=PointRule, null=True, on_delete=OnDelete.restrict)
    rule_version = Integer(null=True, default=None)
    delta = DoublePrecision()
    year = Integer()
    local_date = Date()
    occurred_at = Timestamptz()
    source_type = Varchar(length=16)  # checkin | hours | adjustment | absence | reversal | visit
    source_id = BigInt(null=True, default=None)
    reverses_id = BigInt(null=True, default=None)
    reason = Varchar(length=200, default="")
    created_by = Integer(null=True, default=None)
    created_at = Timestamptz()


class PointsTally(Table, tablename="points_tally"):
    """Points earned per member and year, one row per ancestor org of the member, kept in the same
    transaction as the ledger: top-N and rank within any subtree are index range scans."""

    org_id = ForeignKey(references=Org, on_delete=OnDelete.restrict)
    year = Integer()
    member_id = ForeignKey(references=Member, on_delete=OnDelete.restrict)
    earned = DoublePrecision(default=0)
