/**
 * Passwords never reach a log line, an error message or a report: every value pgshift prints passes
 * through here, at the output boundary (src/cli/output.ts) and when an error is constructed.
 *
 * The rules do not depend on a value parsing as a URL: a mistyped connection string
 * (`postgres//u:pw@h/db`, `postgres:/u:pw@h`, `u:pw@h/db`, ` postgres://...`) holds the same password.
 * Anything shaped like `[scheme://]user:secret@host` loses `secret`; `password=secret` (keyword/value
 * strings, query parameters, PGPASSWORD=...) loses `secret`. Over-redacting a string that only looks
 * like credentials is the accepted cost.
 */

export const REDACTED = "********";

/** A scheme in front of the user part, typed right or wrong: `postgres://`, `postgres:/`, `postgres//`, `//`. */
const SCHEME =
  /^\s*(?:[A-Za-z][A-Za-z0-9+.-]*:\/+|(?:postgres|postgresql|pg):|[A-Za-z][A-Za-z0-9+.-]*\/\/|\/\/)/i;

/** `password=...`, `PGPASSWORD=...`, `sslpassword=...`: quoted, or up to the next space, quote or `&`. */
const KEYWORD_PASSWORD = /(pass(?:word)?\s*=\s*)('(?:[^'\\]|\\.)*'?|(?:[^\s&"'\\]|\\.)+)/gi;

/** JSON text: `"password": "..."`. */
const JSON_PASSWORD = /("[^"]*password[^"]*"\s*:\s*)"(?:[^"\\]|\\.)*"/gi;

/** The userinfo of one connection-string-like value, split at its first colon, or undefined. */
function userinfoSplit(value: string): { head: string; secret: string; tail: string } | undefined {
  const at = value.lastIndexOf("@");
  if (at < 0) return undefined;
  const before = value.slice(0, at);
  const scheme = SCHEME.exec(before)?.[0] ?? "";
  const userinfo = before.slice(scheme.length);
  const colon = userinfo.indexOf(":");
  if (colon < 0) return undefined;
  return {
    head: scheme + userinfo.slice(0, colon + 1),
    secret: userinfo.slice(colon + 1),
    tail: value.slice(at),
  };
}

/**
 * One value meant as a connection string, redacted whatever it parses to:
 * `postgres://u:secret@h/db` -> `postgres://u:********@h/db`; `postgres//u:secret@h` ->
 * `postgres//u:********@h`; `host=h password=secret` -> `host=h password=********`.
 */
export function redactUrl(url: string): string {
  const split = userinfoSplit(url);
  const out = split && split.secret !== "" ? `${split.head}${REDACTED}${split.tail}` : url;
  return out.replace(KEYWORD_PASSWORD, `$1${REDACTED}`);
}

/**
 * The passwords a value may carry (as typed, percent-decoded, JSON-escaped), to scrub wherever they
 * turn up on their own, e.g. in a server's error message. Empty when the value has none.
 */
export function secretsIn(value: string): string[] {
  const found = new Set<string>();
  // `--to=postgres://...` as one argument: the URL is what follows the flag's "="
  const url = /^--[^=]*=/.test(value) ? value.slice(value.indexOf("=") + 1) : value;
  const split = userinfoSplit(url);
  if (split && split.secret !== "") found.add(split.secret);
  for (const match of value.matchAll(KEYWORD_PASSWORD)) {
    const raw = match[2]!;
    found.add(raw.startsWith("'") ? raw.replace(/^'|'$/g, "") : raw);
  }
  const variants = new Set<string>();
  for (const secret of found) {
    variants.add(secret);
    try {
      variants.add(decodeURIComponent(secret));
    } catch {
      // not percent-encoded
    }
  }
  for (const secret of [...variants]) {
    variants.add(encodeURIComponent(secret));
    variants.add(JSON.stringify(secret).slice(1, -1));
  }
  return [...variants].filter((s) => s.length > 0);
}

/**
 * Text with every credential-looking part redacted: each whitespace- or quote-delimited word shaped
 * like a connection string, every `password=` parameter, and every occurrence of the given secrets.
 */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = text
    .split(/([\s"'`]+)/)
    .map((word) => (word.includes("@") ? redactUrl(word) : word))
    .join("");
  out = out.replace(KEYWORD_PASSWORD, `$1${REDACTED}`).replace(JSON_PASSWORD, `$1"${REDACTED}"`);
  // Longest first, so a secret that contains another is removed whole.
  for (const secret of [...new Set(secrets)].sort((a, b) => b.length - a.length)) {
    if (secret.length >= 3) out = out.split(secret).join(REDACTED);
  }
  return out;
}
