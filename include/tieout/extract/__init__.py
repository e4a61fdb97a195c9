"""tieout.extract: declarative REST sources into raw PostgreSQL, exactly once, at COPY speed.

It only reads from source systems; it must never write to them or hold every page in memory.
"""
