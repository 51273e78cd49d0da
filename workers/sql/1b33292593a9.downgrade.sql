-- Undo revision 1b33292593a9: drop every table it made, dependents first, and the enum.
DROP TABLE IF EXISTS public.product_features;
DROP TABLE IF EXISTS public.personalized_product_sections;
DROP TABLE IF EXISTS public.variant_attributes;
DROP TABLE IF EXISTS public.variants;
DROP TABLE IF EXISTS public.product_reviews;
DROP TABLE IF EXISTS public.features;
DROP TABLE IF EXISTS public.product_images;
DROP TABLE IF EXISTS public.users;
DROP TABLE IF EXISTS public.products;
DROP TYPE IF EXISTS public.personalized_product_section_status;
