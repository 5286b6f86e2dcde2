import assert from "node:assert/strict";
import { test } from "node:test";
import { pgbouncerIni, pgbouncerUserlist } from "../../../src/provision/pgbouncer-config.ts";

const base = {
  serverHost: "127.0.0.1",
  serverPort: 5433,
  listenPort: 6432,
  authFile: "/srv/pgb/userlist.txt",
  authUser: "postgres",
  logFile: "/srv/pgb/pgbouncer.log",
  pidFile: "/srv/pgb/pgbouncer.pid",
};

test("pgbouncer.ini: transaction pooling, SCRAM, auth_query; prepared statements only from 1.21", () => {
  assert.equal(
    pgbouncerIni({ ...base, pgbouncerVersion: "1.18.0" }),
    [
      "; written by pgshift",
      "[databases]",
      "* = host=127.0.0.1 port=5433",
      "",
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      "listen_port = 6432",
      "unix_socket_dir =",
      "pool_mode = transaction",
      "auth_type = scram-sha-256",
      "auth_file = /srv/pgb/userlist.txt",
      "auth_user = postgres",
      "auth_query = SELECT usename, passwd FROM pg_shadow WHERE usename = $1",
      "default_pool_size = 20",
      "max_client_conn = 200",
      "ignore_startup_parameters = extra_float_digits,options,statement_timeout,lock_timeout,idle_in_transaction_session_timeout",
      "logfile = /srv/pgb/pgbouncer.log",
      "pidfile = /srv/pgb/pgbouncer.pid",
      "",
    ].join("\n"),
  );
  const modern = pgbouncerIni({ ...base, pgbouncerVersion: "1.22.1", serverCaFile: "/srv/ca.crt" });
  assert.match(modern, /^max_prepared_statements = 200$/m);
  assert.match(modern, /^server_tls_sslmode = verify-full\nserver_tls_ca_file = \/srv\/ca\.crt$/m);
  assert.equal(pgbouncerUserlist([{ name: 'we"ird', secret: "pw" }]), '"we""ird" "pw"\n');
});
