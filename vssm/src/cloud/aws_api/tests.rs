//! aws_api against an in-test fake AWS (canned XML in the shape of the AWS API reference
//! examples) that recomputes and checks every SigV4 signature.

use super::*;
use crate::cloud::sigv4::{compute_signature, hex_sha256, parse_authorization, percent_decode};
use crate::cloud::test_server::{TestRequest, TestResponse, TestServer};
use std::sync::Mutex;

const REGION: &str = "us-east-1";
const NODE_AKID: &str = "ASIANODEEXAMPLE1";
const NODE_SECRET: &str = "nodeSecret/K7MDENG+bPxRfiCYEXAMPLEKEY";
const NODE_TOKEN: &str = "IQoJb3JpZ2luX2VjENODETOKEN==";
const JOINER_AKID: &str = "ASIAJOINEREXAMPLE";
const JOINER_SECRET: &str = "joinerSecret/K7MDENG+bPxRfiCYEXAMPLE";
const JOINER_INSTANCE: &str = "i-0fedcba9876543210";

const ASG_PAGE1: &str = r#"<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingGroupsResult>
    <AutoScalingGroups>
      <member>
        <HealthCheckType>EC2</HealthCheckType>
        <LoadBalancerNames/>
        <Instances>
          <member>
            <LaunchTemplate>
              <LaunchTemplateName>my-launch-template</LaunchTemplateName>
              <Version>1</Version>
              <LaunchTemplateId>lt-0123456789abcdef0</LaunchTemplateId>
            </LaunchTemplate>
            <LifecycleState>InService</LifecycleState>
            <InstanceId>i-0123456789abcdef0</InstanceId>
            <HealthStatus>Healthy</HealthStatus>
            <ProtectedFromScaleIn>false</ProtectedFromScaleIn>
            <AvailabilityZone>us-east-1a</AvailabilityZone>
            <InstanceType>t3.micro</InstanceType>
          </member>
          <member>
            <LifecycleState>Pending:Wait</LifecycleState>
            <InstanceId>i-0fedcba9876543210</InstanceId>
            <HealthStatus>Healthy</HealthStatus>
            <ProtectedFromScaleIn>false</ProtectedFromScaleIn>
            <AvailabilityZone>us-east-1b</AvailabilityZone>
            <InstanceType>t3.micro</InstanceType>
          </member>
        </Instances>
        <TerminationPolicies>
          <member>Default</member>
        </TerminationPolicies>
        <DefaultCooldown>300</DefaultCooldown>
        <AutoScalingGroupARN>arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:12345678-1234-1234-1234-123456789012:autoScalingGroupName/my-asg</AutoScalingGroupARN>
        <EnabledMetrics/>
        <AvailabilityZones>
          <member>us-east-1a</member>
          <member>us-east-1b</member>
        </AvailabilityZones>
        <Tags>
          <member>
            <ResourceId>my-asg</ResourceId>
            <PropagateAtLaunch>true</PropagateAtLaunch>
            <Value>vssm</Value>
            <Key>app</Key>
            <ResourceType>auto-scaling-group</ResourceType>
          </member>
        </Tags>
        <MinSize>1</MinSize>
        <MaxSize>5</MaxSize>
        <AutoScalingGroupName>my-asg</AutoScalingGroupName>
        <DesiredCapacity>3</DesiredCapacity>
        <CreatedTime>2023-03-09T22:15:11.611Z</CreatedTime>
        <HealthCheckGracePeriod>300</HealthCheckGracePeriod>
        <NewInstancesProtectedFromScaleIn>false</NewInstancesProtectedFromScaleIn>
        <SuspendedProcesses/>
        <VPCZoneIdentifier>subnet-5ea0c127,subnet-6194ea3b</VPCZoneIdentifier>
      </member>
    </AutoScalingGroups>
    <NextToken>Z3M3LMPEXAMPLE=</NextToken>
  </DescribeAutoScalingGroupsResult>
  <ResponseMetadata>
    <RequestId>0f02a07d-b677-11e2-9eb0-dd50EXAMPLE</RequestId>
  </ResponseMetadata>
