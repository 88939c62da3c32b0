/* Ingest: where every line went */
select sum(lines) as lines, sum(kept) as kept, sum(quarantined) as quarantined,
       sum(duplicates) as duplicates
from gateway_ingest_audit where day between $first and $last
