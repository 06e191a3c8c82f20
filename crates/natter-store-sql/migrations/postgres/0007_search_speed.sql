-- Issue 19, item 4 (ADR 0021). PostgreSQL keeps its indexes as migration 0005 made them;
-- this step keeps both backends at the same versions.
SELECT 1;
