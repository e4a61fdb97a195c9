"""The HTTP layer extract and reverse ETL share: connections, auth, the client with its retry
rule and request budget, the request log, and the client of Airflow's own REST API.

Stage-specific work stays in its stage: pagination and records in extract, plan, send and
verify in reverse ETL. tieout's own code speaks HTTP through requests only.
"""
