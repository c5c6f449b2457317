-- Migration 0013 guards releases made by UPDATE (the way photos are released: joining a
-- delivery row). A photo row inserted with released_at already set went round it: for a
-- failed job that is a withheld photo released all the same. Refused like the UPDATE.
CREATE FUNCTION generated_photos_insert_release_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM generation_jobs j WHERE j.id = NEW.job_id AND j.status = 'failed') THEN
        RAISE EXCEPTION 'a photo of failed job % is withheld: it cannot be inserted released', NEW.job_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER generated_photos_insert_release_guard BEFORE INSERT ON generated_photos
    FOR EACH ROW WHEN (NEW.released_at IS NOT NULL) EXECUTE FUNCTION generated_photos_insert_release_guard();

-- Like every function of the schema (migration 0018): this schema first, pg_temp last.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION generated_photos_insert_release_guard() SET search_path = %I, pg_temp', current_schema());
END
$$;
