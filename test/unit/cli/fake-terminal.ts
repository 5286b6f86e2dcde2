/**
 * A stand-in for a terminal on stderr: a stream with isTTY and columns that interprets what is written
 * (text, \r, \n and the few ANSI sequences readline and cli-progress use: cursor up/down/column, erase
 * line, erase below), so that a test can read the screen as a user would see it.
 */
export class FakeTerminal {
  readonly isTTY = true;
  private rows: string[][] = [[]];
  private row = 0;
  private col = 0;
  private saved: [number, number] = [0, 0];
  /** The most screen lines with text at any moment, checked after every write. */
  maxLinesShown = 0;
  written = "";

  constructor(readonly columns = 100) {}

  /** An escape sequence cut in two by the writer's chunks waits here for its end. */
  private pending = "";

  write = (chunk: string | Uint8Array): boolean => {
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    this.written += text;
    let input = this.pending + text;
    this.pending = "";
    const cut = /\x1b(?:\[[?\d;]*)?$/.exec(input);
    if (cut) {
      this.pending = cut[0];
      input = input.slice(0, cut.index);
    }
    this.interpret(input);
    this.maxLinesShown = Math.max(this.maxLinesShown, this.lines().length);
    return true;
  };

  /** The screen's non-empty lines, top to bottom (trailing spaces removed). */
  lines(): string[] {
    return this.rows.map((r) => r.join("").trimEnd()).filter((line) => line.length > 0);
  }

  /** Every line of the screen from the first with text to the last, empty ones included. */
  screen(): string[] {
    const all = this.rows.map((r) => r.join("").trimEnd());
    const first = all.findIndex((l) => l.length > 0);
    if (first < 0) return [];
    let last = all.length - 1;
    while (last > first && all[last]!.length === 0) last--;
    return all.slice(first, last + 1);
  }

  asStream(): NodeJS.WriteStream {
    return this as unknown as NodeJS.WriteStream;
  }

  private line(): string[] {
    while (this.rows.length <= this.row) this.rows.push([]);
    return this.rows[this.row]!;
  }

  private interpret(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]!;
      if (ch === "\x1b") {
        if (text[i + 1] === "7") {
          this.saved = [this.row, this.col];
          i++;
          continue;
        }
        if (text[i + 1] === "8") {
          [this.row, this.col] = this.saved;
          i++;
          continue;
        }
        const match = /^\x1b\[(\??)([\d;]*)([A-Za-z])/.exec(text.slice(i));
        if (!match) continue;
        i += match[0].length - 1;
        if (match[1] === "?") continue; // cursor visibility, line wrapping
        const n = match[2] === "" ? undefined : Number(match[2]);
        switch (match[3]) {
          case "A":
            this.row = Math.max(0, this.row - (n ?? 1));
            break;
          case "B":
            this.row += n ?? 1;
            break;
          case "C":
            this.col += n ?? 1;
            break;
          case "D":
            this.col = Math.max(0, this.col - (n ?? 1));
            break;
          case "G":
            this.col = Math.max(0, (n ?? 1) - 1);
            break;
          case "K": {
            const line = this.line();
            if ((n ?? 0) === 0) line.length = Math.min(line.length, this.col);
            else if (n === 1) for (let c = 0; c <= this.col && c < line.length; c++) line[c] = " ";
            else line.length = 0;
            break;
          }
          case "J":
            this.line().length = Math.min(this.line().length, this.col);
            this.rows.length = Math.min(this.rows.length, this.row + 1);
            break;
        }
        continue;
      }
      if (ch === "\n") {
        this.row++;
        this.col = 0;
        this.line();
        continue;
      }
      if (ch === "\r") {
        this.col = 0;
        continue;
      }
      const line = this.line();
      while (line.length < this.col) line.push(" ");
      if (this.col < this.columns) line[this.col] = ch;
      this.col++;
    }
  }
}
