"""Integration health: per-run metrics of every source and target, and the rules that judge
each one healthy, degraded or failing."""
