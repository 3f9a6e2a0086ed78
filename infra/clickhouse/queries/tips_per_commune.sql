-- Tips per commune, day and channel
-- How many tips each commune received, day by day (Vietnam time), and through which channel; beside them, the messages read as no tip (questions, thanks, news), which never count as tips.
-- param day_from Date: first day counted
-- param day_to Date: last day counted
-- column day: Vietnam date
-- column commune_code: 2025 commune code (vietnam-provinces)
-- column commune_name: the commune's name (xã, phường or đặc khu)
-- column province_name: the province's name
-- column channel: zalo, facebook, hotline, sms, vneid, web or in_person
-- column tips: tips received
-- column not_tips: messages read as no tip
WITH
    toDate('2025-01-01') AS day_from,  -- param day_from
    toDate('2030-12-31') AS day_to  -- param day_to
SELECT day, commune_code, commune_name, province_name, channel, sum(tips) AS tips, sum(not_tips) AS not_tips
FROM tips_per_day
WHERE day BETWEEN day_from AND day_to
GROUP BY day, commune_code, commune_name, province_name, channel
ORDER BY day, commune_code, channel