</DescribeAutoScalingGroupsResponse>"#;

const ASG_PAGE2: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingGroupsResult>
    <AutoScalingGroups>
      <member>
        <AutoScalingGroupName>my-asg</AutoScalingGroupName>
        <Instances>
          <member>
            <LifecycleState>Terminating:Wait</LifecycleState>
            <InstanceId>i-0aaaabbbbccccdddd</InstanceId>
            <HealthStatus>Unhealthy</HealthStatus>
            <AvailabilityZone>us-east-1a</AvailabilityZone>
          </member>
        </Instances>
        <MinSize>1</MinSize>
        <MaxSize>5</MaxSize>
      </member>
    </AutoScalingGroups>
  </DescribeAutoScalingGroupsResult>
  <ResponseMetadata>
    <RequestId>1f02a07d-b677-11e2-9eb0-dd50EXAMPLE</RequestId>
  </ResponseMetadata>
</DescribeAutoScalingGroupsResponse>"#;

const ASG_EMPTY: &str = r#"<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingGroupsResult>
    <AutoScalingGroups/>
  </DescribeAutoScalingGroupsResult>
  <ResponseMetadata><RequestId>2f02a07d-b677-11e2-9eb0-dd50EXAMPLE</RequestId></ResponseMetadata>
</DescribeAutoScalingGroupsResponse>"#;

const ASG_INSTANCES: &str = r#"<DescribeAutoScalingInstancesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingInstancesResult>
    <AutoScalingInstances>
      <member>
        <HealthStatus>HEALTHY</HealthStatus>
        <AutoScalingGroupName>my-asg</AutoScalingGroupName>
        <AvailabilityZone>us-east-1b</AvailabilityZone>
        <InstanceId>i-0fedcba9876543210</InstanceId>
        <InstanceType>t3.micro</InstanceType>
        <LaunchTemplate>
          <LaunchTemplateName>my-launch-template</LaunchTemplateName>
          <Version>1</Version>
          <LaunchTemplateId>lt-0123456789abcdef0</LaunchTemplateId>
        </LaunchTemplate>
        <LifecycleState>Pending:Wait</LifecycleState>
        <ProtectedFromScaleIn>false</ProtectedFromScaleIn>
      </member>
    </AutoScalingInstances>
  </DescribeAutoScalingInstancesResult>
  <ResponseMetadata>
    <RequestId>df992dc3-b72f-11e2-81e1-750aa6EXAMPLE</RequestId>
  </ResponseMetadata>
</DescribeAutoScalingInstancesResponse>"#;

const ASG_INSTANCES_EMPTY: &str = r#"<DescribeAutoScalingInstancesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingInstancesResult>
    <AutoScalingInstances/>
  </DescribeAutoScalingInstancesResult>
  <ResponseMetadata><RequestId>ef992dc3-b72f-11e2-81e1-750aa6EXAMPLE</RequestId></ResponseMetadata>
</DescribeAutoScalingInstancesResponse>"#;

