-- Tips per commune, day and channel
-- How many tips each commune received, day by day (Vietnam time), and through which channel.
-- param day_from Date: first day counted
-- param day_to Date: last day counted
WITH
    toDate('2025-01-01') AS day_from,  -- param day_from
    toDate('2030-12-31') AS day_to  -- param day_to
SELECT day, commune_code, channel, sum(tips) AS tips
FROM tips_per_day
WHERE day BETWEEN day_from AND day_to
GROUP BY day, commune_code, channel
ORDER BY day, commune_code, channel
