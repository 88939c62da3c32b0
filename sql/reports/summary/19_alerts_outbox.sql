/* Alerts outbox */
select kind, status, count(*) as alerts from alerts_outbox group by all order by kind, status
