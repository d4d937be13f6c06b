"""STS query API: GetCallerIdentity (what strong attestation has the node's
peers call with a request signed by the joining instance)."""

from __future__ import annotations

from .common import role_id, xml

SERVICE = "sts"
VERSION = "2011-06-15"
NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"


def get_caller_identity(fake, p: dict, caller: dict, region: str, request_id: str) -> str:
    """The assumed-role identity of the instance whose credentials signed the call."""
    role, acct, iid = caller["roleName"], caller["accountId"], caller["instanceId"]
    return ("<GetCallerIdentityResult>"
            f"<Arn>arn:aws:sts::{acct}:assumed-role/{xml(role)}/{xml(iid)}</Arn>"
            f"<UserId>{role_id(acct, role)}:{xml(iid)}</UserId>"
            f"<Account>{acct}</Account>"
            "</GetCallerIdentityResult>")


ACTIONS = {"GetCallerIdentity": get_caller_identity}