const EC2_PAGE1: &str = r#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
    <reservationSet>
        <item>
            <reservationId>r-1234567890abcdef0</reservationId>
            <ownerId>123456789012</ownerId>
            <groupSet/>
            <instancesSet>
                <item>
                    <instanceId>i-0123456789abcdef0</instanceId>
                    <imageId>ami-0abcdef1234567890</imageId>
                    <instanceState>
                        <code>16</code>
                        <name>running</name>
                    </instanceState>
                    <privateDnsName>ip-10-0-0-157.ec2.internal</privateDnsName>
                    <dnsName>ec2-54-194-252-215.compute-1.amazonaws.com</dnsName>
                    <reason/>
                    <amiLaunchIndex>0</amiLaunchIndex>
                    <productCodes/>
                    <instanceType>t3.micro</instanceType>
                    <launchTime>2023-03-09T22:16:02.000Z</launchTime>
                    <placement>
                        <availabilityZone>us-east-1a</availabilityZone>
                        <groupName/>
                        <tenancy>default</tenancy>
                    </placement>
                    <monitoring><state>disabled</state></monitoring>
                    <subnetId>subnet-5ea0c127</subnetId>
                    <vpcId>vpc-11112222</vpcId>
                    <privateIpAddress>10.0.0.157</privateIpAddress>
                    <ipAddress>54.194.252.215</ipAddress>
                    <sourceDestCheck>true</sourceDestCheck>
                    <groupSet>
                        <item>
                            <groupId>sg-e4076980</groupId>
                            <groupName>SecurityGroup1</groupName>
                        </item>
                    </groupSet>
                    <architecture>x86_64</architecture>
                    <rootDeviceType>ebs</rootDeviceType>
                    <networkInterfaceSet>
                        <item>
                            <networkInterfaceId>eni-0598c7d356eba48d7</networkInterfaceId>
                            <privateIpAddress>10.0.0.157</privateIpAddress>
                            <privateIpAddressesSet>
                                <item>
                                    <privateIpAddress>10.0.0.157</privateIpAddress>
                                    <primary>true</primary>
                                </item>
                                <item>
                                    <privateIpAddress>10.0.0.99</privateIpAddress>
                                    <primary>false</primary>
                                </item>
                            </privateIpAddressesSet>
                        </item>
                    </networkInterfaceSet>
                    <tagSet>
                        <item><key>Name</key><value>vssm-node</value></item>
                    </tagSet>
                </item>
            </instancesSet>
        </item>
        <item>
            <reservationId>r-0234567890abcdef0</reservationId>
            <ownerId>123456789012</ownerId>
            <groupSet/>
            <instancesSet>
                <item>
                    <instanceId>i-0aaaabbbbccccdddd</instanceId>
                    <imageId>ami-0abcdef1234567890</imageId>
                    <instanceState>
                        <code>48</code>
                        <name>terminated</name>
                    </instanceState>
                    <privateDnsName/>
                    <reason>User initiated (2023-03-10 10:00:00 GMT)</reason>
                    <instanceType>t3.micro</instanceType>
                </item>
            </instancesSet>
        </item>
    </reservationSet>
    <nextToken>eyJ2IjoiMiIsImMiOiJFWEFNUExFIn0=</nextToken>
</DescribeInstancesResponse>"#;

const EC2_PAGE2: &str = r#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>9f7724cf-496f-496e-8fe3-example</requestId>
    <reservationSet>
        <item>
            <reservationId>r-3234567890abcdef0</reservationId>
            <ownerId>123456789012</ownerId>
            <instancesSet>
                <item>
                    <instanceId>i-0fedcba9876543210</instanceId>
                    <imageId>ami-0fedcba0987654321</imageId>
                    <instanceState><code>0</code><name>pending</name></instanceState>
                    <privateIpAddress>10.0.1.23</privateIpAddress>
                </item>
            </instancesSet>
        </item>
    </reservationSet>
</DescribeInstancesResponse>"#;

const EC2_NOT_FOUND: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID 'i-00000000' does not exist</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>"#;

fn sts_identity(arn: &str) -> String {
    format!(
        r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>{arn}</Arn>
    <UserId>AROA3XFRBF535PLBIFPI4:{JOINER_INSTANCE}</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata>
    <RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId>
  </ResponseMetadata>
</GetCallerIdentityResponse>"#
    )
}

fn error_response(status: u16, code: &str, message: &str) -> TestResponse {
    TestResponse::new(
        status,
        format!(
            r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
  <RequestId>6a8e7c2f-0000-0000-0000-example</RequestId>
</ErrorResponse>"#
        ),
    )
    .header("content-type", "text/xml")
}

