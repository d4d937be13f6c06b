#!/bin/sh
# Packer 1.6.6's amazon builders cannot set the AMI boot mode (boot_mode came
# with the separate amazon plugin, packer >= 1.7). The image boots only under
# UEFI (a GPT disk with an ESP and a UKI, no BIOS boot code), so re-register the
# snapshot packer made as a UEFI AMI and drop the intermediate AMI.
# Needs the AWS CLI with the same credentials packer used.
set -eu
: "${AWS_REGION:?}" "${VSSM_AMI_NAME:?}"
# PACKER_BUILD's artifact id looks like "eu-west-1:ami-0123..."
ami=$(printf '%s' "${PACKER_ARTIFACT_ID:-}" | sed 's/.*://')
[ -n "$ami" ] || ami=$(aws ec2 describe-images --region "$AWS_REGION" --owners self \
  --filters "Name=name,Values=$VSSM_AMI_NAME" --query 'Images[0].ImageId' --output text)
snap=$(aws ec2 describe-images --region "$AWS_REGION" --image-ids "$ami" \
  --query 'Images[0].BlockDeviceMappings[0].Ebs.SnapshotId' --output text)
aws ec2 deregister-image --region "$AWS_REGION" --image-id "$ami"
new=$(aws ec2 register-image --region "$AWS_REGION" --name "$VSSM_AMI_NAME" \
  --description "VSSM appliance (UEFI)" --architecture x86_64 --virtualization-type hvm \
  --boot-mode uefi --ena-support --sriov-net-support simple --imds-support v2.0 \
  --root-device-name /dev/xvda \
  --block-device-mappings "DeviceName=/dev/xvda,Ebs={SnapshotId=$snap,DeleteOnTermination=true,VolumeType=gp3}" \
  --query ImageId --output text)
echo "register-uefi: $ami (intermediate, deregistered) -> $new (boot mode uefi, snapshot $snap)"
