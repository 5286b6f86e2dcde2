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

/** `double precision` text: shortest round-trip, "-0", "NaN", "Infinity", "-Infinity", "1e+21", "1.5e-07". */
export function float8Text(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "Infinity";
  if (value === Number.NEGATIVE_INFINITY) return "-Infinity";
  if (value === 0) return Object.is(value, -0) ? "-0" : "0";
  const [digits, exponent] = shortestDigits(Math.abs(value));
  return pgFloatText(value < 0, digits, exponent, 15);
}

/** `real` text: the double rounded to float4, then the shortest digits that round-trip as float4. */
export function float4Text(value: number): string {
  const f = Math.fround(value);
  if (Number.isNaN(f)) return "NaN";
  if (f === Number.POSITIVE_INFINITY) return "Infinity";
  if (f === Number.NEGATIVE_INFINITY) return "-Infinity";
  if (f === 0) return Object.is(f, -0) ? "-0" : "0";
  const abs = Math.abs(f);
  let text = abs.toExponential(8);
  for (let precision = 0; precision <= 8; precision++) {
    const candidate = abs.toExponential(precision);
    if (Math.fround(Number(candidate)) === abs) {
      text = candidate;
      break;
    }
  }
  const e = text.indexOf("e");
  return pgFloatText(f < 0, text.slice(0, e).replace(".", ""), Number(text.slice(e + 1)), 6);
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
  return numericText(String(value));
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
