import type { InternalSchemaPart } from "../pg/internal-schema.ts";

/** The NOLOGIN role that owns the audit tables and functions; no application logs in as it. */
export const AUDIT_OWNER_ROLE = "pgshift_audit";

/**
 * The seal's transaction-scoped advisory lock: one sealer at a time per database, writers never take it.
 * Kept in the audit area (same 0x7067_7368 prefix as the keys in src/pg/advisory-lock.ts, a range of its own).
 */
export const AUDIT_SEAL_LOCK = 0x7067_7368_0100n;

/**
 * The audit trail's tables and functions in the `pgshift` schema.
 *
 * - `audit_log`: one row per audited row change, DDL command or pgshift event, inserted in the writer's
 *   own transaction and never updated. `txid` is the writer's transaction id: the sealer uses it to know
 *   which rows are committed for good.
 * - `audit_seal`: the hash chain, one row per sealed audit row, in seal order (`seq`, gap-free):
 *   hash = sha256(prev_hash || sha256(canonical form of the audit row)).
 * - `audit_head`: the last seal (seq, hash, horizon), one row, updated once per seal batch.
 * - `audit_tables`: which tables are audited and how.
 *
 * Every function that writes is SECURITY DEFINER, owned by `pgshift_audit`, so application roles write
 * audit rows only through the triggers and never touch the tables. The two trigger functions on the write
 * path qualify every name instead of pinning search_path (step 2); the others pin it.
 */
