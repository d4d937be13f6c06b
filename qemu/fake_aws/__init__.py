"""fake_aws: a small fake of the AWS pieces VSSM's cluster attestation uses
(per-instance IMDSv2, signed identity documents, Auto Scaling / EC2 / STS
query APIs with SigV4 checks). README.md documents the command line and the
control API; the entry point is fake_aws.py.

Modules: common (defaults, helpers, errors, pagination), identity (test CA,
identity document), imds (IMDSv2 tokens and tree, listeners, --imds-stdio),
sigv4 (verification), autoscaling, ec2, sts (one query API each), state (the
Fake: instances, groups, credentials, request log, faults), server (control
and query API handlers, main).

Importing the package loads no third-party module: `cryptography` is loaded
only when the test CA is made (not in the --imds-stdio processes).
"""
