//! Key arguments written as Python rc 0.3.1 writes them (`#[rc::cache(python_args)]`).
//!
//! rc builds a decorated function's key from `unicode(arg)` of every
//! argument, joined with spaces, on Python 2. [`PythonArg`] writes a Rust
//! value as that text, so a Rust function with the same module, name and
//! argument values has the very key of its Python twin.

use std::borrow::Cow;
use std::fmt::Write;
use std::rc::Rc;
use std::sync::Arc;

/// A key argument of an `#[rc::cache(python_args)]` function: written as
/// Python 2's `unicode(value)` writes the Python value it stands for, which
/// is how rc 0.3.1 puts arguments in keys.
///
/// | Rust | Python | key text |
/// |---|---|---|
/// | `bool` | `bool` | `True`, `False` |
/// | integers (`i8`..`i128`, `u8`..`u128`, `isize`, `usize`) | `int`, `long` | `42`, `-7` |
/// | `f64`, `f32` | `float` | `str(x)`: 12 significant digits, `1.0`, `0.1`, `1e+16`, `1e-05`, `inf`, `nan` |
/// | `str`, `String`, `char`, `Cow<str>` | `unicode` (or UTF-8 `str`) | the text as is |
/// | `Option<T>` | `None` or the value | `None`, or `T`'s text |
/// | `&T`, `&mut T`, `Box<T>`, `Rc<T>`, `Arc<T>` | the value | `T`'s text |
///
/// These map exactly. An `f32` is written as the `f64` it converts to
/// (Python has no 32-bit float). Text is written as is, as rc does: unlike
/// plain `#[rc::cache]` keys, `("a b", "c")` and `("a", "b c")` then share a
/// key, exactly as they do in Python.
///
/// Other types (lists, tuples, dicts, your own types) have no exact
/// counterpart here: implement this trait to write what the Python side's
/// `__str__`/`__unicode__` gives. Rust arguments stand for Python's
/// positional arguments; a Python caller passing keyword arguments
/// (`name=value`, sorted) has keys no Rust function produces.
///
/// ```
/// use rc::PythonArg;
/// let mut key = String::new();
/// for arg in [&1.0f64 as &dyn PythonArg, &true, &None::<i64>, &1e16, &"café"] {
///     key.push(' ');
///     arg.write_python(&mut key);
/// }
/// assert_eq!(key, " 1.0 True None 1e+16 café");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no Python rc key form: `#[rc::cache(python_args)]` writes arguments as Python 2 does",
    label = "this argument is part of the cache key, written as Python would",
    note = "bool, integers, f64/f32, str/String/char, Option<T> and references or smart pointers to these map exactly; implement `rc::PythonArg` for other types, or leave the argument out of the key with `skip(<argument>)`"
)]
pub trait PythonArg {
    /// Appends the argument's key text to `out`.
    fn write_python(&self, out: &mut String);
}

impl PythonArg for bool {
    fn write_python(&self, out: &mut String) {
        out.push_str(if *self { "True" } else { "False" });
    }
}

macro_rules! python_int {
    ($($t:ty)*) => {$(
        impl PythonArg for $t {
            fn write_python(&self, out: &mut String) {
                // Python's `str` of an int or long is its decimal digits, as `Display`.
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
python_int!(i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize);

impl PythonArg for f64 {
    fn write_python(&self, out: &mut String) {
        write_py2_float(*self, out);
    }
}

impl PythonArg for f32 {
    fn write_python(&self, out: &mut String) {
        write_py2_float(f64::from(*self), out);
    }
}

impl PythonArg for str {
    fn write_python(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl PythonArg for String {
    fn write_python(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl PythonArg for char {
    fn write_python(&self, out: &mut String) {
        out.push(*self);
    }
}

impl PythonArg for Cow<'_, str> {
    fn write_python(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl<T: PythonArg> PythonArg for Option<T> {
    fn write_python(&self, out: &mut String) {
        match self {
            Some(v) => v.write_python(out),
            None => out.push_str("None"),
        }
    }
}

macro_rules! python_deref {
    ($($t:ty)*) => {$(
        impl<T: PythonArg + ?Sized> PythonArg for $t {
            fn write_python(&self, out: &mut String) {
                (**self).write_python(out);
            }
        }
    )*};
}
python_deref!(&T &mut T Box<T> Rc<T> Arc<T>);

/// Python 2.7's `str(float)`: the shortest-rounded 12 significant digits
/// (`repr` style: exponent when the decimal exponent is below -4 or 11 and
/// up), `.0` added to integral values, `inf`/`-inf`/`nan`.
fn write_py2_float(x: f64, out: &mut String) {
    if x.is_nan() {
        out.push_str("nan");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
        return;
    }
    // `{:.11e}` rounds the exact binary value to 12 significant digits, ties
    // to even, as Python's dtoa does: "d.ddddddddddde<exp>".
    let sci = format!("{:.11e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    if x.is_sign_negative() {
        out.push('-');
    }
    if x == 0.0 {
        out.push_str("0.0");
        return;
    }
    if !(-4..11).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if exp < 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() > int_len {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        } else {
            out.push_str(digits);
            out.extend(std::iter::repeat_n('0', int_len - digits.len()));
            out.push_str(".0");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(x: &dyn PythonArg) -> String {
        let mut s = String::new();
        x.write_python(&mut s);
        s
    }

    /// `str(x)` as printed by Python 2.7.18 itself.
    #[test]
    fn floats_as_python_2_prints_them() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1e+15"),
            (123456789012.0, "1.23456789012e+11"),
            (99999999999.0, "99999999999.0"),
            (1234567890123.0, "1.23456789012e+12"),
            (123456789012.5, "1.23456789012e+11"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1.5e-4, "0.00015"),
            (1.0 / 3.0, "0.333333333333"),
            (2.0 / 3.0, "0.666666666667"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (5e-324, "4.94065645841e-324"),
            (f64::MAX, "1.79769313486e+308"),
            (100.0, "100.0"),
            (1e11, "1e+11"),
            (1e12, "1e+12"),
            (0.30000000000000004, "0.3"),
            (2.5, "2.5"),
            (12345.678, "12345.678"),
            (-1.25e-10, "-1.25e-10"),
            (999999999999.5, "1e+12"),
            (9999999999995.0, "1e+13"),
            (0.000123456789012345, "0.000123456789012"),
        ];
        for &(x, want) in cases {
            assert_eq!(py(&x), want, "{x:e}");
        }
    }

    #[test]
    fn other_types() {
        assert_eq!(py(&true), "True");
        assert_eq!(py(&false), "False");
        assert_eq!(py(&None::<u8>), "None");
        assert_eq!(py(&Some(Some(3u8))), "3");
        assert_eq!(py(&-5i64), "-5");
        assert_eq!(py(&u128::MAX), "340282366920938463463374607431768211455");
        assert_eq!(py(&"a b%"), "a b%");
        assert_eq!(py(&String::from("café")), "café");
        assert_eq!(py(&'é'), "é");
        assert_eq!(py(&Box::new(1.5f32)), "1.5");
        assert_eq!(py(&Arc::new(0.1f32)), "0.10000000149");
    }
}
