"""Governance before the spend: experiment manifests read from files or the configuration,
priced before launch (`estimate`) and checked in CI (`gate`)."""