#[derive(Default)]
struct Log {
    /// (action, decoded params) of every verified request.
    calls: Vec<(String, Vec<(String, String)>)>,
    fail_next: u32,
}

fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    std::str::from_utf8(body)
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (String::from_utf8(percent_decode(k)).unwrap(), String::from_utf8(percent_decode(v)).unwrap())
        })
        .collect()
}

/// Recomputes the SigV4 signature of a received request like AWS would.
fn verify(req: &TestRequest, service: &str) -> Result<Vec<String>, String> {
    let auth =
        parse_authorization(req.header("authorization").ok_or("no authorization")?).ok_or("bad authorization")?;
    let secret = match auth.access_key_id.as_str() {
        NODE_AKID => NODE_SECRET,
        JOINER_AKID => JOINER_SECRET,
        _ => return Err("unknown access key".into()),
    };
    let date = req.header("x-amz-date").ok_or("no x-amz-date")?;
    if auth.service != service || auth.region != REGION || !date.starts_with(&auth.date) {
        return Err(format!("bad scope {auth:?}"));
    }
    for must in ["host", "x-amz-date", "x-amz-security-token", "content-type"] {
        if !auth.signed_headers.iter().any(|h| h == must) {
            return Err(format!("{must} not signed"));
        }
    }
    let values: Vec<(String, String)> = auth
        .signed_headers
        .iter()
        .flat_map(|n| req.headers.get_all(n.as_str()).iter().map(move |v| (n.clone(), v.to_str().unwrap().to_string())))
        .collect();
    let pairs: Vec<(&str, &str)> = values.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let (path, query) = match req.uri.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (req.uri.as_str(), None),
    };
    let (signed, sig) =
        compute_signature(secret, date, REGION, service, &req.method, path, query, &pairs, &hex_sha256(&req.body))
            .map_err(|e| e.to_string())?;
    if signed != auth.signed_headers.join(";") || sig != auth.signature {
        return Err("signature mismatch".into());
    }
    Ok(auth.signed_headers)
}

fn param<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

async fn fake_aws(log: Arc<Mutex<Log>>) -> TestServer {
    TestServer::start(move |req| {
        let params = parse_form(&req.body);
        let action = param(&params, "Action").unwrap_or("").to_string();
        let service = match action.as_str() {
            "DescribeAutoScalingGroups" | "DescribeAutoScalingInstances" => "autoscaling",
            "DescribeInstances" => "ec2",
            "GetCallerIdentity" => "sts",
            _ => return error_response(400, "InvalidAction", "Could not find operation"),
        };
        if req.method != "POST"
            || req.uri != "/"
            || !req.header("content-type").unwrap_or("").starts_with("application/x-www-form-urlencoded")
        {
            return error_response(400, "MalformedQueryString", "bad request shape");
        }
        let signed = match verify(req, service) {
            Ok(s) => s,
            Err(e) => {
                return error_response(
                    403,
                    "SignatureDoesNotMatch",
                    &format!("The request signature we calculated does not match ({e})"),
                )
            }
        };
        let mut lg = log.lock().unwrap();
        if lg.fail_next > 0 {
            lg.fail_next -= 1;
            return TestResponse::new(503, "Service Unavailable");
        }
        lg.calls.push((action.clone(), params.clone()));
        let ok = |b: &str| TestResponse::new(200, b.to_string()).header("content-type", "text/xml;charset=UTF-8");
        match action.as_str() {
            "DescribeAutoScalingGroups" => {
                assert_eq!(param(&params, "Version"), Some("2011-01-01"));
                if param(&params, "AutoScalingGroupNames.member.1") != Some("my-asg") {
                    return ok(ASG_EMPTY);
                }
                match param(&params, "NextToken") {
                    None => ok(ASG_PAGE1),
                    Some("Z3M3LMPEXAMPLE=") => ok(ASG_PAGE2),
                    Some(_) => error_response(400, "InvalidNextToken", "The token is invalid"),
                }
            }
            "DescribeAutoScalingInstances" => match param(&params, "InstanceIds.member.1") {
                Some(JOINER_INSTANCE) => ok(ASG_INSTANCES),
                _ => ok(ASG_INSTANCES_EMPTY),
            },
            "DescribeInstances" => {
                assert_eq!(param(&params, "Version"), Some("2016-11-15"));
                if params.iter().any(|(k, v)| k.starts_with("InstanceId.") && v == "i-00000000") {
                    return TestResponse::new(400, EC2_NOT_FOUND);
                }
                match param(&params, "NextToken") {
                    None => ok(EC2_PAGE1),
                    Some("eyJ2IjoiMiIsImMiOiJFWEFNUExFIn0=") => ok(EC2_PAGE2),
                    Some(_) => error_response(400, "InvalidParameterValue", "bad token"),
                }
            }
            _ => {
                assert_eq!(req.body.as_ref(), STS_GET_CALLER_IDENTITY_BODY.as_bytes());
                if !signed.iter().any(|h| h == "x-vssm-challenge") {
                    return error_response(400, "Test", "challenge not signed");
                }
                ok(&sts_identity(&format!("arn:aws:sts::123456789012:assumed-role/vssm-node-role/{JOINER_INSTANCE}")))
            }
        }
    })
    .await
}

