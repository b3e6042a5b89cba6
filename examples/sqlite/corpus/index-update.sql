CREATE TABLE kv(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;
CREATE INDEX kv_v ON kv(length(v));
INSERT OR REPLACE INTO kv VALUES ('a', x'0102'), ('b', zeroblob(4)), ('a', 'text');
UPDATE kv SET v = v || 'x' WHERE k BETWEEN 'a' AND 'b';
DELETE FROM kv WHERE typeof(v) = 'blob';
SELECT k, hex(v), json_array(k, length(v)) FROM kv;
