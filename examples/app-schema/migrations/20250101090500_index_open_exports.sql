-- A later release: the export worker polls unfinished exports. app.exports is in use by now, so the
-- index is built without blocking writes; a failed build's INVALID index is cleaned up by pgshift.
-- migrate:no-transaction
-- migrate:up
create index concurrently if not exists exports_open on app.exports (created_at) where status <> 'done';

-- migrate:down
drop index concurrently if exists app.exports_open;
