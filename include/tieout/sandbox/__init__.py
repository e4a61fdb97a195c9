"""tieout.sandbox: four small HTTP services (crm, erp, billing, shop) with seeded divergence.

It stands in for real systems in the demo and the tests; it must never talk to a real system.
"""

SYSTEMS: tuple[str, ...] = ("crm", "erp", "billing", "shop")
