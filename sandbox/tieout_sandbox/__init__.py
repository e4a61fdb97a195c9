"""tieout_sandbox: four small HTTP services (crm, erp, billing, shop) with seeded divergence.

It stands in for real systems in the demo and the tests; it must never talk to a real system.
"""

SYSTEMS: tuple[str, ...] = ("crm", "erp", "billing", "shop")
# the largest company `seed` makes: 100 = ~100,000 customers, ~1,000,000 orders (minutes, a few
# GB); beyond that a seed runs for hours and fills the disk
MAX_SCALE = 100.0
