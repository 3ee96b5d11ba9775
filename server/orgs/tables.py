from piccolo.columns import ForeignKey, Integer, OnDelete, Timestamptz, Varchar
from piccolo.table import Table


class Org(Table, tablename="orgs"):
    """党组织 tree of any depth; ``path`` is '/1/5/12/' so a subtree is a prefix match."""

    name = Varchar(length=100)
    kind = Varchar(length=32)
    parent_id = ForeignKey(references="self", null=True, on_delete=OnDelete.restrict)
    path = Varchar(length=255, index=True, default="")
    depth = Integer(default=0)
    secretary_name = Varchar(length=50, null=True, default=None)
    status = Varchar(length=16, default="active")
    created_at = Timestamptz()
