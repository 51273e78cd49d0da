-- Undo revision 1b33292593a9: drop every table it made, dependents first, and the enum.
DROP TABLE IF EXISTS public.product_features;
DROP TABLE IF EXISTS public.personalized_product_section;
DROP TABLE IF EXISTS public.variant_attributes;
DROP TABLE IF EXISTS public.variants;
DROP TABLE IF EXISTS public.review;
DROP TABLE IF EXISTS public.features;
DROP TABLE IF EXISTS public.product_image;
DROP TABLE IF EXISTS public.users;
DROP TABLE IF EXISTS public.product;
DROP TYPE IF EXISTS public.personalized_product_section_status;
