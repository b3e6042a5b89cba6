CREATE TABLE log(msg);
CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT CHECK(length(name) < 20));
CREATE TRIGGER item_ins AFTER INSERT ON item BEGIN INSERT INTO log VALUES ('added ' || new.name); END;
CREATE VIEW v AS SELECT name, (SELECT count(*) FROM log) AS n FROM item;
INSERT INTO item(name) VALUES ('x'), ('y');
SELECT * FROM v WHERE name LIKE '%x%' OR name GLOB 'y*';
