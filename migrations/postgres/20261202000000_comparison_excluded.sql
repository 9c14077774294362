-- The models a comparison left out (they do not take the dataset's images,
-- or duplicate another model), each with why, as a JSON array of
-- [model, kind, reason, same_as]; they are not stored as reports.
ALTER TABLE comparisons ADD COLUMN excluded TEXT NOT NULL DEFAULT '[]';
