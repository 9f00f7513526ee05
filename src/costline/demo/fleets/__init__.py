"""The demo organization's resources on every provider it uses."""

from __future__ import annotations

from costline.demo.fleets import aws, azure, gcp, lambda_cloud
from costline.demo.org import Account, Resource

ACCOUNTS: tuple[Account, ...] = (aws.ACCOUNT, azure.ACCOUNT, gcp.ACCOUNT, lambda_cloud.ACCOUNT)


def organization(scale: float = 1.0) -> list[Resource]:
    """Every resource, provider by provider, in a fixed order; `scale` multiplies instance counts."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    resources = aws.build(scale) + azure.build(scale) + gcp.build(scale) + lambda_cloud.build(scale)
    keys = [r.key for r in resources]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate resource keys in the demo organization")
    return resources
