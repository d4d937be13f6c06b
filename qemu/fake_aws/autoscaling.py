"""Auto Scaling query API: DescribeAutoScalingGroups and
DescribeAutoScalingInstances, AWS-shaped XML with AWS's pagination."""

from __future__ import annotations

from .common import ApiError, members, next_token, page_size, parse_token, xml

SERVICE = "autoscaling"
VERSION = "2011-01-01"
NAMESPACE = "http://autoscaling.amazonaws.com/doc/2011-01-01/"


def describe_auto_scaling_groups(fake, p: dict, caller: dict, region: str, request_id: str) -> str:
    """Groups of the caller's account and region with their instances."""
    names = members(p, "AutoScalingGroupNames.member")
    size = page_size(fake.config, "DescribeAutoScalingGroups", p.get("MaxRecords"), 1, 100, 50, "MaxRecords")
    offset = parse_token("DescribeAutoScalingGroups", p.get("NextToken"), "InvalidNextToken")
    insts = fake.visible(caller, region)
    with fake.lock:
        groups = sorted((dict(g) for g in fake.groups.values()
                         if g["accountId"] == caller["accountId"] and g["region"] == region
                         and (not names or g["name"] in names)), key=lambda g: g["name"])
    page, nxt = groups[offset:offset + size], offset + size < len(groups)
    out = []
    for g in page:
        gi = [i for i in insts if i.get("groupName") == g["name"]]
        azs = sorted({i["availabilityZone"] for i in gi}) or [region + "a"]
        desired = g["desiredCapacity"] if g["desiredCapacity"] is not None else len(gi)
        inst_xml = "".join(
            "<member>"
            f"<InstanceId>{xml(i['instanceId'])}</InstanceId>"
            f"<InstanceType>{xml(i['instanceType'])}</InstanceType>"
            f"<AvailabilityZone>{xml(i['availabilityZone'])}</AvailabilityZone>"
            f"<LifecycleState>{xml(i['lifecycleState'])}</LifecycleState>"
            f"<HealthStatus>{xml(i['healthStatus'])}</HealthStatus>"
            "<LaunchTemplate><LaunchTemplateId>lt-0123456789abcdef0</LaunchTemplateId>"
            f"<LaunchTemplateName>{xml(g['name'])}-lt</LaunchTemplateName><Version>1</Version></LaunchTemplate>"
            "<ProtectedFromScaleIn>false</ProtectedFromScaleIn>"
            "</member>" for i in gi)
        out.append(
            "<member>"
            f"<AutoScalingGroupARN>arn:aws:autoscaling:{region}:{g['accountId']}:autoScalingGroup:{g['uuid']}:autoScalingGroupName/{xml(g['name'])}</AutoScalingGroupARN>"
            f"<AutoScalingGroupName>{xml(g['name'])}</AutoScalingGroupName>"
            f"<MinSize>{g['minSize']}</MinSize><MaxSize>{max(g['maxSize'], desired)}</MaxSize>"
            f"<DesiredCapacity>{desired}</DesiredCapacity><DefaultCooldown>300</DefaultCooldown>"
            "<AvailabilityZones>" + "".join(f"<member>{xml(a)}</member>" for a in azs) + "</AvailabilityZones>"
            "<LoadBalancerNames/><TargetGroupARNs/>"
            "<HealthCheckType>EC2</HealthCheckType><HealthCheckGracePeriod>300</HealthCheckGracePeriod>"
            f"<Instances>{inst_xml}</Instances>"
            f"<CreatedTime>{g['createdTime']}</CreatedTime>"
            "<SuspendedProcesses/><VPCZoneIdentifier>subnet-0123456789abcdef0</VPCZoneIdentifier>"
            "<EnabledMetrics/><Tags/><TerminationPolicies><member>Default</member></TerminationPolicies>"
            "<NewInstancesProtectedFromScaleIn>false</NewInstancesProtectedFromScaleIn>"
            f"<ServiceLinkedRoleARN>arn:aws:iam::{g['accountId']}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling</ServiceLinkedRoleARN>"
            "</member>")
    token = f"<NextToken>{next_token('DescribeAutoScalingGroups', offset + size)}</NextToken>" if nxt else ""
    return f"<DescribeAutoScalingGroupsResult><AutoScalingGroups>{''.join(out)}</AutoScalingGroups>{token}</DescribeAutoScalingGroupsResult>"

def describe_auto_scaling_instances(fake, p: dict, caller: dict, region: str, request_id: str) -> str:
    """Instances of the caller's account and region that are in a group."""
    ids = members(p, "InstanceIds.member")
    if len(ids) > 50:
        raise ApiError(400, "ValidationError", "The number of instance ids that may be passed in is 50.")
    size = page_size(fake.config, "DescribeAutoScalingInstances", p.get("MaxRecords"), 1, 50, 50, "MaxRecords")
    offset = parse_token("DescribeAutoScalingInstances", p.get("NextToken"), "InvalidNextToken")
    insts = [i for i in fake.visible(caller, region)
             if i.get("groupName") and (not ids or i["instanceId"] in ids)]
    page, nxt = insts[offset:offset + size], offset + size < len(insts)
    out = "".join(
        "<member>"
        f"<InstanceId>{xml(i['instanceId'])}</InstanceId>"
        f"<InstanceType>{xml(i['instanceType'])}</InstanceType>"
        f"<AutoScalingGroupName>{xml(i['groupName'])}</AutoScalingGroupName>"
        f"<AvailabilityZone>{xml(i['availabilityZone'])}</AvailabilityZone>"
        f"<LifecycleState>{xml(i['lifecycleState'])}</LifecycleState>"
        f"<HealthStatus>{xml(i['healthStatus'].upper())}</HealthStatus>"
        "<LaunchTemplate><LaunchTemplateId>lt-0123456789abcdef0</LaunchTemplateId>"
        f"<LaunchTemplateName>{xml(i['groupName'])}-lt</LaunchTemplateName><Version>1</Version></LaunchTemplate>"
        "<ProtectedFromScaleIn>false</ProtectedFromScaleIn>"
        "</member>" for i in page)
    token = f"<NextToken>{next_token('DescribeAutoScalingInstances', offset + size)}</NextToken>" if nxt else ""
    return f"<DescribeAutoScalingInstancesResult><AutoScalingInstances>{out}</AutoScalingInstances>{token}</DescribeAutoScalingInstancesResult>"


ACTIONS = {
    "DescribeAutoScalingGroups": describe_auto_scaling_groups,
    "DescribeAutoScalingInstances": describe_auto_scaling_instances,
}
