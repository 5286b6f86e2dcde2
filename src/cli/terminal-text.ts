/**
 * Names come from sources pgshift does not control: a SQLite table called "evil\x1b[2J" or a JSON key
 * with a bidi override would clear, recolour or retitle the user's terminal, or hide text, when printed
 * as they are. This is the one place such characters are made visible.
 */

/** C0 controls except tab and newline, DEL, C1 controls, and Unicode bidi/line-separator controls. */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** A name with ESC (U+001B) in it comes out as the four characters `\x1b`; other text is unchanged. */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}
