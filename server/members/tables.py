from piccolo.columns import Array, Date, ForeignKey, Integer, OnDelete, Timestamptz, Varchar
from piccolo.table import Table

from server.orgs.tables import Org


class Member(Table, tablename="members"):
    """党员. The ID-card number is kept only as a salted hash plus its last 4 characters."""

    name = Varchar(length=50)
    gender = Varchar(length=8, null=True, default=None)
    birth_date = Date(null=True, default=None)
    phone = Varchar(length=20, unique=True)
    id_card_hash = Varchar(length=64, null=True, default=None)
    id_card_last4 = Varchar(length=4, null=True, default=None)
    join_date = Date(null=True, default=None)
    full_date = Date(null=True, default=None)
    member_type = Varchar(length=16, default="formal")
    status = Varchar(length=16, default="normal")
    org_id = ForeignKey(references=Org, on_delete=OnDelete.restrict, index=True)
    org_path = Varchar(length=255, index=True, default="")
    group_id = ForeignKey(references=Org, null=True, on_delete=OnDelete.set_null)
    tags = Array(base_column=Varchar(length=20), default=list)
    card_version = Integer(default=1)
    created_at = Timestamptz()
    updated_at = Timestamptz()
