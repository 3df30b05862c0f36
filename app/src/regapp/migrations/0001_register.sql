-- The voter register's tables, match keys, duplicate rules and audit trail.
-- Runs as register_owner (the migrate role sets it); objects belong to the owner, and the app's
-- role reaches voters, held registrations and the audit trail only through the functions below.

CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA register;
CREATE EXTENSION IF NOT EXISTS btree_gin SCHEMA register;

-- Administrative units (gazetteer) and polling stations ------------------------------------

CREATE TABLE register.admin_unit (
  code text PRIMARY KEY CHECK (code ~ '^[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{2})?)?)?$'),
  level text NOT NULL CHECK (level IN ('province', 'district', 'commune', 'village')),
  name_km text NOT NULL,
  name_latin text NOT NULL,
  parent_code text REFERENCES register.admin_unit (code),
  CHECK (length(code) = CASE level WHEN 'province' THEN 2 WHEN 'district' THEN 4
                                   WHEN 'commune' THEN 6 ELSE 8 END),
  CHECK ((level = 'province') = (parent_code IS NULL))
);
CREATE INDEX admin_unit_parent ON register.admin_unit (parent_code);

CREATE TABLE register.polling_station (
  code text PRIMARY KEY,
  name_km text NOT NULL,
  name_latin text NOT NULL,
  commune_code text NOT NULL REFERENCES register.admin_unit (code)
);
CREATE INDEX polling_station_commune ON register.polling_station (commune_code);

-- Match keys ---------------------------------------------------------------------------------

