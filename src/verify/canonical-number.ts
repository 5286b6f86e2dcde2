/**
 * Canonical text of numbers, exactly as PostgreSQL prints them under pgshift's verification session
 * settings (extra_float_digits = 1: shortest round-trip digits). See docs/verification.md.
 */

/** Shortest round-trip digits and decimal exponent of a finite, non-zero double: 1234.5 -> ["12345", 3]. */
function shortestDigits(abs: number): [string, number] {
  // toExponential() without an argument gives the fewest digits that round-trip (ECMA-262 Number::toString).
  const text = abs.toExponential();
  const e = text.indexOf("e");
  return [text.slice(0, e).replace(".", ""), Number(text.slice(e + 1))];
}

/** Scientific or fixed notation the way PostgreSQL's float output (Ryu) writes it. */
function pgFloatText(negative: boolean, digits: string, exponent: number, fixedBelow: number): string {
  const sign = negative ? "-" : "";
  if (exponent < -4 || exponent >= fixedBelow) {
    const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const abs = Math.abs(exponent);
    return `${sign}${mantissa}e${exponent < 0 ? "-" : "+"}${abs < 10 ? `0${abs}` : abs}`;
  }
  return sign + plainDecimal(digits, exponent);
}

/** Digits "12345" with exponent 1 -> "12.345"; exponent -3 -> "0.0012345"; exponent 6 -> "1234500". */
function plainDecimal(digits: string, exponent: number): string {
  const intLength = exponent + 1;
  if (intLength <= 0) return `0.${"0".repeat(-intLength)}${digits}`;
  if (intLength >= digits.length) return digits + "0".repeat(intLength - digits.length);
  return `${digits.slice(0, intLength)}.${digits.slice(intLength)}`;
}

/** A finite, non-zero binary float as mantissa * 2^exponent, with what Ryu needs to know about it. */
interface BinaryFloat {
  mantissa: bigint;
  exponent: number;
  /** The next lower float is closer than the next higher one (mantissa is a power of two). */
  lowerCloser: boolean;
}

const view = new DataView(new ArrayBuffer(8));

function decompose64(abs: number): BinaryFloat {
  view.setFloat64(0, abs);
  const high = view.getUint32(0);
  const low = view.getUint32(4);
  const biased = high >>> 20;
  const fraction = (BigInt(high & 0xfffff) << 32n) | BigInt(low);
  if (biased === 0) return { mantissa: fraction, exponent: -1074, lowerCloser: false };
  return {
    mantissa: fraction | (1n << 52n),
    exponent: biased - 1075,
    lowerCloser: fraction === 0n && biased > 1,
  };
}

function decompose32(abs: number): BinaryFloat {
  view.setFloat32(0, abs);
  const bits = view.getUint32(0);
  const biased = bits >>> 23;
  const fraction = BigInt(bits & 0x7fffff);
  if (biased === 0) return { mantissa: fraction, exponent: -149, lowerCloser: false };
  return {
    mantissa: fraction | (1n << 23n),
    exponent: biased - 150,
    lowerCloser: fraction === 0n && biased > 1,
  };
}

const pow = (base: bigint, n: number) => base ** BigInt(n);

/**
 * The shortest decimal that PostgreSQL's Ryu prints for a float, computed exactly with BigInt:
 * the fewest digits strictly inside the rounding interval (PostgreSQL's Ryu never takes a bound,
 * where JavaScript takes one when the mantissa is even), the closest one at that length, ties to
 * even. The two differ only when JavaScript's answer sits exactly on a bound, which needs a double of
 * 2^53 or above; real (float4) values always go this way.
 */
function ryuShortest(f: BinaryFloat, maxDigits: number): [string, number] {
  const { mantissa, exponent: e } = f;
  // Exact decimal digits of the value.
  let exactDigits: string;
  let firstExponent: number;
  if (e >= 0) {
    exactDigits = (mantissa << BigInt(e)).toString();
    firstExponent = exactDigits.length - 1;
  } else {
    exactDigits = (mantissa * pow(5n, -e)).toString();
    firstExponent = exactDigits.length - 1 + e;
  }
  exactDigits = exactDigits.replace(/0+$/, "");
  for (let p = 1; p <= maxDigits; p++) {
    const k = firstExponent - p + 1;
    if (p >= exactDigits.length) return [exactDigits, firstExponent];
    let c = BigInt(exactDigits.slice(0, p));
    const rest = exactDigits.slice(p);
    const up = rest[0]! > "5" || (rest[0] === "5" && (rest.length > 1 || c % 2n === 1n));
    const other = up ? c : c + 1n;
    if (up) c += 1n;
    for (const candidate of [c, other]) {
      if (inside(candidate, k, f)) {
        const text = candidate.toString();
        return [text.replace(/0+$/, "") || "0", k + text.length - 1];
      }
    }
  }
  return [exactDigits, firstExponent];
}