fn endpoints(server: &TestServer) -> AwsEndpoints {
    AwsEndpoints { autoscaling: server.base_url(), ec2: server.base_url(), sts: server.base_url() }
}

fn node_creds(secret: &str) -> AwsCredentials {
    AwsCredentials::new(NODE_AKID, secret, Some(NODE_TOKEN))
}

fn client(server: &TestServer, secret: &str) -> AwsApiClient {
    let cfg = AwsApiConfig { timeout: Duration::from_secs(5), attempts: 3, initial_backoff: Duration::from_millis(10) };
    AwsApiClient::new(HttpClient::new(), REGION, endpoints(server), CredentialSource::Static(node_creds(secret)), cfg)
        .unwrap()
}

#[tokio::test]
async fn asg_group_instances_signed_and_paginated() {
    let log = Arc::new(Mutex::new(Log::default()));
    let server = fake_aws(log.clone()).await;
    let c = client(&server, NODE_SECRET);
    let instances = c.describe_auto_scaling_instances_of_group("my-asg").await.unwrap();
    let ids: Vec<(&str, &str)> =
        instances.iter().map(|i| (i.instance_id.as_str(), i.lifecycle_state.as_str())).collect();
    assert_eq!(
        ids,
        [
            ("i-0123456789abcdef0", "InService"),
            ("i-0fedcba9876543210", "Pending:Wait"),
            ("i-0aaaabbbbccccdddd", "Terminating:Wait")
        ]
    );
    assert_eq!(instances[0].availability_zone, "us-east-1a");
    let members: Vec<&str> = instances.iter().filter(|i| i.is_member()).map(|i| i.instance_id.as_str()).collect();
    assert_eq!(members, ["i-0123456789abcdef0", "i-0fedcba9876543210"]);
    {
        let lg = log.lock().unwrap();
        assert_eq!(lg.calls.len(), 2);
        assert_eq!(param(&lg.calls[0].1, "NextToken"), None);
        assert_eq!(param(&lg.calls[1].1, "NextToken"), Some("Z3M3LMPEXAMPLE="));
    }
    let e = c.describe_auto_scaling_instances_of_group("other-asg").await.unwrap_err();
    assert!(matches!(e, AwsApiError::GroupNotFound(_)), "{e:?}");
    assert!(c.describe_auto_scaling_instances_of_group("").await.is_err());
}

