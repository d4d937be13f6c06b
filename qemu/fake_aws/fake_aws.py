#!/usr/bin/env python3
"""fake_aws: the command line (see README.md next to this file). The code is
the package this file sits in, split by service: common, identity (test CA,
identity documents), imds (IMDSv2, --imds-stdio), sigv4, autoscaling, ec2,
sts, state (instances, groups, request log), server (control and query API
servers, main)."""

import os
import sys

if __name__ == "__main__":
    # Run as a script, this directory is sys.path[0] and `fake_aws` would be
    # this file: put the parent first so that `fake_aws` is the package.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from fake_aws.server import main

    sys.exit(main())
