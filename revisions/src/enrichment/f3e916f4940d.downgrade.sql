-- Undoing revision f3e916f4940d: the values the enrichment replaced go back
-- (where the row still holds what the enrichment wrote; a value changed since
-- by someone else stays), then its tables go. The usage rows stay: they are
-- the history of what runs cost.
UPDATE public.product_reviews r
   SET feature_id = CASE WHEN EXISTS (SELECT 1 FROM public.features f WHERE f.id = b.feature_id)
                         THEN b.feature_id END,
       sentiment  = b.sentiment
  FROM pipeline.enrichment_backup b
  JOIN pipeline.enrichment_reviews s ON s.review_id = b.review_id
 WHERE r.id = b.review_id
   AND r.feature_id IS NOT DISTINCT FROM s.wrote_feature_id
   AND r.sentiment IS NOT DISTINCT FROM s.wrote_sentiment;
DROP TABLE IF EXISTS public.review_feature_sentiments;
DROP TABLE IF EXISTS pipeline.enrichment_reviews;
DROP TABLE IF EXISTS pipeline.enrichment_backup;
DROP TABLE IF EXISTS pipeline.enrichment_failures;
DROP TABLE IF EXISTS pipeline.enrichment_batches;
