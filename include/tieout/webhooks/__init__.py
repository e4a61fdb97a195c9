"""Webhooks in: verify signed events from a source, record each once, run its extract soon.

The nightly poll stays the source of completeness; a lost or refused event only delays data.
"""
