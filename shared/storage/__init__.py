"""Azure Storage gateways: the only code that talks to the storage SDKs."""