export const auditPart: InternalSchemaPart = {
  name: "audit",
  steps: [
    `do $$
     begin
       if not exists (select from pg_catalog.pg_roles where rolname = 'pgshift_audit') then
         create role pgshift_audit nologin;
       end if;
       if not pg_catalog.pg_has_role(current_user, 'pgshift_audit', 'member') then
         execute pg_catalog.format('grant pgshift_audit to %I', current_user);
       end if;
     end $$;
     grant usage on schema pgshift to pgshift_audit;

     create table pgshift.audit_log (
       id bigint generated always as identity primary key,
       at timestamptz not null default pg_catalog.clock_timestamp(),
       txid bigint not null default pg_catalog.txid_current(),
       kind text not null check (kind in ('row', 'ddl', 'event', 'signature')),
       table_schema text,
       table_name text,
       op text,
       row_key jsonb,
       old_row jsonb,
       new_row jsonb,
       db_user text not null,
       session_user_name text not null default session_user,
       application_name text,
       client_addr text,
       actor text,
       reason text,
       detail jsonb
     );
     create index audit_log_txid on pgshift.audit_log (txid);

     create table pgshift.audit_seal (
       seq bigint primary key check (seq > 0),
       audit_id bigint not null unique,
       prev_hash bytea not null,
       hash bytea not null,
       sealed_at timestamptz not null default pg_catalog.clock_timestamp()
     );

     create table pgshift.audit_head (
       id boolean primary key default true check (id),
       seq bigint not null,
       hash bytea not null,
       horizon bigint not null,
       sealed_at timestamptz
     );
     insert into pgshift.audit_head (seq, hash, horizon) values (0, pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex'), 0);

     create table pgshift.audit_tables (
       table_schema text not null,
       table_name text not null,
       key_columns text[] not null,
       require_reason boolean not null,
       enabled_at timestamptz not null default now(),
       enabled_by text not null default current_user,
       primary key (table_schema, table_name)
     );

     -- The canonical form that gets hashed: a jsonb array, whose text output is deterministic
     -- (no DateStyle/TimeZone dependence: the time is in epoch microseconds). No SET clause and STABLE
     -- (as jsonb_build_array is), so that PostgreSQL inlines it into verify's scan (4x faster than a
     -- call per row); every name is qualified instead.
     create function pgshift.audit_canonical(a pgshift.audit_log) returns text
       language sql stable parallel safe
       return pg_catalog.jsonb_build_array(
         a.id, a.txid, pg_catalog.int8(pg_catalog."extract"('epoch', a.at) operator(pg_catalog.*) 1000000),
         a.kind, a.table_schema, a.table_name, a.op, a.row_key, a.old_row, a.new_row, a.db_user,
         a.session_user_name, a.application_name, a.client_addr, a.actor, a.reason, a.detail)::text;

     -- A row's leaf hash: sha256 of its canonical form. The chain links leaves: hash = sha256(prev_hash || leaf).
     create function pgshift.audit_leaf(a pgshift.audit_log) returns bytea
       language sql stable parallel safe
       return pg_catalog.sha256(pg_catalog.convert_to(pgshift.audit_canonical(a), 'UTF8'));

     -- The row trigger (UPDATE, DELETE). TG_ARGV[0]: 't' when UPDATE/DELETE need a reason; the rest: key columns.
     -- The database user is the SET ROLE role when one is set (current_user is the definer here).
     create function pgshift.audit_row() returns trigger
       language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
     declare
       reason text := nullif(current_setting('pgshift.reason', true), '');
       old_json jsonb;
       new_json jsonb;
       key_json jsonb;
       role_name text := current_setting('role');
     begin
       if tg_op <> 'INSERT' then
         old_json := to_jsonb(old);
         if tg_argv[0] = 't' and reason is null then
           raise exception 'pgshift audit: % on %.% needs a reason', tg_op, tg_table_schema, tg_table_name
             using errcode = 'P0001',
                   hint = 'set one in the transaction: SET LOCAL pgshift.reason = ''...'' (or withAuditContext)';
         end if;
       end if;
       if tg_op <> 'DELETE' then new_json := to_jsonb(new); end if;
       if tg_nargs = 2 then
         key_json := jsonb_build_object(tg_argv[1], coalesce(new_json, old_json) -> tg_argv[1]);
       else
         select jsonb_object_agg(k, coalesce(new_json, old_json) -> k) into key_json from unnest(tg_argv[1:]) k;
       end if;
       insert into pgshift.audit_log (kind, table_schema, table_name, op, row_key, old_row, new_row,
                                      db_user, application_name, client_addr, actor, reason)
       values ('row', tg_table_schema, tg_table_name, lower(tg_op), key_json, old_json, new_json,
               case when role_name = 'none' then session_user else role_name end,
               nullif(current_setting('application_name'), ''), inet_client_addr()::text,
               nullif(current_setting('pgshift.actor', true), ''), reason);
       return null;
     end $fn$;

     -- INSERTs are audited per statement (a transition table, one set-based insert: a bulk load
     -- pays a fraction of a row trigger's cost); same arguments as audit_row.
     create function pgshift.audit_insert() returns trigger
       language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
     declare
       role_name text := current_setting('role');
     begin
       insert into pgshift.audit_log (kind, table_schema, table_name, op, row_key, new_row,
                                      db_user, application_name, client_addr, actor, reason)
       select 'row', tg_table_schema, tg_table_name, 'insert',
              case when tg_nargs = 2 then jsonb_build_object(tg_argv[1], j -> tg_argv[1])
                   else (select jsonb_object_agg(k, j -> k) from unnest(tg_argv[1:]) k) end,
              j, case when role_name = 'none' then session_user else role_name end,
              nullif(current_setting('application_name'), ''), inet_client_addr()::text,
              nullif(current_setting('pgshift.actor', true), ''),
              nullif(current_setting('pgshift.reason', true), '')
         from (select to_jsonb(n) as j from pgshift_new_rows n) inserted;
       return null;
     end $fn$;

     -- A pgshift operation (import, migrate, refresh, restore, cutover) or any application event.
     create function pgshift.audit_event(action text, detail jsonb, table_schema text default null,
                                         table_name text default null, row_key jsonb default null,
                                         kind text default 'event')
       returns bigint language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
     declare
       role_name text := current_setting('role');
       new_id bigint;
     begin
       if kind not in ('event', 'signature') then
         raise exception 'pgshift audit: an event''s kind is event or signature, not %', kind;
       end if;
       insert into pgshift.audit_log (kind, op, table_schema, table_name, row_key, detail, db_user,
                                      application_name, client_addr, actor, reason)
       values (kind, action, table_schema, table_name, row_key, detail,
               case when role_name = 'none' then session_user else role_name end,
               nullif(current_setting('application_name'), ''), inet_client_addr()::text,
               nullif(current_setting('pgshift.actor', true), ''),
               nullif(current_setting('pgshift.reason', true), ''))
       returning id into new_id;
       return new_id;
     end $fn$;

     -- Seals every audit row whose transaction ended before the oldest running one began
     -- (txid < xmin of the current snapshot): those rows are all committed and visible now, and no row
     -- with such a txid can appear later. Within a batch the order is the audit id. One sealer at a
     -- time (advisory lock); writers never wait for it.
     create function pgshift.audit_seal_pending() returns table (sealed bigint, head_seq bigint, head_hash bytea, horizon bigint)
       language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
     declare
       new_horizon bigint;
       head pgshift.audit_head;
       chain bytea;
       ids bigint[] := '{}';
       prevs bytea[] := '{}';
       hashes bytea[] := '{}';
       seq_now bigint;
       sealed_count bigint := 0;
       r record;
     begin
       perform pg_advisory_xact_lock(${AUDIT_SEAL_LOCK.toString()});
       new_horizon := txid_snapshot_xmin(txid_current_snapshot());
       select * into head from pgshift.audit_head for update;
       chain := head.hash;
       seq_now := head.seq;
       if new_horizon > head.horizon then
         for r in
           select a.id, pgshift.audit_leaf(a) as leaf
             from pgshift.audit_log a
            where a.txid >= head.horizon and a.txid < new_horizon
            order by a.id
         loop
           sealed_count := sealed_count + 1;
           ids[sealed_count] := r.id;
           prevs[sealed_count] := chain;
           chain := sha256(chain || r.leaf);
           hashes[sealed_count] := chain;
         end loop;
         insert into pgshift.audit_seal (seq, audit_id, prev_hash, hash)
           select seq_now + u.n, u.id, u.prev, u.hash from unnest(ids, prevs, hashes) with ordinality u(id, prev, hash, n);
         seq_now := seq_now + sealed_count;
         update pgshift.audit_head
            set seq = seq_now, hash = chain, horizon = new_horizon,
                sealed_at = case when sealed_count > 0 then clock_timestamp() else head.sealed_at end;
       end if;
       return query select sealed_count, seq_now, chain, greatest(new_horizon, head.horizon);
     end $fn$;

     -- Refuses TRUNCATE of an audited table: it would remove rows without one audit row each.
     create function pgshift.audit_refuse_truncate() returns trigger
       language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
     begin
       raise exception 'pgshift audit: TRUNCATE of audited table %.% is refused', tg_table_schema, tg_table_name
         using errcode = 'P0001', hint = 'DELETE the rows (each one is audited), or run pgshift audit disable first';
     end $fn$;

     -- The event trigger's function (ddl_command_end): refuses any DDL that leaves an audited table
     -- without its audit triggers firing always, and records every other DDL command as an audit event.
     create function pgshift.audit_ddl() returns event_trigger
       language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
     declare
       broken text;
       objects jsonb;
       role_name text := current_setting('role');
     begin
       select string_agg(format('%I.%I', t.table_schema, t.table_name), ', ') into broken
         from pgshift.audit_tables t
        where (select count(*) from pg_trigger g
                 join pg_class c on c.oid = g.tgrelid
                 join pg_namespace n on n.oid = c.relnamespace
                where n.nspname = t.table_schema and c.relname = t.table_name
                  and g.tgname in ('pgshift_audit', 'pgshift_audit_insert', 'pgshift_audit_truncate')
                  and g.tgenabled = 'A') < 3;
       if broken is not null then
         raise exception 'pgshift audit: % would leave audited table(s) % without audit triggers', tg_tag, broken
           using errcode = 'P0001', hint = 'audit triggers cannot be dropped or disabled; run pgshift audit disable (which is itself recorded) first';
       end if;
       select jsonb_agg(jsonb_build_object('type', c.object_type, 'identity', c.object_identity))
         into objects from pg_event_trigger_ddl_commands() c;
       insert into pgshift.audit_log (kind, op, detail, db_user, application_name, client_addr, actor, reason)
       values ('ddl', lower(tg_tag), jsonb_build_object('objects', coalesce(objects, '[]'::jsonb), 'query', current_query()),
               case when role_name = 'none' then session_user else role_name end,
               nullif(current_setting('application_name'), ''), inet_client_addr()::text,
               nullif(current_setting('pgshift.actor', true), ''),
               nullif(current_setting('pgshift.reason', true), ''));
     end $fn$;

     alter function pgshift.audit_refuse_truncate() owner to pgshift_audit;
     alter function pgshift.audit_ddl() owner to pgshift_audit;
     alter table pgshift.audit_log owner to pgshift_audit;
     alter table pgshift.audit_seal owner to pgshift_audit;
     alter table pgshift.audit_head owner to pgshift_audit;
     alter table pgshift.audit_tables owner to pgshift_audit;
     alter function pgshift.audit_canonical(pgshift.audit_log) owner to pgshift_audit;
     alter function pgshift.audit_leaf(pgshift.audit_log) owner to pgshift_audit;
     alter function pgshift.audit_row() owner to pgshift_audit;
     alter function pgshift.audit_insert() owner to pgshift_audit;
     alter function pgshift.audit_event(text, jsonb, text, text, jsonb, text) owner to pgshift_audit;
     alter function pgshift.audit_seal_pending() owner to pgshift_audit;
     revoke all on pgshift.audit_log, pgshift.audit_seal, pgshift.audit_head, pgshift.audit_tables from public;
     revoke all on function pgshift.audit_event(text, jsonb, text, text, jsonb, text) from public;
     revoke all on function pgshift.audit_seal_pending() from public;`,
    // The write path without the SET clause: a SECURITY DEFINER function with `SET search_path` pays a
    // GUC save/restore on every call (about 30 % of audited single-row tps). Instead every name is
    // qualified: functions, operators (OPERATOR(pg_catalog.=), also where NULLIF would look one up),
    // types, tables; the transition table is an ephemeral relation, found before any schema. So the
    // caller's search_path (pg_temp included) cannot redirect anything. CREATE OR REPLACE keeps owner
    // and grants and clears the old SET clause. test/integration/audit/audit-search-path.test.ts checks it.
    `create or replace function pgshift.audit_row() returns trigger
       language plpgsql security definer as $fn$
     declare
       reason pg_catalog.text := pg_catalog.current_setting('pgshift.reason', true);
       actor pg_catalog.text := pg_catalog.current_setting('pgshift.actor', true);
       app pg_catalog.text := pg_catalog.current_setting('application_name');
       old_json pg_catalog.jsonb;
       new_json pg_catalog.jsonb;
       key_json pg_catalog.jsonb;
       role_name pg_catalog.text := pg_catalog.current_setting('role');
     begin
       if reason operator(pg_catalog.=) '' then reason := null; end if;
       if actor operator(pg_catalog.=) '' then actor := null; end if;
       if app operator(pg_catalog.=) '' then app := null; end if;
       if role_name operator(pg_catalog.=) 'none' then role_name := session_user; end if;
       if tg_op operator(pg_catalog.<>) 'INSERT' then
         old_json := pg_catalog.to_jsonb(old);
         if tg_argv[0] operator(pg_catalog.=) 't' and reason is null then
           raise exception 'pgshift audit: % on %.% needs a reason', tg_op, tg_table_schema, tg_table_name
             using errcode = 'P0001',
                   hint = 'set one in the transaction: SET LOCAL pgshift.reason = ''...'' (or withAuditContext)';
         end if;
       end if;
       if tg_op operator(pg_catalog.<>) 'DELETE' then new_json := pg_catalog.to_jsonb(new); end if;
       if tg_nargs operator(pg_catalog.=) 2 then
         key_json := pg_catalog.jsonb_build_object(tg_argv[1], coalesce(new_json, old_json) operator(pg_catalog.->) tg_argv[1]);
       else
         select pg_catalog.jsonb_object_agg(k, coalesce(new_json, old_json) operator(pg_catalog.->) k) into key_json
           from pg_catalog.unnest(tg_argv[1:]) k;
       end if;
       insert into pgshift.audit_log (kind, table_schema, table_name, op, row_key, old_row, new_row,
                                      db_user, application_name, client_addr, actor, reason)
       values ('row', tg_table_schema, tg_table_name, pg_catalog.lower(tg_op), key_json, old_json, new_json,
               role_name, app, pg_catalog.inet_client_addr()::pg_catalog.text, actor, reason);
       return null;
     end $fn$;

     create or replace function pgshift.audit_insert() returns trigger
       language plpgsql security definer as $fn$
     declare
       reason pg_catalog.text := pg_catalog.current_setting('pgshift.reason', true);
       actor pg_catalog.text := pg_catalog.current_setting('pgshift.actor', true);
       app pg_catalog.text := pg_catalog.current_setting('application_name');
       role_name pg_catalog.text := pg_catalog.current_setting('role');
     begin
       if reason operator(pg_catalog.=) '' then reason := null; end if;
       if actor operator(pg_catalog.=) '' then actor := null; end if;
       if app operator(pg_catalog.=) '' then app := null; end if;
       if role_name operator(pg_catalog.=) 'none' then role_name := session_user; end if;
       insert into pgshift.audit_log (kind, table_schema, table_name, op, row_key, new_row,
                                      db_user, application_name, client_addr, actor, reason)
       select 'row', tg_table_schema, tg_table_name, 'insert',
              case when tg_nargs operator(pg_catalog.=) 2
                   then pg_catalog.jsonb_build_object(tg_argv[1], j operator(pg_catalog.->) tg_argv[1])
                   else (select pg_catalog.jsonb_object_agg(k, j operator(pg_catalog.->) k) from pg_catalog.unnest(tg_argv[1:]) k) end,
              j, role_name, app, pg_catalog.inet_client_addr()::pg_catalog.text, actor, reason
         from (select pg_catalog.to_jsonb(n) as j from pgshift_new_rows n) inserted;
       return null;
     end $fn$;`,
    // The sealer's txid range scan from a BRIN index instead of a btree: audit rows are appended in
    // (nearly) txid order, so a block range's min/max is tight, and a write no longer pays a btree
    // insertion into a second index. Lossy but exact after the recheck; ranges not yet summarised are
    // always scanned; autosummarize keeps that tail short.
    `drop index pgshift.audit_log_txid;
     create index audit_log_txid_brin on pgshift.audit_log using brin (txid) with (autosummarize = on);`,
    // `to_jsonb(n)` took an audited table's column named `n` for the row (a column wins over the table
    // alias): the whole row is `n.*`.
    `create or replace function pgshift.audit_insert() returns trigger
       language plpgsql security definer as $fn$
     declare
       reason pg_catalog.text := pg_catalog.current_setting('pgshift.reason', true);
       actor pg_catalog.text := pg_catalog.current_setting('pgshift.actor', true);
       app pg_catalog.text := pg_catalog.current_setting('application_name');
       role_name pg_catalog.text := pg_catalog.current_setting('role');
     begin
       if reason operator(pg_catalog.=) '' then reason := null; end if;
       if actor operator(pg_catalog.=) '' then actor := null; end if;
       if app operator(pg_catalog.=) '' then app := null; end if;
       if role_name operator(pg_catalog.=) 'none' then role_name := session_user; end if;
       insert into pgshift.audit_log (kind, table_schema, table_name, op, row_key, new_row,
                                      db_user, application_name, client_addr, actor, reason)
       select 'row', tg_table_schema, tg_table_name, 'insert',
              case when tg_nargs operator(pg_catalog.=) 2
                   then pg_catalog.jsonb_build_object(tg_argv[1], j operator(pg_catalog.->) tg_argv[1])
                   else (select pg_catalog.jsonb_object_agg(k, j operator(pg_catalog.->) k) from pg_catalog.unnest(tg_argv[1:]) k) end,
              j, role_name, app, pg_catalog.inet_client_addr()::pg_catalog.text, actor, reason
         from (select pg_catalog.to_jsonb(n.*) as j from pgshift_new_rows n) inserted;
       return null;
     end $fn$;`,
    // Sealing and verification, cheaper per row with the same chain (nothing already sealed changes):
    // - the canonical text is built as json, not jsonb: json_build_array prints each jsonb argument with
    //   jsonb's own output and escapes text and numbers as jsonb does, so the text is byte for byte the one
    //   jsonb_build_array(...)::text gave (audit-canonical.test.ts compares both on awkward values), without
    //   re-parsing old_row and new_row into a new jsonb for every row (~20 % of a leaf's CPU);
    // - the sealer summarises the txid BRIN's block ranges that filled since the last seal: autosummarize
    //   leaves that to autovacuum (up to a minute later), and every seal meanwhile rechecked every row of
    //   the unsummarised tail (100k rows scanned to seal 2k in a measured run). Under a short lock_timeout,
    //   so a running VACUUM of the table never holds the sealer; a range left out is summarised next time;
    // - leaves are computed set-based and chained over an array (two PL/pgSQL statements per row instead
    //   of five); prev_hash comes from lag() in the insert.
    `create or replace function pgshift.audit_canonical(a pgshift.audit_log) returns text
       language sql stable parallel safe
       return pg_catalog.json_build_array(
         a.id, a.txid, pg_catalog.int8(pg_catalog."extract"('epoch', a.at) operator(pg_catalog.*) 1000000),
         a.kind, a.table_schema, a.table_name, a.op, a.row_key, a.old_row, a.new_row, a.db_user,
         a.session_user_name, a.application_name, a.client_addr, a.actor, a.reason, a.detail)::pg_catalog.text;

     alter table pgshift.audit_head add column brin_blocks bigint not null default 0;

     create or replace function pgshift.audit_seal_pending() returns table (sealed bigint, head_seq bigint, head_hash bytea, horizon bigint)
       language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
     declare
       new_horizon bigint;
       head pgshift.audit_head;
       chain bytea;
       ids bigint[];
       leaves bytea[];
       leaf bytea;
       hashes bytea[] := '{}';
       heap_blocks bigint;
       summarized bigint;
     begin
       perform pg_advisory_xact_lock(${AUDIT_SEAL_LOCK.toString()});
       new_horizon := txid_snapshot_xmin(txid_current_snapshot());
       select * into head from pgshift.audit_head for update;
       chain := head.hash;
       -- 128: the BRIN's pages_per_range (the default it was created with)
       heap_blocks := pg_relation_size('pgshift.audit_log') / current_setting('block_size')::bigint;
       summarized := head.brin_blocks;
       if summarized + 128 <= heap_blocks then
         begin
           perform set_config('lock_timeout', '100ms', true);
           while summarized + 128 <= heap_blocks loop
             perform brin_summarize_range('pgshift.audit_log_txid_brin'::regclass, summarized);
             summarized := summarized + 128;
           end loop;
         exception when lock_not_available then
           null; -- a VACUUM holds the table: the rest next time
         end;
       end if;
       if new_horizon > head.horizon then
         select coalesce(array_agg(l.id order by l.id), '{}'), coalesce(array_agg(l.leaf order by l.id), '{}')
           into ids, leaves
           from (select a.id, pgshift.audit_leaf(a) as leaf
                   from pgshift.audit_log a
                  where a.txid >= head.horizon and a.txid < new_horizon) l;
         foreach leaf in array leaves loop
           chain := sha256(chain || leaf);
           hashes := array_append(hashes, chain);
         end loop;
         insert into pgshift.audit_seal (seq, audit_id, prev_hash, hash)
           select head.seq + u.n, u.id, coalesce(lag(u.hash) over (order by u.n), head.hash), u.hash
             from unnest(ids, hashes) with ordinality u(id, hash, n);
       end if;
       if new_horizon > head.horizon or summarized > head.brin_blocks then
         update pgshift.audit_head
            set seq = head.seq + cardinality(hashes), hash = chain, horizon = greatest(new_horizon, head.horizon),
                brin_blocks = summarized,
                sealed_at = case when cardinality(hashes) > 0 then clock_timestamp() else head.sealed_at end;
       end if;
       return query select cardinality(hashes)::bigint, head.seq + cardinality(hashes), chain, greatest(new_horizon, head.horizon);
     end $fn$;`,
    // Less CPU per audited row (measured per single-row UPDATE transaction), the same chain (nothing sealed changes):
    // - the sealer finds new rows by audit id (the primary key) from a floor below which every row is
    //   sealed, instead of by txid: the txid BRIN goes, so a write no longer pays its insertion and a seal
    //   no longer summarises it. Which rows a batch seals and in which order is unchanged: txid in
    //   [old horizon, new horizon), by id. The floor is what makes the id scan complete. An audit row's id
    //   is drawn while its transaction already has a txid (a row trigger fires after the row change wrote
    //   it; audit_event and audit_ddl now take it first). So when a seal reads the id sequence's last value
    //   S and then takes its own txid X, every row with id <= S has txid < X; once a later horizon passes X,
    //   those rows are all sealed and S becomes the floor. A long-running transaction holds the horizon,
    //   and with it the floor, back: its rows, whatever their id, are sealed when it ends (nothing is
    //   skipped, verify's late-row check is unchanged). Pending (X, S) pairs wait in audit_head, at most 16:
    //   past that the newest overwrites the last, which only makes the floor lag (never wrong). After the
    //   upgrade the floor is 0: the first seal reads the log once;
    // - the CHECK on audit_log.kind goes: rebuilt for every insert statement (about 3 us of an audited
    //   single-row transaction), and the only writers are these functions, whose kinds are literals or
    //   checked by audit_event;
    // - audit_row evaluates fewer PL/pgSQL expressions (each one is set up again in every transaction):
    //   the settings are read inside the INSERT.
    `drop index pgshift.audit_log_txid_brin;
     alter table pgshift.audit_log drop constraint audit_log_kind_check;
     alter table pgshift.audit_head drop column brin_blocks,
       add column floor_id bigint not null default 0,
       add column pending_txid bigint[] not null default '{}',
       add column pending_id bigint[] not null default '{}';

     create or replace function pgshift.audit_row() returns trigger
       language plpgsql security definer as $fn$
     declare
       old_json pg_catalog.jsonb := pg_catalog.to_jsonb(old);
       new_json pg_catalog.jsonb := pg_catalog.to_jsonb(new);
       key_json pg_catalog.jsonb;
     begin
       if tg_argv[0] operator(pg_catalog.=) 't'
          and coalesce(pg_catalog.current_setting('pgshift.reason', true), '') operator(pg_catalog.=) '' then
         raise exception 'pgshift audit: % on %.% needs a reason', tg_op, tg_table_schema, tg_table_name
           using errcode = 'P0001',
                 hint = 'set one in the transaction: SET LOCAL pgshift.reason = ''...'' (or withAuditContext)';
       end if;
       if tg_nargs operator(pg_catalog.=) 2 then
         key_json := pg_catalog.jsonb_build_object(tg_argv[1], coalesce(new_json, old_json) operator(pg_catalog.->) tg_argv[1]);
       else
         select pg_catalog.jsonb_object_agg(k, coalesce(new_json, old_json) operator(pg_catalog.->) k) into key_json
           from pg_catalog.unnest(tg_argv[1:]) k;
       end if;
       insert into pgshift.audit_log (kind, table_schema, table_name, op, row_key, old_row, new_row,
                                      db_user, application_name, client_addr, actor, reason)
       values ('row', tg_table_schema, tg_table_name, pg_catalog.lower(tg_op), key_json, old_json, new_json,
               case when pg_catalog.current_setting('role') operator(pg_catalog.=) 'none' then session_user
                    else pg_catalog.current_setting('role') end,
               case when pg_catalog.current_setting('application_name') operator(pg_catalog.<>) ''
                    then pg_catalog.current_setting('application_name') end,
               pg_catalog.inet_client_addr()::pg_catalog.text,
               case when pg_catalog.current_setting('pgshift.actor', true) operator(pg_catalog.<>) ''
                    then pg_catalog.current_setting('pgshift.actor', true) end,
               case when pg_catalog.current_setting('pgshift.reason', true) operator(pg_catalog.<>) ''
                    then pg_catalog.current_setting('pgshift.reason', true) end);
       return null;
     end $fn$;

     create or replace function pgshift.audit_event(action text, detail jsonb, table_schema text default null,
                                                    table_name text default null, row_key jsonb default null,
                                                    kind text default 'event')
       returns bigint language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
     declare
       role_name text := current_setting('role');
       new_id bigint;
     begin
       if kind not in ('event', 'signature') then
         raise exception 'pgshift audit: an event''s kind is event or signature, not %', kind;
       end if;
       perform txid_current(); -- before the row's id is drawn (the sealer's floor relies on it)
       insert into pgshift.audit_log (kind, op, table_schema, table_name, row_key, detail, db_user,
                                      application_name, client_addr, actor, reason)
       values (kind, action, table_schema, table_name, row_key, detail,
               case when role_name = 'none' then session_user else role_name end,
               nullif(current_setting('application_name'), ''), inet_client_addr()::text,
               nullif(current_setting('pgshift.actor', true), ''),
               nullif(current_setting('pgshift.reason', true), ''))
       returning id into new_id;
       return new_id;
     end $fn$;

     create or replace function pgshift.audit_ddl() returns event_trigger
       language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
     declare
       broken text;
       objects jsonb;
       role_name text := current_setting('role');
     begin
       select string_agg(format('%I.%I', t.table_schema, t.table_name), ', ') into broken
         from pgshift.audit_tables t
        where (select count(*) from pg_trigger g
                 join pg_class c on c.oid = g.tgrelid
                 join pg_namespace n on n.oid = c.relnamespace
                where n.nspname = t.table_schema and c.relname = t.table_name
                  and g.tgname in ('pgshift_audit', 'pgshift_audit_insert', 'pgshift_audit_truncate')
                  and g.tgenabled = 'A') < 3;
       if broken is not null then
         raise exception 'pgshift audit: % would leave audited table(s) % without audit triggers', tg_tag, broken
           using errcode = 'P0001', hint = 'audit triggers cannot be dropped or disabled; run pgshift audit disable (which is itself recorded) first';
       end if;
       select jsonb_agg(jsonb_build_object('type', c.object_type, 'identity', c.object_identity))
         into objects from pg_event_trigger_ddl_commands() c;
       perform txid_current(); -- before the row's id is drawn (the sealer's floor relies on it)
       insert into pgshift.audit_log (kind, op, detail, db_user, application_name, client_addr, actor, reason)
       values ('ddl', lower(tg_tag), jsonb_build_object('objects', coalesce(objects, '[]'::jsonb), 'query', current_query()),
               case when role_name = 'none' then session_user else role_name end,
               nullif(current_setting('application_name'), ''), inet_client_addr()::text,
               nullif(current_setting('pgshift.actor', true), ''),
               nullif(current_setting('pgshift.reason', true), ''));
     end $fn$;

     create or replace function pgshift.audit_seal_pending() returns table (sealed bigint, head_seq bigint, head_hash bytea, horizon bigint)
       language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
     declare
       head pgshift.audit_head;
       last_id bigint;
       new_horizon bigint;
       chain bytea;
       ids bigint[];
       leaves bytea[];
       leaf bytea;
       hashes bytea[] := '{}';
       new_floor bigint;
       pend_txid bigint[];
       pend_id bigint[];
       resolved int := 0;
     begin
       perform pg_advisory_xact_lock(${AUDIT_SEAL_LOCK.toString()});
       -- The order matters: the last id drawn, then this transaction's txid (see the step's comment), which
       -- the head's row lock assigns. pg_sequence_last_value reads under the buffer lock (a plain SELECT
       -- from the sequence can catch nextval's transient value 32 ahead while it logs); with a cache above
       -- 1, ids drawn later could be lower, so then no pair is recorded and the floor stays (slower, still
       -- complete).
       select case when q.seqcache = 1
                   then coalesce(pg_sequence_last_value('pgshift.audit_log_id_seq'::regclass), 0) else 0 end
         into last_id from pg_sequence q where q.seqrelid = 'pgshift.audit_log_id_seq'::regclass;
       select * into head from pgshift.audit_head for update;
       chain := head.hash;
       pend_txid := head.pending_txid;
       pend_id := head.pending_id;
       if last_id > coalesce(pend_id[cardinality(pend_id)], head.floor_id) then
         if cardinality(pend_id) >= 16 then
           pend_txid[16] := txid_current();
           pend_id[16] := last_id;
         else
           pend_txid := pend_txid || txid_current();
           pend_id := pend_id || last_id;
         end if;
       end if;
       new_horizon := greatest(txid_snapshot_xmin(txid_current_snapshot()), head.horizon);
       if new_horizon > head.horizon then
         -- EXECUTE: a plan for these values (an index scan from the floor), never a generic one
         execute 'select coalesce(array_agg(l.id order by l.id), ''{}''), coalesce(array_agg(l.leaf order by l.id), ''{}'')
                    from (select a.id, pgshift.audit_leaf(a) as leaf
                            from pgshift.audit_log a
                           where a.id > $1 and a.txid >= $2 and a.txid < $3) l'
           into ids, leaves using head.floor_id, head.horizon, new_horizon;
         foreach leaf in array leaves loop
           chain := sha256(chain || leaf);
           hashes := array_append(hashes, chain);
         end loop;
         insert into pgshift.audit_seal (seq, audit_id, prev_hash, hash)
           select head.seq + u.n, u.id, coalesce(lag(u.hash) over (order by u.n), head.hash), u.hash
             from unnest(ids, hashes) with ordinality u(id, hash, n);
       end if;
       -- Every row with id <= pend_id[i] has txid < pend_txid[i]: below the new horizon, all sealed now.
       while resolved < cardinality(pend_txid) and pend_txid[resolved + 1] <= new_horizon loop
         resolved := resolved + 1;
       end loop;
       new_floor := case when resolved > 0 then pend_id[resolved] else head.floor_id end;
       if new_horizon > head.horizon or resolved > 0 or pend_id is distinct from head.pending_id then
         update pgshift.audit_head
            set seq = head.seq + cardinality(hashes), hash = chain, horizon = new_horizon,
                floor_id = new_floor,
                pending_txid = pend_txid[resolved + 1:], pending_id = pend_id[resolved + 1:],
                sealed_at = case when cardinality(hashes) > 0 then clock_timestamp() else head.sealed_at end;
       end if;
       return query select cardinality(hashes)::bigint, head.seq + cardinality(hashes), chain, new_horizon;
     end $fn$;`,
  ],
};
