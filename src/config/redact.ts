/**
 * Passwords never reach a log line, an error message or a report: every connection string that leaves
 * the library passes through here.
 */

const REDACTED = "********";

/** `postgres://u:secret@h/db` -> `postgres://u:********@h/db`; also hides `password=` query/keyword parameters. */
export function redactUrl(url: string): string {
  let out = url;
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = REDACTED;
    for (const key of [...parsed.searchParams.keys()]) {
      if (/pass/i.test(key)) parsed.searchParams.set(key, REDACTED);
    }
    return parsed.toString();
  } catch {
    // Not a URL: a keyword/value string ("host=h password=x") or a malformed URL.
    out = out.replace(/(:\/\/[^:/@\s]*:)[^@\s]*@/g, `$1${REDACTED}@`);
  }
  return out.replace(/(password\s*=\s*)('[^']*'|[^\s&]+)/gi, `$1${REDACTED}`);
}

/** Removes every occurrence of the given secrets (and URLs with passwords) from a piece of text. */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(/\b(postgres(?:ql)?:\/\/[^\s'"]+)/gi, (match) => redactUrl(match));
  for (const secret of secrets) {
    if (secret.length >= 3) out = out.split(secret).join(REDACTED);
  }
  return out;
}
