//! Python 2.7 `str()` of the values the original indexer puts in its
//! consensus records, and virtualchain's `serialize_op` over them.
//!
//! Consensus hashes commit to these exact bytes, so every formatting quirk of
//! CPython 2.7.18 matters, above all `str(float)`: `%.12g` through David Gay's
//! `dtoa` (mode 2, 12 digits) followed by CPython's own layout rules.

use std::cmp::Ordering;

/// A value as the original's op records hold it, before `str()`.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    None,
    Bool(bool),
    /// Python `int`/`long`; `str()` never shows the `L` suffix.
    Int(i128),
    Float(f64),
    /// Python 2 byte strings (ASCII in practice: hex, base58, names).
    Str(String),
    List(Vec<PyValue>),
}

/// Digits `d1 d2 ... dn` meaning `0.d1d2...dn * 10^decpt`, as `dtoa` returns them.
struct Decimal {
    digits: Vec<u8>,
    decpt: i32,
}

/// Python 2.7's `str(f)`.
pub fn py2_float_str(f: f64) -> String {
    if let Some(s) = non_finite(f) {
        return s;
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let dec = dtoa_mode2(f.abs(), 12);
    // `float_str` passes Py_DTSF_ADD_DOT_0, which lowers the exponent
    // threshold of `%g` from `decpt > precision` to `decpt > precision - 1`.
    let use_exp = dec.decpt <= -4 || dec.decpt > 11;
    format!("{sign}{}", layout(&dec, use_exp))
}

/// Python 2.7's `repr(f)` (used for floats inside a list's `str()`): the
/// shortest round-tripping digits, exponent form from 1e16.
fn py2_float_repr(f: f64) -> String {
    if let Some(s) = non_finite(f) {
        return s;
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let dec = shortest(f.abs());
    let use_exp = dec.decpt <= -4 || dec.decpt > 16;
    format!("{sign}{}", layout(&dec, use_exp))
}

fn non_finite(f: f64) -> Option<String> {
    if f.is_nan() {
        // CPython ignores the sign of a NaN.
        Some("nan".into())
    } else if f.is_infinite() {
        Some(if f < 0.0 { "-inf" } else { "inf" }.into())
    } else {
        None
    }
}

/// CPython's `format_float_short` layout for `'g'`/`'r'` with
/// Py_DTSF_ADD_DOT_0: digits are never padded to the precision, a `.0` is
/// added to integers written without exponent, and the exponent has a sign
/// and at least two digits.
fn layout(dec: &Decimal, use_exp: bool) -> String {
    let digits: String = dec.digits.iter().map(|d| char::from(b'0' + d)).collect();
    let n = digits.len() as i32;
    if use_exp {
        let exp = dec.decpt - 1;
        let (head, tail) = digits.split_at(1);
        let dot = if tail.is_empty() { "" } else { "." };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        return format!("{head}{dot}{tail}e{exp_sign}{:02}", exp.abs());
    }
    let decpt = dec.decpt;
    if decpt <= 0 {
        format!("0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt < n {
        let (int, frac) = digits.split_at(decpt as usize);
        format!("{int}.{frac}")
    } else {
        format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
    }
}

/// `_Py_dg_dtoa(v, 2, ndigits)` for finite `v >= 0`: the value correctly
/// rounded to `ndigits` significant digits, ties to even, trailing zeros
/// stripped, except in one case.
///
/// Gay's code reaches that result by three routes, and they differ in one
/// visible way. The floating-point fast path gives up when the discarded part
/// is within its error bound of one half, which for integers only happens on
/// exact ties. An integral value below 1e15 then takes the "small integer"
/// route, which on rounding down returns its digits without stripping the
/// trailing zeros (`2837463876205.0` -> digits `283746387620`). Every other
/// route strips them.
fn dtoa_mode2(v: f64, ndigits: usize) -> Decimal {
    let (mut dec, tie_rounded_down) = round_to_digits(v, ndigits);
    let small_int_route = v.fract() == 0.0 && v < 1e15;
    if !(tie_rounded_down && small_int_route) {
        strip_zeros(&mut dec.digits);
    }
    dec
}

/// `v >= 0` rounded to at most `ndigits` significant digits, ties to even,
/// with the trailing zeros of a rounded-down result left in place; also
/// whether the discarded part was exactly one half and rounded down.
fn round_to_digits(v: f64, ndigits: usize) -> (Decimal, bool) {
    if v == 0.0 {
        let zero = Decimal {
            digits: vec![0],
            decpt: 1,
        };
        return (zero, false);
    }
    let (mut r, s, mut k) = scaled_ratio(v);
    let mut digits = Vec::with_capacity(ndigits);
    for i in 0..ndigits {
        let mut d = 0u8;
        while r.cmp(&s) != Ordering::Less {
            r.sub_assign(&s);
            d += 1;
        }
        digits.push(d);
        if r.is_zero() {
            break;
        }
        if i + 1 < ndigits {
            r.mul_small(10);
        }
    }
    let half = if r.is_zero() {
        Ordering::Less
    } else {
        r.shl(1);
        r.cmp(&s)
    };
    let last_odd = digits.last().is_some_and(|d| d % 2 == 1);
    let round_up = half == Ordering::Greater || (half == Ordering::Equal && last_odd);
    if round_up {
        while digits.last() == Some(&9) {
            digits.pop();
        }
        match digits.last_mut() {
            Some(d) => *d += 1,
            None => {
                digits.push(1);
                k += 1;
            }
        }
    }
    let dec = Decimal {
        digits,
        decpt: k + 1,
    };
    (dec, half == Ordering::Equal && !round_up)
}

fn strip_zeros(digits: &mut Vec<u8>) {
    while digits.len() > 1 && digits.last() == Some(&0) {
        digits.pop();
    }
}

/// Exact `r / s` in [1, 10) with `v = (r / s) * 10^k`.
fn scaled_ratio(v: f64) -> (Big, Big, i32) {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    let (mant, exp) = if biased == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), biased - 1075)
    };
    let mut r = Big::from_u64(mant);
    let mut s = Big::from_u64(1);
    if exp >= 0 {
        r.shl(exp as u32);
    } else {
        s.shl((-exp) as u32);
    }
    // log10 may be off by one near powers of ten; the loops below fix that.
    let mut k = v.log10().floor() as i32;
    if k >= 0 {
        s.mul_pow10(k as u32);
    } else {
        r.mul_pow10((-k) as u32);
    }
    loop {
        let mut ten_s = s.clone();
        ten_s.mul_small(10);
        if r.cmp(&ten_s) != Ordering::Less {
            s = ten_s;
            k += 1;
        } else if r.cmp(&s) == Ordering::Less {
            r.mul_small(10);
            k -= 1;
        } else {
            return (r, s, k);
        }
    }
}

