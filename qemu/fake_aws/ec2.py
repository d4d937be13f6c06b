"""EC2 query API: DescribeInstances (ids, filters, pagination), and the EC2
instance states and id format that the control API validates against."""

from __future__ import annotations

import hashlib
import re

from .common import (ApiError, iso_ms, members, next_token, page_size, parse_iso, parse_token, role_id,
                     xml)

SERVICE = "ec2"
VERSION = "2016-11-15"
NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"


EC2_STATE_CODES = {
    "pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
    "stopping": 64, "stopped": 80,
}
INSTANCE_ID_RE = re.compile(r"^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$")


def describe_instances(fake, p: dict, caller: dict, region: str, request_id: str) -> str:
    """One reservation per visible instance, filtered, paginated if asked."""
    ids = members(p, "InstanceId")
    bad = [i for i in ids if not INSTANCE_ID_RE.match(i)]
    if bad:
        raise ApiError(400, "InvalidInstanceID.Malformed", f'Invalid id: "{bad[0]}"')
    if ids and p.get("MaxResults") is not None:
        raise ApiError(400, "InvalidParameterCombination",
                       "The parameter instancesSet cannot be used with the parameter maxResults")
    size = page_size(fake.config, "DescribeInstances", p.get("MaxResults"), 5, 1000, None, "MaxResults")
    offset = parse_token("DescribeInstances", p.get("NextToken"), "InvalidParameterValue")
    insts = fake.visible(caller, region)
    if ids:
        known = {i["instanceId"] for i in insts}
        missing = [i for i in ids if i not in known]
        if missing:
            if len(missing) == 1:
                raise ApiError(400, "InvalidInstanceID.NotFound", f"The instance ID '{missing[0]}' does not exist")
            raise ApiError(400, "InvalidInstanceID.NotFound",
                           f"The instance IDs '{', '.join(missing)}' do not exist")
        insts = [i for i in insts if i["instanceId"] in ids]
    for name, values in filters(p):
        insts = [i for i in insts if ec2_filter_match(i, name, values)]
    if size is None:
        page, nxt = insts[offset:], False
    else:
        page, nxt = insts[offset:offset + size], offset + size < len(insts)
    items = []
    for i in page:
        code = EC2_STATE_CODES[i["state"]]
        dns = "ip-" + i["privateIp"].replace(".", "-") + f".{region}.compute.internal"
        tags = ""
        if i.get("groupName"):
            tags = ("<item><key>aws:autoscaling:groupName</key>"
                    f"<value>{xml(i['groupName'])}</value></item>")
        profile = ""
        if i.get("roleName"):
            profile = (f"<iamInstanceProfile><arn>arn:aws:iam::{i['accountId']}:instance-profile/{xml(i['roleName'])}</arn>"
                       f"<id>AIPA{role_id(i['accountId'], i['roleName'])[4:]}</id></iamInstanceProfile>")
        rid = "r-" + hashlib.sha256(i["instanceId"].encode()).hexdigest()[:17]
        items.append(
            "<item>"
            f"<reservationId>{rid}</reservationId><ownerId>{i['accountId']}</ownerId><groupSet/>"
            "<instancesSet><item>"
            f"<instanceId>{xml(i['instanceId'])}</instanceId>"
            f"<imageId>{xml(i['imageId'])}</imageId>"
            f"<instanceState><code>{code}</code><name>{i['state']}</name></instanceState>"
            f"<privateDnsName>{dns}</privateDnsName><dnsName/><reason/>"
            "<amiLaunchIndex>0</amiLaunchIndex><productCodes/>"
            f"<instanceType>{xml(i['instanceType'])}</instanceType>"
            f"<launchTime>{iso_ms(parse_iso(i['pendingTime']))}</launchTime>"
            f"<placement><availabilityZone>{xml(i['availabilityZone'])}</availabilityZone>"
            "<groupName/><tenancy>default</tenancy></placement>"
            "<monitoring><state>disabled</state></monitoring>"
            "<subnetId>subnet-0123456789abcdef0</subnetId><vpcId>vpc-0123456789abcdef0</vpcId>"
            f"<privateIpAddress>{xml(i['privateIp'])}</privateIpAddress>"
            f"<architecture>{xml(i['architecture'])}</architecture>"
            "<rootDeviceType>ebs</rootDeviceType><rootDeviceName>/dev/xvda</rootDeviceName>"
            f"{profile}<tagSet>{tags}</tagSet>"
            "<metadataOptions><state>applied</state><httpTokens>required</httpTokens>"
            "<httpPutResponseHopLimit>1</httpPutResponseHopLimit><httpEndpoint>enabled</httpEndpoint>"
            "</metadataOptions>"
            "</item></instancesSet></item>")
    token = f"<nextToken>{next_token('DescribeInstances', offset + size)}</nextToken>" if nxt else ""
    return f"<requestId>{request_id}</requestId><reservationSet>{''.join(items)}</reservationSet>{token}"


def filters(p: dict) -> list[tuple[str, list[str]]]:
    out = []
    n = 1
    while f"Filter.{n}.Name" in p:
        out.append((p[f"Filter.{n}.Name"], members(p, f"Filter.{n}.Value")))
        n += 1
    return out


def ec2_filter_match(i: dict, name: str, values: list[str]) -> bool:
    field = {
        "instance-id": i["instanceId"], "image-id": i["imageId"], "private-ip-address": i["privateIp"],
        "instance-state-name": i["state"], "availability-zone": i["availabilityZone"],
        "tag:aws:autoscaling:groupName": i.get("groupName"), "owner-id": i["accountId"],
    }
    if name not in field:
        raise ApiError(400, "InvalidParameterValue", f"The filter '{name}' is invalid")
    return field[name] in values


ACTIONS = {"DescribeInstances": describe_instances}
