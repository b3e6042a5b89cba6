CREATE TABLE a(x, y);
CREATE TABLE b(x UNIQUE, z);
INSERT INTO a VALUES (1, 'p'), (2, 'q'), (2, 'r');
INSERT INTO b VALUES (1, 10), (2, 20);
SELECT a.y, sum(b.z), group_concat(a.y, '|') FROM a LEFT JOIN b USING(x) GROUP BY a.x HAVING count(*) > 0;