/** Whether candidate * 10^k lies in the float's rounding interval (see ryuShortest). */
function inside(candidate: bigint, k: number, f: BinaryFloat): boolean {
  const e = f.exponent;
  const a = Math.max(0, 2 - e);
  const b = Math.max(0, -k);
  const scaledCandidate = candidate * pow(10n, k + b) * pow(2n, a);
  const scaledValue = f.mantissa * pow(2n, e + a) * pow(10n, b);
  const quarter = pow(2n, e - 2 + a) * pow(10n, b);
  const diff = scaledCandidate - scaledValue;
  if (diff === 0n) return true;
  if (diff > 0n) return diff < 2n * quarter;
  const below = f.lowerCloser ? quarter : 2n * quarter;
  return -diff < below;
}

const TWO_53 = 2 ** 53;
const LOG2_10 = Math.log2(10);

/** `double precision` text: shortest round-trip, "-0", "NaN", "Infinity", "-Infinity", "1e+21", "1.5e-07". */
export function float8Text(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "Infinity";
  if (value === Number.NEGATIVE_INFINITY) return "-Infinity";
  if (value === 0) return Object.is(value, -0) ? "-0" : "0";
  const abs = Math.abs(value);
  const [digits, exponent] = abs < TWO_53 ? shortestDigits(abs) : ryuShortest(decompose64(abs), 17);
  return pgFloatText(value < 0, digits, exponent, 15);
}

/** `real` text of a float4 value (a double that is exactly a float4): its shortest Ryu digits. */
export function float4Text(value: number): string {
  const f = Math.fround(value);
  if (Number.isNaN(f)) return "NaN";
  if (f === Number.POSITIVE_INFINITY) return "Infinity";
  if (f === Number.NEGATIVE_INFINITY) return "-Infinity";
  if (f === 0) return Object.is(f, -0) ? "-0" : "0";
  const [digits, exponent] = ryuShortest(decompose32(Math.abs(f)), 9);
  return pgFloatText(f < 0, digits, exponent, 6);
}

/**
 * The float4 nearest to decimal text, rounded once (ties to even) as PostgreSQL's float4in does;
 * `Math.fround(Number(text))` rounds twice and can differ. Undefined when the text is not a number
 * or overflows or underflows the float4 range (PostgreSQL rejects those).
 */
export function float4FromText(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^[+-]?nan$/i.test(trimmed)) return Number.NaN;
  if (/^\+?inf(inity)?$/i.test(trimmed)) return Number.POSITIVE_INFINITY;
  if (/^-inf(inity)?$/i.test(trimmed)) return Number.NEGATIVE_INFINITY;
  const d = parseDecimal(trimmed);
  if (!d) return undefined;
  if (d.digits === "") return d.negative ? -0 : 0;
  const q = d.exponent - d.digits.length + 1;
  let num = BigInt(d.digits);
  let den = 1n;
  if (q >= 0) num *= pow(10n, q);
  else den = pow(10n, -q);
  const approx =
    Math.log10(Number(d.digits.slice(0, 17)) || 1) + (d.digits.length > 17 ? d.digits.length - 17 : 0) + q;
  if (approx > 40) return undefined;
  if (approx < -47) return undefined;
  let e = Math.max(-149, Math.floor(approx * LOG2_10) - 24);
  const scaled = (exp: number): [bigint, bigint] =>
    exp >= 0 ? [num, den * pow(2n, exp)] : [num * pow(2n, -exp), den];
  let [n, m] = scaled(e);
  while (n / m >= 1n << 24n) [n, m] = scaled(++e);
  while (n / m < 1n << 23n && e > -149) [n, m] = scaled(--e);
  let mantissa = n / m;
  const twice = 2n * (n - mantissa * m);
  if (twice > m || (twice === m && mantissa % 2n === 1n)) mantissa += 1n;
  if (mantissa === 1n << 24n) {
    mantissa = 1n << 23n;
    e++;
  }
  if (mantissa === 0n || e > 104) return undefined;
  const value = Number(mantissa) * 2 ** e;
  return d.negative ? -value : value;
}

