import { Transform, type TransformCallback } from "node:stream";

/** A stream-json token (the packed kinds carry their value; numbers as the text they were written with). */
interface Token {
  name: string;
  value?: unknown;
}

/** One record's JSON text, in the order of the source; `index` is its position in the records array. */
export interface RecordText {
  index: number;
  text: string;
}

/**
 * Turns stream-json's tokens into the JSON text of each record: each element of the top-level array (of
 * the array `pick` selected), or the one top-level value (`whole`). Numbers are written with the source's
 * own digits (the parser hands them over as text), so no integer beyond 2^53 is rounded as a JavaScript
 * number would be; strings are re-escaped (same value). No recursion: a record can nest as deep as it likes.
 */
export class ExactRecordText extends Transform {
  /** Containers open, counting the records array itself (not part of any record) when !whole. */
  private depth = 0;
  /** Per container open inside the current record: whether the next value is its first. */
  private readonly first: boolean[] = [];
  private afterKey = false;
  private text = "";
  private index = 0;
  private readonly base: number;

  constructor(whole: boolean) {
    super({ writableObjectMode: true, readableObjectMode: true });
    this.base = whole ? 0 : 1;
  }

  override _transform(token: Token, _encoding: BufferEncoding, callback: TransformCallback): void {
    switch (token.name) {
      case "startObject":
      case "startArray":
        if (this.depth < this.base) {
          this.depth++;
          break;
        }
        this.separate();
        this.text += token.name === "startObject" ? "{" : "[";
        this.depth++;
        this.first.push(true);
        break;
      case "endObject":
      case "endArray":
        this.depth--;
        if (this.depth < this.base) break;
        this.first.pop();
        this.text += token.name === "endObject" ? "}" : "]";
        this.ended();
        break;
      case "keyValue":
        this.separate();
        this.text += `${JSON.stringify(token.value)}:`;
        this.afterKey = true;
        break;
      case "stringValue":
        this.separate();
        this.text += JSON.stringify(token.value);
        this.ended();
        break;
      case "numberValue":
        this.separate();
        this.text += String(token.value);
        this.ended();
        break;
      case "nullValue":
      case "trueValue":
      case "falseValue":
        this.separate();
        this.text += token.name === "nullValue" ? "null" : token.name === "trueValue" ? "true" : "false";
        this.ended();
        break;
      default:
      // the unpacked pieces (startString, stringChunk, ...) repeat what the packed tokens say
    }
    callback();
  }

  /** The comma before a value, unless it is a container's first or follows its key. */
  private separate(): void {
    if (this.afterKey) {
      this.afterKey = false;
      return;
    }
    const n = this.first.length;
    if (n === 0) return;
    if (this.first[n - 1]) this.first[n - 1] = false;
    else this.text += ",";
  }

  /** A value ended: at the record level it completes a record. */
  private ended(): void {
    if (this.depth !== this.base) return;
    this.push({ index: this.index++, text: this.text } satisfies RecordText);
    this.text = "";
  }
}
