-- An `nvidia-smi --query-gpu=... --format=csv` log -> `file_samples` (replica_id, gpu, ts,
-- utilization 0-1). Columns are read positionally as c0, c1, ... and found by header name in
-- Python, which passes the position of each as its own column name: `ts_text`, `utilization_text`
-- and, when the log tells GPUs apart (`pci.bus_id` or `index`), `gpu_text`.
-- Rows that do not parse have a NULL ts or utilization.

-- name: samples_by_gpu
create or replace temp table file_samples as
select
    $replica as replica_id,
    trim(gpu_text) as gpu,
    try_strptime(trim(ts_text), ['%Y/%m/%d %H:%M:%S.%g', '%Y/%m/%d %H:%M:%S']) as ts,
    try_cast(trim(replace(utilization_text, '%', '')) as double) / 100 as utilization
from read_csv($path, header = true, names = $names, all_varchar = true, strict_mode = false, null_padding = true);

-- name: samples_of_one_gpu
create or replace temp table file_samples as
select
    $replica as replica_id,
    '0' as gpu,
    try_strptime(trim(ts_text), ['%Y/%m/%d %H:%M:%S.%g', '%Y/%m/%d %H:%M:%S']) as ts,
    try_cast(trim(replace(utilization_text, '%', '')) as double) / 100 as utilization
from read_csv($path, header = true, names = $names, all_varchar = true, strict_mode = false, null_padding = true);