const NUMERIC_SYNTAX = /^\s*([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/;

/** A parsed decimal: sign, significant digits without leading zeros, and the exponent of the first digit. */
interface Decimal {
  negative: boolean;
  /** Digits with no leading zeros ("" for zero). */
  digits: string;
  /** Power of ten of digits[0]. */
  exponent: number;
  /** Digits after the point as written, exponent applied (numeric_in's display scale). */
  scale: number;
}

/** Parses decimal text as PostgreSQL's numeric_in does (no float rounding); undefined when not a number. */
export function parseDecimal(text: string): Decimal | undefined {
  const match = NUMERIC_SYNTAX.exec(text);
  if (!match) return undefined;
  const intPart = match[2] ?? "";
  const fracPart = match[3] ?? "";
  if (intPart === "" && fracPart === "") return undefined;
  const exp10 = match[4] === undefined ? 0 : Number(match[4]);
  if (!Number.isSafeInteger(exp10)) return undefined;
  const all = intPart + fracPart;
  const firstNonZero = all.search(/[1-9]/);
  const scale = Math.max(0, fracPart.length - exp10);
  if (firstNonZero < 0) return { negative: false, digits: "", exponent: 0, scale };
  const digits = all.slice(firstNonZero).replace(/0+$/, "");
  return {
    negative: match[1] === "-",
    digits,
    exponent: intPart.length - 1 - firstNonZero + exp10,
    scale,
  };
}

/** Plain decimal text of a Decimal with exactly `scale` fractional digits (numeric_out). */
function decimalText(d: Decimal, scale: number): string {
  if (d.digits === "") return scale > 0 ? `0.${"0".repeat(scale)}` : "0";
  const intLength = d.exponent + 1;
  let intPart: string;
  let fracPart: string;
  if (intLength <= 0) {
    intPart = "0";
    fracPart = "0".repeat(-intLength) + d.digits;
  } else if (intLength >= d.digits.length) {
    intPart = d.digits + "0".repeat(intLength - d.digits.length);
    fracPart = "";
  } else {
    intPart = d.digits.slice(0, intLength);
    fracPart = d.digits.slice(intLength);
  }
  fracPart = fracPart.padEnd(scale, "0");
  return `${d.negative ? "-" : ""}${intPart}${fracPart ? `.${fracPart}` : ""}`;
}

/**
 * `numeric` canonical text: the exact value, plain notation, scale trimmed (PostgreSQL `trim_scale`):
 * "1.50" -> "1.5", "1e3" -> "1000", "-0.0" -> "0". Undefined when `text` is not a decimal number.
 */
export function numericText(text: string): string | undefined {
  const trimmed = text.trim();
  if (/^[+-]?(nan)$/i.test(trimmed)) return "NaN";
  if (/^\+?(inf|infinity)$/i.test(trimmed)) return "Infinity";
  if (/^-(inf|infinity)$/i.test(trimmed)) return "-Infinity";
  const d = parseDecimal(trimmed);
  if (!d) return undefined;
  const fractionDigits = Math.max(0, d.digits.length - d.exponent - 1);
  return decimalText(d, fractionDigits);
}

/** `numeric` canonical text of a double: its shortest round-trip decimal, exact, plain notation. */
export function numericTextOfDouble(value: number): string | undefined {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "Infinity";
  if (value === Number.NEGATIVE_INFINITY) return "-Infinity";
  if (value === 0) return "0";
  const shortest = String(value);
  // Without an exponent, JavaScript's shortest round-trip text is already numeric_out's trimmed form
  // (no leading zeros but one before the point, no trailing fractional zeros): numericText would
  // return it unchanged (the property test in test/unit/verify/canonical.test.ts holds it to that).
  if (!shortest.includes("e")) return shortest;
  return numericText(shortest);
}

/**
 * A JSON number as jsonb prints it: the exact decimal with the scale as written, exponent applied
 * ("1.50" stays "1.50", "1e2" -> "100", "1.5E-3" -> "0.0015", "-0" -> "0").
 */
export function jsonbNumberText(text: string): string | undefined {
  const d = parseDecimal(text);
  if (!d) return undefined;
  return decimalText(d, d.scale);
}

/** Integer canonical text ("007" -> "7", "-0" -> "0"); undefined when `text` is not an integer. */
export function integerText(text: string): string | undefined {
  const match = /^\s*([+-]?)0*(\d+)\s*$/.exec(text);
  if (!match) return undefined;
  const digits = match[2]!.replace(/^0+(?=\d)/, "");
  return digits === "0" || match[1] !== "-" ? digits : `-${digits}`;
}
