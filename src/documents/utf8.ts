/**
 * The byte offset of the first invalid UTF-8 sequence in `bytes` (strict: no overlongs, no surrogates,
 * nothing above U+10FFFF), or -1 when all of it is valid. A sequence cut off at the end counts as
 * invalid unless `allowTruncatedEnd` (streaming: the rest arrives in the next chunk).
 */
export function firstInvalidUtf8(bytes: Uint8Array, allowTruncatedEnd = false): number {
  const length = bytes.length;
  let i = 0;
  while (i < length) {
    const b0 = bytes[i]!;
    if (b0 < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else {
      return i;
    }
    if (i + need >= length) {
      if (!allowTruncatedEnd) return i;
      for (let j = i + 1; j < length; j++) if ((bytes[j]! & 0xc0) !== 0x80) return i;
      return -1;
    }
    let codePoint = b0 & (0xff >> (need + 2));
    for (let j = 1; j <= need; j++) {
      const b = bytes[i + j]!;
      if ((b & 0xc0) !== 0x80) return i;
      codePoint = (codePoint << 6) | (b & 0x3f);
    }
    if (codePoint < min || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

/** Line (1-based) and column (1-based, in bytes) of a byte offset. */
export function lineAndColumn(bytes: Uint8Array, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < bytes.length; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}
