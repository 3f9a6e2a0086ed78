-- Valuable ratio per channel and source group
-- Which Zalo groups, pages and lines bring tips that prove valuable: tips with a verdict, valuable and false reports, per commune, channel and source group.
-- param province Int: 2025 province code, 0 for every province
-- param min_verdicts Int: leave out groups with fewer verdicts than this
-- column commune_code: 2025 commune code (vietnam-provinces)
-- column commune_name: the commune's name (xã, phường or đặc khu)
-- column province_name: the province's name
-- column channel: zalo, facebook, hotline, sms, vneid, web or in_person
-- column source_group: the Zalo group, page or line the tips came through
-- column verdicts: tips with an officer's verdict
-- column valuable: of them, valuable
-- column false_reports: of them, false reports
-- column valuable_ratio: valuable / verdicts
WITH
    0 AS province,  -- param province
    1 AS min_verdicts  -- param min_verdicts
SELECT commune_code, commune_name, province_name, channel, source_group, verdicts, valuable, false_reports, valuable_ratio
FROM valuable_ratio_by_source
WHERE (province = 0 OR province_code = province) AND verdicts >= min_verdicts
ORDER BY commune_code, channel, source_group
