-- An `nvidia-smi --query-gpu=... --format=csv[,nounits][,noheader]` log -> `file_samples`
-- (replica_id, gpu, ts, utilization 0-1). Columns are read positionally as c0, c1, ... and found
-- by field name in Python (from the header, or the documented order when `$header` is false),
-- which passes the position of each as its own column name: `ts_text`, `utilization_text` and,
-- when the log tells GPUs apart (`pci.bus_id`, `uuid` or `index`), `gpu_text`. A utilization
-- reads the same with units (`37 %`) and without (`37`). Rows that do not parse (`[N/A]`, a
-- repeated header) have a NULL ts or utilization.

-- name: samples_by_gpu
create or replace temp table file_samples as
select
    $replica as replica_id,
    trim(gpu_text) as gpu,
    try_strptime(trim(ts_text), ['%Y/%m/%d %H:%M:%S.%g', '%Y/%m/%d %H:%M:%S']) as ts,
    try_cast(trim(replace(utilization_text, '%', '')) as double) / 100 as utilization
from read_csv($path, header = $header, names = $names, all_varchar = true, strict_mode = false, null_padding = true);

-- name: samples_of_one_gpu
create or replace temp table file_samples as
select
    $replica as replica_id,
    '0' as gpu,
    try_strptime(trim(ts_text), ['%Y/%m/%d %H:%M:%S.%g', '%Y/%m/%d %H:%M:%S']) as ts,
    try_cast(trim(replace(utilization_text, '%', '')) as double) / 100 as utilization
from read_csv($path, header = $header, names = $names, all_varchar = true, strict_mode = false, null_padding = true);

-- name: no_samples
create or replace temp table file_samples (replica_id varchar, gpu varchar, ts timestamp, utilization double);
