"""Domo's public API (api.domo.com): ``/oauth/token`` and ``/v1/...``, as the official SDKs use it."""