/// `_Py_dg_dtoa(v, 0, 0)`: the shortest digits that read back as `v`, and
/// of those the nearest to `v`, ties to even. Core's `{:e}` finds the same
/// length but breaks ties upwards (`...243.125` -> `.13`, Python `.12`), so
/// the digits come from exact rounding at that length whenever that reads
/// back as `v`.
fn shortest(v: f64) -> Decimal {
    let text = format!("{v:e}");
    let (mant, exp) = text.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let core = Decimal {
        digits: mant
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| b - b'0')
            .collect(),
        decpt: exp + 1,
    };
    let (mut nearest, _) = round_to_digits(v, core.digits.len());
    strip_zeros(&mut nearest.digits);
    if decimal_value(&nearest) == v {
        nearest
    } else {
        core
    }
}

fn decimal_value(dec: &Decimal) -> f64 {
    let digits: String = dec.digits.iter().map(|d| char::from(b'0' + d)).collect();
    format!("0.{digits}e{}", dec.decpt)
        .parse()
        .expect("digits and an exponent parse as f64")
}

/// Just enough unsigned arbitrary precision for exact digit generation.
#[derive(Clone)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for limb in &mut self.0 {
            let t = u64::from(*limb) * u64::from(m) + carry;
            *limb = t as u32;
            carry = t >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn mul_pow10(&mut self, mut n: u32) {
        while n >= 9 {
            self.mul_small(1_000_000_000);
            n -= 9;
        }
        self.mul_small(10u32.pow(n));
    }

    fn shl(&mut self, bits: u32) {
        let words = (bits / 32) as usize;
        let bits = bits % 32;
        if bits > 0 {
            let mut carry = 0u32;
            for limb in &mut self.0 {
                let next = *limb >> (32 - bits);
                *limb = (*limb << bits) | carry;
                carry = next;
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        if !self.is_zero() {
            self.0.splice(0..0, std::iter::repeat_n(0, words));
        }
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    /// `self -= other`; requires `self >= other`.
    fn sub_assign(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let o = i64::from(other.0.get(i).copied().unwrap_or(0));
            let mut t = i64::from(*limb) - o - borrow;
            borrow = 0;
            if t < 0 {
                t += 1 << 32;
                borrow = 1;
            }
            *limb = t as u32;
        }
        debug_assert_eq!(borrow, 0, "Big::sub_assign underflow");
        self.trim();
    }
}

/// Python 2's `str(v)`.
pub fn py2_str(v: &PyValue) -> String {
    match v {
        PyValue::Int(i) => i.to_string(),
        PyValue::Float(f) => py2_float_str(*f),
        PyValue::Str(s) => s.clone(),
        other => py2_repr(other),
    }
}

/// Python 2's `repr(v)`, which `str(list)` applies to the elements.
fn py2_repr(v: &PyValue) -> String {
    match v {
        PyValue::None => "None".into(),
        PyValue::Bool(true) => "True".into(),
        PyValue::Bool(false) => "False".into(),
        // Only values beyond a 64-bit `int` are necessarily `long`s; the
        // original's list elements (namespace buckets) are plain ints.
        PyValue::Int(i) if i64::try_from(*i).is_err() => format!("{i}L"),
        PyValue::Int(i) => i.to_string(),
        PyValue::Float(f) => py2_float_repr(*f),
        PyValue::Str(s) => py2_str_repr(s),
        PyValue::List(items) => {
            let inner: Vec<String> = items.iter().map(py2_repr).collect();
            format!("[{}]", inner.join(", "))
        }
    }
}

/// `repr` of a Python 2 byte string: single quotes unless only double quotes
/// avoid escaping, `\xNN` for anything not printable ASCII.
fn py2_str_repr(s: &str) -> String {
    let bytes = s.as_bytes();
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push(char::from(quote));
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if b == quote => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(char::from(quote));
    out
}

/// virtualchain's `serialize_op`: the opcode byte, `:`, then one netstring
/// `len:value` per field, comma-separated. A `None` field is written as the
/// empty string (not `None`), and the length counts the bytes of `str(value)`.
///
/// Panics on a non-ASCII opcode: every BNS opcode is ASCII, and a raw high
/// byte would not survive as UTF-8 text.
pub fn serialize_op(opcode: u8, fields: &[PyValue]) -> String {
    assert!(opcode.is_ascii(), "opcode {opcode:#04x} is not ASCII");
    let values: Vec<String> = fields
        .iter()
        .map(|v| {
            let text = match v {
                PyValue::None => String::new(),
                other => py2_str(other),
            };
            format!("{}:{text}", text.len())
        })
        .collect();
    format!("{}:{}", char::from(opcode), values.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOAT_VECTORS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/testdata/oracle/py2-float-str.json"
    );

    #[test]
    fn float_str_matches_every_python2_vector() {
        let text = std::fs::read_to_string(FLOAT_VECTORS)
            .unwrap_or_else(|e| panic!("reading {FLOAT_VECTORS}: {e}"));
        let json: serde_json::Value = serde_json::from_str(&text).expect("vector JSON");
        let pairs = json["pairs"].as_array().expect("`pairs` array");
        assert!(pairs.len() >= 80_000, "only {} vectors", pairs.len());
        let mut failures = Vec::new();
        for pair in pairs {
            let repr = pair[0].as_str().expect("repr string");
            let want = pair[1].as_str().expect("str string");
            let f: f64 = repr
                .parse()
                .unwrap_or_else(|e| panic!("parsing {repr}: {e}"));
            let got = py2_float_str(f);
            if got != want {
                failures.push(format!("{repr}: got {got}, want {want}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} differ, first: {:?}",
            failures.len(),
            pairs.len(),
            &failures[..failures.len().min(20)]
        );
    }

    #[test]
    fn float_str_layout_and_quirks() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (-f64::NAN, "nan"),
            (25600000.0, "25600000.0"),
            (0.1 + 0.2, "0.3"),
            (99999999999.0, "99999999999.0"),
            (123456789012.0, "1.23456789012e+11"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e100, "1e+100"),
            (5e-324, "4.94065645841e-324"),
            (f64::MAX, "1.79769313486e+308"),
            // Exact ties of integers in [1e12, 1e15) that round down keep
            // their trailing zeros; rounding up or a non-tie strips them.
            (2837463876205.0, "2.83746387620e+12"),
            (2000000000005.0, "2.00000000000e+12"),
            (2000000000004.0, "2e+12"),
            (2000000000015.0, "2.00000000002e+12"),
            (20000000000050.0, "2.00000000000e+13"),
            (200000000000500.0, "2.00000000000e+14"),
            (200000000000050.0, "2e+14"),
            (2000000000000500.0, "2e+15"),
            // A non-integral tie goes through the exact path, which strips.
            (1234567890.125, "1234567890.12"),
            (1000000000.125, "1000000000.12"),
            (1000000000.0625, "1000000000.06"),
            (999999999999.5, "1e+12"),
        ];
        for &(f, want) in cases {
            assert_eq!(py2_float_str(f), want, "str({f:?})");
        }
    }

    #[test]
    fn str_of_other_values() {
        assert_eq!(py2_str(&PyValue::None), "None");
        assert_eq!(py2_str(&PyValue::Bool(true)), "True");
        assert_eq!(py2_str(&PyValue::Bool(false)), "False");
        assert_eq!(py2_str(&PyValue::Int(-42)), "-42");
        assert_eq!(py2_str(&PyValue::Int(1 << 70)), "1180591620717411303424");
        assert_eq!(py2_str(&PyValue::Str("a'b".into())), "a'b");
        let buckets = [6, 5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let list = PyValue::List(buckets.iter().map(|&b| PyValue::Int(b)).collect());
        assert_eq!(
            py2_str(&list),
            "[6, 5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"
        );
        assert_eq!(py2_str(&PyValue::List(vec![])), "[]");
        // Checked against Python 2.7.18: elements use repr().
        let mixed = PyValue::List(vec![
            PyValue::Int(1),
            PyValue::Str("a".into()),
            PyValue::Str("it's".into()),
            PyValue::Str("q'\"\\\n\x01".into()),
            PyValue::Float(1.1),
            PyValue::Float(1e16),
            PyValue::Float(1e15),
            PyValue::Float(2837463876205.0),
            PyValue::None,
            PyValue::Bool(true),
            PyValue::Int(1 << 70),
            PyValue::List(vec![PyValue::Int(-1)]),
            PyValue::Float(-0.0),
            PyValue::Float(111_275_153_569_243.0 + 0.125),
        ]);
        assert_eq!(
            py2_str(&mixed),
            "[1, 'a', \"it's\", 'q\\'\"\\\\\\n\\x01', 1.1, 1e+16, 1000000000000000.0, \
             2837463876205.0, None, True, 1180591620717411303424L, [-1], -0.0, 111275153569243.12]"
        );
    }

    #[test]
    fn serialize_op_netstrings() {
        let fields = [
            PyValue::Str("ab".into()),
            PyValue::None,
            PyValue::Int(12),
            PyValue::Bool(false),
            PyValue::Float(2500.0),
            PyValue::Str(String::new()),
        ];
        assert_eq!(
            serialize_op(b'+', &fields),
            "+:2:ab,0:,2:12,5:False,6:2500.0,0:"
        );
        assert_eq!(serialize_op(b'#', &[]), "#:");
    }
}
