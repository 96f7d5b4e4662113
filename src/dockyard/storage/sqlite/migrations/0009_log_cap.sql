-- log_max_bytes is capped at 1 GiB (a reader or a worker holding more was a memory hazard):
-- definitions stored before the cap take it, so that they still load.
UPDATE definitions SET document = json_set(document, '$.log_max_bytes', 1073741824)
WHERE json_extract(document, '$.log_max_bytes') > 1073741824;
