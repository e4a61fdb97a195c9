-- Why: the drift report writes an Excel workbook beside its HTML and CSV; the run row says
-- where, like it does for the other two. Nothing else about a run changes.
alter table recon.drift_runs add column if not exists report_xlsx text;
