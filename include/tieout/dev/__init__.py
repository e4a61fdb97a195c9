"""Tools for running tieout on one machine: the demo, the local Airflow UI, a Celery cluster.

The stages never import this package; `tieout demo`, `tieout ui`, `tieout airflow`,
`tieout pools` and `tieout backfill` do. The sandbox systems (`tieout_sandbox`, a package of
their own) are imported only here, inside the functions that need them.
"""
