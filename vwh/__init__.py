"""vwh: build, test and debug Vendasta automation webhooks."""

__version__ = "0.1.0"
