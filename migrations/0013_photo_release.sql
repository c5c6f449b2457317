-- Which photos the customer got: a photo is released when it joins a delivery row (an album
-- made while its job runs, or the rows made when the job ends). Only released photos are
-- shown by the API or sent to Telegram. A job that ends below the refund rule's threshold
-- is `failed`: its released photos are paid for, the others are withheld for good and their
-- share of the price refunded, so nobody both keeps a photo and gets its price back.
-- `delivery_id` cannot say this on its own: pruning an old delivery row clears it.
ALTER TABLE generated_photos ADD COLUMN released_at timestamptz;
ALTER TABLE generated_photos ADD CONSTRAINT generated_photos_released_when_batched
    CHECK (delivery_id IS NULL OR released_at IS NOT NULL);

-- Before this migration every photo of a finished job was sent, and the albums made while a
-- job ran are in delivery rows.
UPDATE generated_photos p
SET released_at = coalesce((SELECT d.created_at FROM telegram_deliveries d WHERE d.id = p.delivery_id), j.finished_at, p.created_at)
FROM generation_jobs j
WHERE j.id = p.job_id AND (p.delivery_id IS NOT NULL OR j.status IN ('completed', 'partial', 'failed'));

-- A release is final (the customer has the photo), and a failed job releases nothing more:
-- what it withheld at its end stays withheld, whoever writes the row.
CREATE FUNCTION generated_photos_release_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.released_at IS NOT NULL AND NEW.released_at IS DISTINCT FROM OLD.released_at THEN
        RAISE EXCEPTION 'photo % was released at %: a release cannot be changed', OLD.id, OLD.released_at
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.released_at IS NULL AND NEW.released_at IS NOT NULL
       AND EXISTS (SELECT 1 FROM generation_jobs j WHERE j.id = NEW.job_id AND j.status = 'failed') THEN
        RAISE EXCEPTION 'photo % of failed job % is withheld: it cannot be released', NEW.id, NEW.job_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER generated_photos_release_guard BEFORE UPDATE OF released_at ON generated_photos
    FOR EACH ROW EXECUTE FUNCTION generated_photos_release_guard();

