-- An attempt is logged only for a delivery notify holds (claimed, or queued claimed in the same
-- transaction), and no delivery is ever deleted. The foreign key checked that again for every
-- attempt with a row lock on the delivery, which the next status change of that delivery then
-- had to step past.
ALTER TABLE attempts DROP CONSTRAINT IF EXISTS attempts_delivery_id_fkey;
