-- Issue 20: group DMs (the SQLite migration of the same number says what they are).
ALTER TABLE rooms DROP CONSTRAINT rooms_kind_check;
ALTER TABLE rooms ADD CONSTRAINT rooms_kind_check
    CHECK (kind IN ('public', 'dm', 'private', 'group'));