#[tokio::test]
async fn wrong_secret_is_rejected_by_signature_check() {
    let log = Arc::new(Mutex::new(Log::default()));
    let server = fake_aws(log.clone()).await;
    let c = client(&server, "not-the-secret");
    let e = c.describe_auto_scaling_instances_of_group("my-asg").await.unwrap_err();
    assert_eq!(e.code(), Some("SignatureDoesNotMatch"), "{e:?}");
    assert!(matches!(e, AwsApiError::Service { status: 403, .. }));
    assert!(log.lock().unwrap().calls.is_empty());
}

#[tokio::test]
async fn find_group_of_instance() {
    let log = Arc::new(Mutex::new(Log::default()));
    let server = fake_aws(log.clone()).await;
    let c = client(&server, NODE_SECRET);
    let info = c.find_group_of_instance(JOINER_INSTANCE).await.unwrap().unwrap();
    assert_eq!(info.group_name, "my-asg");
    assert_eq!(info.lifecycle_state, "Pending:Wait");
    assert_eq!(info.instance_id, JOINER_INSTANCE);
    assert_eq!(c.find_group_of_instance("i-0123456789abcdef0").await.unwrap(), None);
    assert!(c.find_group_of_instance("i-XYZ").await.is_err());
    let lg = log.lock().unwrap();
    assert_eq!(param(&lg.calls[0].1, "InstanceIds.member.1"), Some(JOINER_INSTANCE));
    assert_eq!(param(&lg.calls[0].1, "Version"), Some("2011-01-01"));
}

#[tokio::test]
async fn describe_instances_paginated_and_errors_mapped() {
    let log = Arc::new(Mutex::new(Log::default()));
    let server = fake_aws(log.clone()).await;
    let c = client(&server, NODE_SECRET);
    let ids = ["i-0123456789abcdef0", "i-0fedcba9876543210", "i-0aaaabbbbccccdddd", "i-0123456789abcdef0"];
    let got = c.describe_instances(&ids).await.unwrap();
    assert_eq!(
        got,
        vec![
            Ec2Instance {
                instance_id: "i-0123456789abcdef0".into(),
                private_ip: Some("10.0.0.157".parse().unwrap()),
                image_id: "ami-0abcdef1234567890".into(),
                state: "running".into(),
            },
            Ec2Instance {
                instance_id: "i-0aaaabbbbccccdddd".into(),
                private_ip: None,
                image_id: "ami-0abcdef1234567890".into(),
                state: "terminated".into(),
            },
            Ec2Instance {
                instance_id: "i-0fedcba9876543210".into(),
                private_ip: Some("10.0.1.23".parse().unwrap()),
                image_id: "ami-0fedcba0987654321".into(),
                state: "pending".into(),
            },
        ]
    );
    {
        let lg = log.lock().unwrap();
        assert_eq!(lg.calls.len(), 2);
        let p = &lg.calls[0].1;
        assert_eq!(param(p, "InstanceId.1"), Some("i-0123456789abcdef0"));
        assert_eq!(param(p, "InstanceId.3"), Some("i-0aaaabbbbccccdddd"));
        assert_eq!(param(p, "InstanceId.4"), None, "duplicates removed");
        assert_eq!(param(&lg.calls[1].1, "NextToken"), Some("eyJ2IjoiMiIsImMiOiJFWEFNUExFIn0="));
    }
    let e = c.describe_instances(&["i-00000000"]).await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidInstanceID.NotFound"));
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(c.describe_instances(&["i-0123&Action=Evil"]).await.is_err());
}

#[tokio::test]
async fn transient_5xx_is_retried() {
    let log = Arc::new(Mutex::new(Log::default()));
    let server = fake_aws(log.clone()).await;
    let c = client(&server, NODE_SECRET);
    log.lock().unwrap().fail_next = 2;
    assert!(c.find_group_of_instance(JOINER_INSTANCE).await.unwrap().is_some());
    log.lock().unwrap().fail_next = 3;
    let e = c.find_group_of_instance(JOINER_INSTANCE).await.unwrap_err();
    assert!(matches!(e, AwsApiError::UnexpectedStatus { status: 503, .. }), "{e:?}");
}

