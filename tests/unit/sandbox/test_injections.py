"""Every injection kind the generator draws has its function, acting at a moment that exists."""

from __future__ import annotations

import random

from tieout_sandbox import generate

ORDER_MOMENTS = {
    "order",
    "shop_order_written",
    "erp_order",
    "erp_order_written",
    "erp_invoice",
    "erp_invoice_written",
    "billing_invoice",
    "billing_invoice_written",
    "payment",
    "payments_written",
}


def test_every_drawn_order_kind_is_registered_at_a_real_moment():
    drawn = {name for _, name in generate.ORDER_INJECTION_THRESHOLDS} | {"clean"}
    assert set(generate.ORDER_INJECTIONS) == drawn
    for kind, injection in generate.ORDER_INJECTIONS.items():
        assert injection.stage in ORDER_MOMENTS, kind
    thresholds = [threshold for threshold, _ in generate.ORDER_INJECTION_THRESHOLDS]
    assert thresholds == sorted(thresholds)


def test_every_customer_action_of_the_plan_is_registered():
    rng = random.Random(1)
    actions = {generate.customer_plan(rng)[0] for _ in range(20_000)}
    assert actions == {"clean", "missing", "duplicate", "mismatch", "benign"}
    assert set(generate.CUSTOMER_ACTIONS) == actions - {"clean"}
    assert {moment for moment, _ in generate.CUSTOMER_ACTIONS.values()} == {"views", "written"}