-- Text as the register stores it: NFC, invisible format characters other than the joiners
-- (which change how Khmer renders) removed, any run of spaces one plain space.
CREATE FUNCTION register.clean_text(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN btrim(regexp_replace(
  regexp_replace(normalize(t, NFC),
    '[\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B\u200E\u200F\u202A-\u202E\u2060-\u206F\uFEFF]',
    '', 'g'),
  '[[:space:]\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+', ' ', 'g'));

-- What a stored name may hold: NFC; Khmer letters, signs and the joiners (Khmer names) or Latin
-- letters, apostrophes, dots and hyphens (Latin names); words separated by one plain space.
-- Checked with one regular expression each, so a bulk load stays fast.
CREATE FUNCTION register.is_khmer_name(t text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN t IS NFC NORMALIZED
  AND t ~ '^[\u1780-\u17DD\u200C\u200D]+( [\u1780-\u17DD\u200C\u200D]+)*$';

CREATE FUNCTION register.is_latin_name(t text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN t IS NFC NORMALIZED AND t ~ '^[A-Za-z\u00C0-\u024F''.-]+( [A-Za-z\u00C0-\u024F''.-]+)*$';

-- The Khmer key of a stored Khmer name: without the joiners, without the subscript sign COENG
-- (trigrams split words at every character the C library does not call a letter, and COENG is
-- the one Khmer character it does not), and without the signs writers use interchangeably
-- (MUUSIKATOAN to VIRIAM, BATHAMASAT, ATTHACAN); deprecated independent vowels are spelt out.
CREATE FUNCTION register.khmer_key(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN replace(replace(
  translate(t, U&'\17D2\17C9\17CA\17CB\17CC\17CD\17CE\17CF\17D0\17D1\17D3\17DD\200C\200D', ''),
  U&'\17A3', U&'\17A2'), U&'\17A4', U&'\17A2\17B6');

-- The Latin key of a stored Latin name: accents removed, lower case, punctuation as spaces.
CREATE FUNCTION register.latin_key(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN translate(lower(CASE WHEN t ~ '[^\x20-\x7E]'
                            THEN regexp_replace(normalize(t, NFD), '[\u0300-\u036F]', '', 'g')
                            ELSE t END), '-''.', '   ');

-- A national ID as typed (Khmer or Latin digits, spaces, dashes) to its nine Latin digits.
CREATE FUNCTION register.clean_national_id(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN regexp_replace(translate(t, '០១២៣៤៥៦៧៨៩', '0123456789'),
                      '[-[:space:]\u00A0\u00AD\u200B-\u200F\u202A-\u202E\u2060-\u206F\uFEFF]',
                      '', 'g');

-- Voters, held registrations -------------------------------------------------------------------

CREATE TABLE register.voter (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  national_id text NOT NULL CHECK (national_id ~ '^[0-9]{9}$'),
  name_km text NOT NULL CHECK (register.is_khmer_name(name_km) AND length(name_km) <= 120),
  name_latin text NOT NULL CHECK (register.is_latin_name(name_latin)
                                  AND length(name_latin) <= 120),
  sex text NOT NULL CHECK (sex IN ('F', 'M')),
  date_of_birth date NOT NULL CHECK (date_of_birth >= DATE '1900-01-01'),
  commune_code text NOT NULL REFERENCES register.admin_unit (code),
  village_code text REFERENCES register.admin_unit (code),
  polling_station text NOT NULL REFERENCES register.polling_station (code),
  key_km text GENERATED ALWAYS AS (register.khmer_key(name_km)) STORED,
  key_latin text GENERATED ALWAYS AS (register.latin_key(name_latin)) STORED,
  registered_at timestamptz NOT NULL DEFAULT now(),
  registered_by text NOT NULL,
  approved_by text,
  corrected_at timestamptz,
  corrected_by text,
  CONSTRAINT voter_national_id_key UNIQUE (national_id),
  CHECK (key_km <> '' AND key_latin <> '')
);
-- The duplicate checks read these alone (index-only scans): the few hundred voters born on one
-- day, and the voters of one sex in one commune, each with the keys to compare.
CREATE INDEX voter_birth_keys ON register.voter (date_of_birth) INCLUDE (key_km, key_latin, id);
CREATE INDEX voter_commune_sex_key ON register.voter (commune_code, sex, key_km) INCLUDE (id);
-- A search by name alone.
CREATE INDEX voter_km_trgm ON register.voter USING gin (key_km register.gin_trgm_ops);
CREATE INDEX voter_latin_trgm ON register.voter USING gin (key_latin register.gin_trgm_ops);

CREATE TABLE register.held_registration (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  national_id text NOT NULL CHECK (national_id ~ '^[0-9]{9}$'),
  name_km text NOT NULL CHECK (register.is_khmer_name(name_km)),
  name_latin text NOT NULL CHECK (register.is_latin_name(name_latin)),
  sex text NOT NULL CHECK (sex IN ('F', 'M')),
  date_of_birth date NOT NULL,
  commune_code text NOT NULL REFERENCES register.admin_unit (code),
  village_code text REFERENCES register.admin_unit (code),
  polling_station text NOT NULL REFERENCES register.polling_station (code),
  matches jsonb NOT NULL,
  submitted_at timestamptz NOT NULL DEFAULT now(),
  submitted_by text NOT NULL,
  submitted_from inet,
  decision text CHECK (decision IN ('registered', 'rejected')),
  decided_at timestamptz,
  decided_by text,
  decision_note text,
  voter_id bigint REFERENCES register.voter (id),
  CHECK (decided_by IS DISTINCT FROM submitted_by),
  CHECK ((decision IS NULL) = (decided_by IS NULL))
);
-- One open hold per national ID: a second submission of it is refused while the first waits.
CREATE UNIQUE INDEX held_open_national_id ON register.held_registration (national_id)
  WHERE decision IS NULL;
CREATE INDEX held_open ON register.held_registration (submitted_at) WHERE decision IS NULL;
CREATE INDEX held_open_birth ON register.held_registration (date_of_birth) WHERE decision IS NULL;
CREATE INDEX held_open_commune ON register.held_registration (commune_code)
  WHERE decision IS NULL;

-- Users of the app -------------------------------------------------------------------------------

CREATE TABLE register.app_user (
  name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9._-]{1,31}$'),
  full_name text NOT NULL,
  role text NOT NULL CHECK (role IN ('clerk', 'supervisor', 'auditor')),
  password_hash text NOT NULL,
  failed_logins integer NOT NULL DEFAULT 0,
  locked_until timestamptz,
  disabled boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  password_changed_at timestamptz NOT NULL DEFAULT now()
);

-- The audit trail: append only, each entry chained to the one before by SHA-256 --------------

CREATE TABLE register.audit_entry (
  seq bigint PRIMARY KEY,
  at timestamptz NOT NULL,
  actor text NOT NULL,
  address inet,
  action text NOT NULL,
  voter_id bigint,
  held_id bigint,
  old_values jsonb,
  new_values jsonb,
  prev_hash bytea NOT NULL,
  hash bytea NOT NULL
);
CREATE INDEX audit_entry_voter ON register.audit_entry (voter_id) WHERE voter_id IS NOT NULL;

CREATE FUNCTION register.audit_digest(e register.audit_entry) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN sha256(e.prev_hash || convert_to(concat_ws(chr(31),
  e.seq::text, to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), e.actor,
  coalesce(host(e.address), ''), e.action, coalesce(e.voter_id::text, ''),
  coalesce(e.held_id::text, ''), coalesce(e.old_values::text, ''),
  coalesce(e.new_values::text, '')), 'UTF8'));

CREATE FUNCTION register.audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit trail is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON register.audit_entry
  FOR EACH ROW EXECUTE FUNCTION register.audit_refuse_change();
CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON register.audit_entry
  FOR EACH STATEMENT EXECUTE FUNCTION register.audit_refuse_change();

-- Appends one entry. Entries are chained in commit order: the lock is held to the end of the
-- transaction, so the entry before is always committed (or rolled back with this one).
CREATE FUNCTION register.audit_append(
  p_actor text, p_address inet, p_action text, p_voter bigint, p_held bigint,
  p_old jsonb, p_new jsonb) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = register, pg_temp AS $$
DECLARE
  e register.audit_entry;
  last register.audit_entry;
BEGIN
  PERFORM pg_advisory_xact_lock(0, 0);
  SELECT * INTO last FROM register.audit_entry ORDER BY seq DESC LIMIT 1;
  e.seq := coalesce(last.seq, 0) + 1;
  e.at := clock_timestamp();
  e.actor := p_actor; e.address := p_address; e.action := p_action;
  e.voter_id := p_voter; e.held_id := p_held; e.old_values := p_old; e.new_values := p_new;
  e.prev_hash := coalesce(last.hash, '\x'::bytea);
  e.hash := register.audit_digest(e);
  INSERT INTO register.audit_entry VALUES (e.*);
  RETURN e.seq;
END $$;

-- What the app's role may add by itself: its users' logins and refusals, nothing else.
CREATE FUNCTION register.audit_login(p_name text, p_address inet, p_action text, p_details jsonb)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = register, pg_temp AS $$
BEGIN
  IF p_action NOT IN ('login', 'login.refused', 'login.locked') THEN
    RAISE EXCEPTION 'audit_login records logins only, not %', p_action
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN register.audit_append(left(p_name, 64), p_address, p_action, NULL, NULL, NULL,
                               p_details);
END $$;

-- Recomputes the chain: the number of entries checked and the first entry that does not hold.
CREATE FUNCTION register.audit_verify(OUT checked bigint, OUT first_broken bigint,
                                      OUT head_hash text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = register, pg_temp AS $$
DECLARE
  e register.audit_entry;
  prev bytea := '\x'::bytea;
  expect bigint := 1;
BEGIN
  checked := 0;
  FOR e IN SELECT * FROM register.audit_entry ORDER BY seq LOOP
    IF e.seq <> expect OR e.prev_hash <> prev OR e.hash <> register.audit_digest(e) THEN
      first_broken := e.seq;
      EXIT;
    END IF;
    checked := checked + 1; expect := e.seq + 1; prev := e.hash;
  END LOOP;
  head_hash := encode(prev, 'hex');
END $$;

-- Registration ---------------------------------------------------------------------------------

CREATE FUNCTION register.voter_json(v register.voter) RETURNS jsonb
LANGUAGE sql STABLE
RETURN jsonb_build_object('id', v.id, 'national_id', v.national_id, 'name_km', v.name_km,
  'name_latin', v.name_latin, 'sex', v.sex, 'date_of_birth', v.date_of_birth,
  'commune_code', v.commune_code, 'village_code', v.village_code,
  'polling_station', v.polling_station, 'registered_at', v.registered_at,
  'registered_by', v.registered_by, 'approved_by', v.approved_by,
  'corrected_at', v.corrected_at, 'corrected_by', v.corrected_by);

-- Voters, and registrations still waiting for a supervisor, that a registration may be the same
-- person as, with why. Exact: the same Khmer or Latin key and date of birth. Similar: a
-- trigram-similar name with the same date of birth, or a closer Khmer name in the same commune
-- for the same sex. Exact matches come first, then by similarity; at most 20.
CREATE FUNCTION register.find_matches(
  p_key_km text, p_key_latin text, p_birth date, p_commune text, p_sex text,
  p_exclude_held bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = register, pg_temp AS $$
DECLARE
  result jsonb;
BEGIN
  WITH held AS (
    SELECT h.*, register.khmer_key(h.name_km) AS key_km, register.latin_key(h.name_latin) AS key_latin
    FROM register.held_registration h
    WHERE h.decision IS NULL AND h.id IS DISTINCT FROM p_exclude_held
      AND (h.date_of_birth = p_birth OR h.commune_code = p_commune)
  ), hits AS (
    -- Ids only, so that both read their index alone (index-only scans); the records follow.
    SELECT v.id FROM register.voter v
    WHERE v.date_of_birth = p_birth
      AND (v.key_km = p_key_km OR v.key_latin = p_key_latin
           OR similarity(v.key_km, p_key_km) >= 0.5 OR similarity(v.key_latin, p_key_latin) >= 0.6)
    UNION
    SELECT v.id FROM register.voter v
    WHERE v.commune_code = p_commune AND v.sex = p_sex
      AND similarity(v.key_km, p_key_km) >= 0.7
  ), candidates AS (
    SELECT 'voter' AS kind, v.id, v.national_id, v.name_km, v.name_latin, v.date_of_birth,
           v.commune_code, v.key_km, v.key_latin
    FROM hits JOIN register.voter v ON v.id = hits.id
    UNION
    SELECT 'held', h.id, h.national_id, h.name_km, h.name_latin, h.date_of_birth,
           h.commune_code, h.key_km, h.key_latin
    FROM held h
    WHERE (h.date_of_birth = p_birth
           AND (h.key_km = p_key_km OR h.key_latin = p_key_latin
                OR similarity(h.key_km, p_key_km) >= 0.5
                OR similarity(h.key_latin, p_key_latin) >= 0.6))
       OR (h.commune_code = p_commune AND h.sex = p_sex
           AND similarity(h.key_km, p_key_km) >= 0.7)
  ), scored AS (
    SELECT c.*, c.date_of_birth = p_birth AND (c.key_km = p_key_km OR c.key_latin = p_key_latin)
                AS exact,
           greatest(similarity(c.key_km, p_key_km), similarity(c.key_latin, p_key_latin)) AS score
    FROM candidates c
    ORDER BY 10 DESC, 11 DESC, kind DESC, id
    LIMIT 20
  )
  SELECT coalesce(jsonb_agg(jsonb_build_object(
           CASE kind WHEN 'voter' THEN 'voter_id' ELSE 'held_id' END, id,
           'national_id', national_id, 'name_km', name_km, 'name_latin', name_latin,
           'date_of_birth', date_of_birth, 'commune_code', commune_code,
           'reason', CASE
             WHEN exact THEN 'same name and date of birth'
             WHEN date_of_birth = p_birth THEN 'similar name, same date of birth'
             ELSE 'similar name, same commune' END
             || CASE kind WHEN 'held' THEN ' (itself waiting for a supervisor)' ELSE '' END,
           'score', round(score::numeric, 2))
         ORDER BY exact DESC, score DESC, kind DESC, id), '[]'::jsonb)
    INTO result FROM scored;
  RETURN result;
END $$;

-- One registration: stored, held for a supervisor, or refused. Registrations of the same date
-- of birth or commune are serialised, so two submissions of one person cannot both pass.
CREATE FUNCTION register.submit_registration(p jsonb, p_actor text, p_address inet)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = register, pg_temp AS $$
DECLARE
  nid text := register.clean_national_id(p->>'national_id');
  km text := register.clean_text(p->>'name_km');
  lat text := register.clean_text(p->>'name_latin');
  birth date := (p->>'date_of_birth')::date;
  commune text := p->>'commune_code';
  matches jsonb;
  new_id bigint;
  v register.voter;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM register.admin_unit WHERE code = commune AND level = 'commune') THEN
    RETURN jsonb_build_object('status', 'refused', 'field', 'commune_code',
                              'reason', 'unknown_commune');
  END IF;
  IF p->>'village_code' IS NOT NULL AND NOT EXISTS (SELECT 1 FROM register.admin_unit
      WHERE code = p->>'village_code' AND level = 'village' AND parent_code = commune) THEN
    RETURN jsonb_build_object('status', 'refused', 'field', 'village_code',
                              'reason', 'village_not_in_commune');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM register.polling_station
                 WHERE code = p->>'polling_station' AND commune_code = commune) THEN
    RETURN jsonb_build_object('status', 'refused', 'field', 'polling_station',
                              'reason', 'station_not_in_commune');
  END IF;
  PERFORM pg_advisory_xact_lock(1, hashtext(birth::text));
  PERFORM pg_advisory_xact_lock(2, hashtext(commune));
  PERFORM pg_advisory_xact_lock(3, hashtext(nid));
  SELECT * INTO v FROM register.voter WHERE national_id = nid;
  IF FOUND THEN
    RETURN jsonb_build_object('status', 'refused', 'field', 'national_id',
                              'reason', 'national_id_registered', 'voter_id', v.id);
  END IF;
  IF EXISTS (SELECT 1 FROM register.held_registration
             WHERE national_id = nid AND decision IS NULL) THEN
    RETURN jsonb_build_object('status', 'refused', 'field', 'national_id',
                              'reason', 'national_id_held');
  END IF;
  matches := register.find_matches(register.khmer_key(km), register.latin_key(lat), birth, commune,
                                   p->>'sex');
  IF jsonb_array_length(matches) > 0 THEN
    INSERT INTO register.held_registration (national_id, name_km, name_latin, sex, date_of_birth,
        commune_code, village_code, polling_station, matches, submitted_by, submitted_from)
      VALUES (nid, km, lat, p->>'sex', birth, commune, p->>'village_code', p->>'polling_station',
              matches, p_actor, p_address)
      RETURNING id INTO new_id;
    PERFORM register.audit_append(p_actor, p_address, 'registration.held', NULL, new_id, NULL,
      p || jsonb_build_object('national_id', nid, 'name_km', km, 'name_latin', lat,
                              'matches', matches));
    RETURN jsonb_build_object('status', 'held', 'held_id', new_id, 'matches', matches);
  END IF;
  INSERT INTO register.voter (national_id, name_km, name_latin, sex, date_of_birth,
      commune_code, village_code, polling_station, registered_by)
    VALUES (nid, km, lat, p->>'sex', birth, commune, p->>'village_code', p->>'polling_station',
            p_actor)
    RETURNING * INTO v;
  PERFORM register.audit_append(p_actor, p_address, 'registration.stored', v.id, NULL, NULL,
                                register.voter_json(v));
  RETURN jsonb_build_object('status', 'registered', 'voter_id', v.id);
END $$;

-- A supervisor's decision on a held registration; never by the clerk who submitted it.
CREATE FUNCTION register.decide_held(
  p_held bigint, p_decision text, p_note text, p_actor text, p_address inet) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = register, pg_temp AS $$
DECLARE
  h register.held_registration;
  v register.voter;
  current_matches jsonb;
BEGIN
  SELECT * INTO h FROM register.held_registration WHERE id = p_held FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('status', 'refused', 'field', 'held_id', 'reason', 'not_found');
  END IF;
  IF h.decision IS NOT NULL THEN
    RETURN jsonb_build_object('status', 'refused', 'field', 'held_id', 'reason', 'already_decided');
  END IF;
  IF h.submitted_by = p_actor THEN
    RETURN jsonb_build_object('status', 'refused', 'field', 'held_id', 'reason', 'own_submission');
  END IF;
  IF p_decision NOT IN ('registered', 'rejected') THEN
    RETURN jsonb_build_object('status', 'refused', 'field', 'decision', 'reason', 'unknown_decision');
  END IF;
  IF p_decision = 'registered' THEN
    -- The same locks as a registration: nobody registers a match while this is decided.
    PERFORM pg_advisory_xact_lock(1, hashtext(h.date_of_birth::text));
    PERFORM pg_advisory_xact_lock(2, hashtext(h.commune_code));
    PERFORM pg_advisory_xact_lock(3, hashtext(h.national_id));
    -- Voters registered since the hold (another hold of the same person approved meanwhile)
    -- were never shown to the supervisor: show them first.
    current_matches := register.find_matches(register.khmer_key(h.name_km),
      register.latin_key(h.name_latin), h.date_of_birth, h.commune_code, h.sex, h.id);
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(current_matches) m
               WHERE m ? 'voter_id' AND NOT EXISTS (
                 SELECT 1 FROM jsonb_array_elements(h.matches) o
                 WHERE o->'voter_id' = m->'voter_id')) THEN
      UPDATE register.held_registration SET matches = current_matches WHERE id = p_held;
      RETURN jsonb_build_object('status', 'refused', 'field', 'held_id',
                                'reason', 'new_matches', 'matches', current_matches);
    END IF;
    IF EXISTS (SELECT 1 FROM register.voter WHERE national_id = h.national_id) THEN
      RETURN jsonb_build_object('status', 'refused', 'field', 'national_id',
                                'reason', 'national_id_registered');
    END IF;
    INSERT INTO register.voter (national_id, name_km, name_latin, sex, date_of_birth,
        commune_code, village_code, polling_station, registered_by, approved_by)
      VALUES (h.national_id, h.name_km, h.name_latin, h.sex, h.date_of_birth, h.commune_code,
              h.village_code, h.polling_station, h.submitted_by, p_actor)
      RETURNING * INTO v;
  END IF;
  UPDATE register.held_registration
     SET decision = p_decision, decided_at = now(), decided_by = p_actor,
         decision_note = p_note, voter_id = v.id
   WHERE id = p_held;
  PERFORM register.audit_append(p_actor, p_address, 'held.' || p_decision, v.id, p_held,
    NULL, jsonb_build_object('decision', p_decision, 'note', p_note));
  RETURN jsonb_build_object('status', p_decision, 'voter_id', v.id, 'held_id', p_held);
END $$;

-- A correction by a supervisor who neither registered nor approved the voter.
CREATE FUNCTION register.correct_voter(
  p_voter bigint, p jsonb, p_note text, p_actor text, p_address inet) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = register, pg_temp AS $$
DECLARE
  old register.voter;
  v register.voter;
  nid text;
  commune text;
  station text;
  village text;
BEGIN
  SELECT * INTO old FROM register.voter WHERE id = p_voter FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('status', 'refused', 'field', 'voter_id', 'reason', 'not_found');
  END IF;
  IF p_actor IN (old.registered_by, coalesce(old.approved_by, '')) THEN
    RETURN jsonb_build_object('status', 'refused', 'field', 'voter_id', 'reason', 'own_registration');
  END IF;
  nid := coalesce(register.clean_national_id(p->>'national_id'), old.national_id);
  IF nid <> old.national_id AND EXISTS (SELECT 1 FROM register.voter WHERE national_id = nid) THEN
    RETURN jsonb_build_object('status', 'refused', 'field', 'national_id',
                              'reason', 'national_id_registered');
  END IF;
  commune := coalesce(p->>'commune_code', old.commune_code);
  station := coalesce(p->>'polling_station', old.polling_station);
  village := CASE WHEN p ? 'village_code' THEN p->>'village_code' ELSE old.village_code END;
  IF NOT EXISTS (SELECT 1 FROM register.admin_unit WHERE code = commune AND level = 'commune') THEN
    RETURN jsonb_build_object('status', 'refused', 'field', 'commune_code',
                              'reason', 'unknown_commune');
  END IF;
  IF village IS NOT NULL AND NOT EXISTS (SELECT 1 FROM register.admin_unit
      WHERE code = village AND level = 'village' AND parent_code = commune) THEN
    RETURN jsonb_build_object('status', 'refused', 'field', 'village_code',
                              'reason', 'village_not_in_commune');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM register.polling_station
                 WHERE code = station AND commune_code = commune) THEN
    RETURN jsonb_build_object('status', 'refused', 'field', 'polling_station',
                              'reason', 'station_not_in_commune');
  END IF;
  UPDATE register.voter SET
      national_id = nid,
      name_km = coalesce(register.clean_text(p->>'name_km'), name_km),
      name_latin = coalesce(register.clean_text(p->>'name_latin'), name_latin),
      sex = coalesce(p->>'sex', sex),
      date_of_birth = coalesce((p->>'date_of_birth')::date, date_of_birth),
      commune_code = commune,
      village_code = village,
      polling_station = station,
      corrected_at = now(), corrected_by = p_actor
    WHERE id = p_voter
    RETURNING * INTO v;
  PERFORM register.audit_append(p_actor, p_address, 'voter.corrected', p_voter, NULL,
    register.voter_json(old), register.voter_json(v) || jsonb_build_object('note', p_note));
  RETURN jsonb_build_object('status', 'corrected', 'voter_id', p_voter);
END $$;

-- Reading a voter's record is itself recorded.
CREATE FUNCTION register.view_voter(p_voter bigint, p_actor text, p_address inet) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = register, pg_temp AS $$
DECLARE
  v register.voter;
BEGIN
  SELECT * INTO v FROM register.voter WHERE id = p_voter;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  PERFORM register.audit_append(p_actor, p_address, 'voter.viewed', p_voter, NULL, NULL, NULL);
  RETURN register.voter_json(v);
END $$;

-- A search by national ID or by name (optionally narrowed by date of birth or commune), logged.
CREATE FUNCTION register.search_voters(p jsonb, p_actor text, p_address inet) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = register, pg_temp AS $$
DECLARE
  nid text := register.clean_national_id(p->>'national_id');
  name text := register.clean_text(p->>'name');
  km text;
  lat text;
  ids bigint[];
  scores real[];
  result jsonb;
BEGIN
  PERFORM set_config('pg_trgm.similarity_threshold', '0.4', true);
  IF nid IS NOT NULL AND nid <> '' THEN
    SELECT coalesce(jsonb_agg(register.voter_json(v)), '[]') INTO result
      FROM register.voter v WHERE v.national_id = nid;
  ELSE
    km := register.khmer_key(coalesce(name, ''));
    lat := register.latin_key(coalesce(name, ''));
    -- With a birth date or a commune the few voters there are compared one by one (an index
    -- holds their keys); a name alone goes through the trigram indexes.
    IF p->>'date_of_birth' IS NOT NULL THEN
      SELECT array_agg(id ORDER BY score DESC), array_agg(score ORDER BY score DESC)
        INTO ids, scores FROM (
          SELECT c.id, greatest(similarity(c.key_km, km), similarity(c.key_latin, lat)) AS score
          FROM register.voter c
          WHERE c.date_of_birth = (p->>'date_of_birth')::date
            AND (similarity(c.key_km, km) >= 0.4 OR similarity(c.key_latin, lat) >= 0.4)
          ORDER BY score DESC LIMIT 50) x;
    ELSIF p->>'commune_code' IS NOT NULL THEN
      SELECT array_agg(id ORDER BY score DESC), array_agg(score ORDER BY score DESC)
        INTO ids, scores FROM (
          SELECT c.id, greatest(similarity(c.key_km, km), similarity(c.key_latin, lat)) AS score
          FROM register.voter c
          WHERE c.commune_code = p->>'commune_code'
            AND (similarity(c.key_km, km) >= 0.4 OR similarity(c.key_latin, lat) >= 0.4)
          ORDER BY score DESC LIMIT 50) x;
    ELSE
      SELECT array_agg(id ORDER BY score DESC), array_agg(score ORDER BY score DESC)
        INTO ids, scores FROM (
          SELECT c.id, greatest(similarity(c.key_km, km), similarity(c.key_latin, lat)) AS score
          FROM register.voter c
          WHERE (km <> '' AND c.key_km % km) OR (lat <> '' AND c.key_latin % lat)
          ORDER BY score DESC LIMIT 50) x;
    END IF;
    SELECT coalesce(jsonb_agg(register.voter_json(v)
                              || jsonb_build_object('score', round(t.score::numeric, 2))
                              ORDER BY t.ord), '[]') INTO result
      FROM unnest(ids, scores) WITH ORDINALITY AS t(id, score, ord)
      JOIN register.voter v ON v.id = t.id
     WHERE p->>'commune_code' IS NULL OR v.commune_code = p->>'commune_code';
  END IF;
  -- The records shown are recorded with the query: a search result is a view of each.
  PERFORM register.audit_append(p_actor, p_address, 'voter.searched', NULL, NULL, NULL,
    p || jsonb_build_object('shown', (SELECT coalesce(jsonb_agg(r->'id'), '[]')
                                      FROM jsonb_array_elements(result) r)));
  RETURN result;
END $$;

-- Who the app's role is: it calls these functions, reads reference data and manages its users;
-- it never writes voters, holds or audit entries directly, and cannot alter the audit trail.
REVOKE ALL ON register.voter, register.held_registration, register.audit_entry,
  register.admin_unit, register.polling_station, register.app_user FROM register_app;
GRANT SELECT ON register.voter, register.held_registration, register.audit_entry,
  register.admin_unit, register.polling_station TO register_app;
-- Its users: read, and count failed logins (users are added by `regapp user`, audited).
GRANT SELECT, UPDATE (failed_logins, locked_until, password_hash) ON register.app_user
  TO register_app;
REVOKE ALL ON register.app_user FROM register_read;
REVOKE UPDATE, DELETE, TRUNCATE ON register.audit_entry FROM PUBLIC;
REVOKE ALL ON FUNCTION register.audit_append(text, inet, text, bigint, bigint, jsonb, jsonb),
  register.audit_login(text, inet, text, jsonb),
  register.submit_registration(jsonb, text, inet),
  register.decide_held(bigint, text, text, text, inet),
  register.correct_voter(bigint, jsonb, text, text, inet),
  register.view_voter(bigint, text, inet), register.search_voters(jsonb, text, inet),
  register.find_matches(text, text, date, text, text, bigint), register.audit_verify()
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION register.audit_login(text, inet, text, jsonb),
  register.submit_registration(jsonb, text, inet),
  register.decide_held(bigint, text, text, text, inet),
  register.correct_voter(bigint, jsonb, text, text, inet),
  register.view_voter(bigint, text, inet), register.search_voters(jsonb, text, inet),
  register.audit_verify()
  TO register_app;
