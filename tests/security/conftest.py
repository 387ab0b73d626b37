"""Hostile input, secrets and addresses (issue 13): each test is an attack that must fail.

Tests here run against devhost + Azurite as real processes (the `host` fixtures come from
`tests.e2e.app_host`), and a few check pure guards directly.
"""