#[tokio::test]
async fn sts_forwarding_of_a_joiner_signed_request() {
    let log = Arc::new(Mutex::new(Log::default()));
    let server = fake_aws(log.clone()).await;
    let verifier = client(&server, NODE_SECRET);
    let joiner = AwsCredentials::new(JOINER_AKID, JOINER_SECRET, Some("JOINERTOKEN"));
    let sts = server.base_url();
    let signed = sigv4::signed_request_for_sts_get_caller_identity(
        &joiner,
        REGION,
        &[("x-vssm-challenge", "q2x8bG9"), ("x-vssm-ephemeral-key-sha256", "9f86d081884c7d65")],
        SystemTime::now(),
        Some(&sts),
    )
    .unwrap();
    // Travels as JSON.
    let signed: SignedRequest = serde_json::from_str(&serde_json::to_string(&signed).unwrap()).unwrap();
    let id = verifier.sts_get_caller_identity(&signed).await.unwrap();
    assert_eq!(id.account, "123456789012");
    assert_eq!(id.arn, format!("arn:aws:sts::123456789012:assumed-role/vssm-node-role/{JOINER_INSTANCE}"));
    assert_eq!(id.user_id, format!("AROA3XFRBF535PLBIFPI4:{JOINER_INSTANCE}"));
    assert_eq!(assumed_role_session_name(&id.arn), Some(JOINER_INSTANCE));

    // Tampering with a bound header breaks the signature at "STS".
    let mut t = signed.clone();
    t.headers.iter_mut().filter(|h| h.0 == "x-vssm-challenge").for_each(|h| h.1 = "other".into());
    assert_eq!(verifier.sts_get_caller_identity(&t).await.unwrap_err().code(), Some("SignatureDoesNotMatch"));

    // Refused locally: other body, other host, other URL, hop-by-hop headers, not POST.
    let refused = |r: SignedRequest| {
        let v = &verifier;
        async move { matches!(v.sts_get_caller_identity(&r).await, Err(AwsApiError::InvalidInput(_))) }
    };
    let mut r = signed.clone();
    r.body = "Action=AssumeRole&Version=2011-06-15".into();
    assert!(refused(r).await);
    let mut r = signed.clone();
    r.headers.iter_mut().filter(|h| h.0 == "host").for_each(|h| h.1 = "sts.us-east-1.amazonaws.com".into());
    assert!(refused(r).await);
    let mut r = signed.clone();
    r.url = "https://evil.example.com/".into();
    assert!(refused(r).await);
    let mut r = signed.clone();
    r.url = format!("{}?Action=GetCallerIdentity", server.base_url().origin());
    assert!(refused(r).await);
    let mut r = signed.clone();
    r.headers.push(("transfer-encoding".into(), "chunked".into()));
    assert!(refused(r).await);
    let mut r = signed.clone();
    r.headers.push(("host".into(), "second".into()));
    assert!(refused(r).await);
    let mut r = signed.clone();
    r.method = "GET".into();
    assert!(refused(r).await);
    let mut r = signed.clone();
    r.headers.retain(|h| h.0 != "authorization");
    assert!(refused(r).await);
    assert_eq!(log.lock().unwrap().calls.len(), 1);
}

