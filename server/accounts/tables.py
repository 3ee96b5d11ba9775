from piccolo.columns import Boolean, ForeignKey, OnDelete, Timestamptz, Varchar
from piccolo.table import Table

from server.members.tables import Member
from server.orgs.tables import Org
from server.stations.tables import Station


class User(Table, tablename="users"):
    """A login: a member (linked) or staff without a member record. Password unset until activated."""

    phone = Varchar(length=20, unique=True)
    display_name = Varchar(length=50)
    password_hash = Varchar(length=200, null=True, default=None)
    member_id = ForeignKey(references=Member, null=True, on_delete=OnDelete.restrict, unique=True)
    is_active = Boolean(default=True)
    created_at = Timestamptz()
    last_login_at = Timestamptz(null=True, default=None)


class RoleGrant(Table, tablename="role_grants"):
    """(role, scope): admin/secretary on an org subtree, staff on a station."""

    user_id = ForeignKey(references=User, on_delete=OnDelete.cascade, index=True)
    role = Varchar(length=16)
    org_id = ForeignKey(references=Org, null=True, on_delete=OnDelete.restrict)
    station_id = ForeignKey(references=Station, null=True, on_delete=OnDelete.restrict)
    created_at = Timestamptz()


class RefreshToken(Table, tablename="refresh_tokens"):
    """Stored as a SHA-256 hash; each use rotates it; reusing a rotated one revokes the family."""

    user_id = ForeignKey(references=User, on_delete=OnDelete.cascade, index=True)
    token_hash = Varchar(length=64, unique=True)
    family = Varchar(length=32, index=True)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


class InviteCode(Table, tablename="invite_codes"):
    user_id = ForeignKey(references=User, on_delete=OnDelete.cascade, index=True)
    code_hash = Varchar(length=64, unique=True)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    created_by = ForeignKey(references=User, null=True, on_delete=OnDelete.set_null)
    created_at = Timestamptz()
