#!/usr/bin/env bash
# Creates the warehouse and Airflow databases with their own owners on first start.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username postgres <<SQL
create role airflow login password '${AIRFLOW_DB_PASSWORD}';
create role tieout login password '${WAREHOUSE_PASSWORD}';
create database airflow owner airflow;
create database tieout owner tieout;
SQL