#[tokio::test]
async fn credentials_from_imds_are_used_and_cached() {
    let imds_hits = Arc::new(Mutex::new(0u32));
    let hits = imds_hits.clone();
    let imds_server = TestServer::start(move |req| match req.uri.as_str() {
        "/latest/api/token" => TestResponse::new(200, "IMDSTOKEN"),
        "/latest/meta-data/iam/security-credentials/" => TestResponse::new(200, "vssm-node-role"),
        "/latest/meta-data/iam/security-credentials/vssm-node-role" => {
            *hits.lock().unwrap() += 1;
            let exp = humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(3600));
            TestResponse::new(
                200,
                format!(
                    r#"{{"Code":"Success","LastUpdated":"2012-04-26T16:39:16Z","Type":"AWS-HMAC","AccessKeyId":"{NODE_AKID}","SecretAccessKey":"{NODE_SECRET}","Token":"{NODE_TOKEN}","Expiration":"{exp}"}}"#
                ),
            )
        }
        _ => TestResponse::new(404, ""),
    })
    .await;
    let log = Arc::new(Mutex::new(Log::default()));
    let server = fake_aws(log.clone()).await;
    let imds = Arc::new(ImdsClient::new(&imds_server.base_url().to_string()).unwrap());
    let c = AwsApiClient::new(
        HttpClient::new(),
        REGION,
        endpoints(&server),
        CredentialSource::Imds(imds),
        AwsApiConfig::default(),
    )
    .unwrap();
    assert!(c.find_group_of_instance(JOINER_INSTANCE).await.unwrap().is_some());
    assert!(c.find_group_of_instance(JOINER_INSTANCE).await.unwrap().is_some());
    assert_eq!(*imds_hits.lock().unwrap(), 1);
}

#[test]
fn member_states_and_arns() {
    for s in ["Pending", "Pending:Wait", "Pending:Proceed", "InService"] {
        assert!(is_member_state(s), "{s}");
    }
    for s in
        ["Quarantined", "Terminating", "Terminating:Wait", "Detached", "Standby", "inservice", "Warmed:Running", ""]
    {
        assert!(!is_member_state(s), "{s}");
    }
    assert_eq!(
        assumed_role_session_name("arn:aws:sts::123456789012:assumed-role/my-role/i-0123456789abcdef0"),
        Some("i-0123456789abcdef0")
    );
    let p = parse_assumed_role_arn("arn:aws-us-gov:sts::123456789012:assumed-role/R+=,.@_-/s").map(|a| a.role);
    assert_eq!(p, None, "session too short");
    let p = parse_assumed_role_arn("arn:aws-cn:sts::123456789012:assumed-role/R+=,.@_-/sess").unwrap();
    assert_eq!((p.partition, p.account, p.role, p.session), ("aws-cn", "123456789012", "R+=,.@_-", "sess"));
    for bad in [
        "arn:aws:iam::123456789012:role/my-role",
        "arn:aws:sts::123456789012:assumed-role/my-role",
        "arn:aws:sts::123456789012:assumed-role/my-role/i-1/extra",
        "arn:aws:sts::12345678901:assumed-role/my-role/i-01234567",
        "arn:aws:sts:us-east-1:123456789012:assumed-role/my-role/i-01234567",
        "arn:aws:sts::123456789012:federated-user/bob",
        "arn:aws:sts::123456789012:assumed-role//i-01234567",
        "arn:aws:sts::123456789012:assumed-role/r/i 0123",
    ] {
        assert_eq!(assumed_role_session_name(bad), None, "{bad}");
    }
    assert!(valid_instance_id("i-01234567") && valid_instance_id("i-0123456789abcdef0"));
    assert!(
        !valid_instance_id("i-0123456789ABCDEF0") && !valid_instance_id("i-012") && !valid_instance_id("x-01234567")
    );
    let ep = AwsEndpoints::for_region("eu-central-1").unwrap();
    assert_eq!(ep.autoscaling.to_string(), "https://autoscaling.eu-central-1.amazonaws.com/");
    assert_eq!(ep.ec2.to_string(), "https://ec2.eu-central-1.amazonaws.com/");
    assert_eq!(ep.sts.to_string(), "https://sts.eu-central-1.amazonaws.com/");
    assert!(AwsEndpoints::for_region("evil.com/x").is_err());
}
