CREATE TABLE t1(a INTEGER PRIMARY KEY, b TEXT, c REAL);
INSERT INTO t1(b, c) VALUES ('one', 1.5), ('two', 2.5), (NULL, -3);
SELECT a, upper(b), c * 2 FROM t1 WHERE c > 0 ORDER BY b DESC;
