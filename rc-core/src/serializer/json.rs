//! JSON as Python's `json` module writes it: `serde_json`, plus the bare
//! `NaN`, `Infinity` and `-Infinity` tokens Python writes for non-finite
//! floats (and reads back), which `serde_json` turns into `null` / rejects.
//!
//! * Encoding runs `serde_json`'s own serializer behind [`Intercept`], a
//!   forwarding wrapper that turns a non-finite float into a `null` the
//!   [`PyFormatter`] writes as the Python token instead. Everything else is
//!   `serde_json`'s output byte for byte. The formatter also refuses nesting
//!   deeper than the decoder reads (`serde_json`'s recursion limit).
//! * Decoding is `serde_json::from_slice`. Only when that fails with a syntax
//!   error and the bytes hold a `NaN`/`Infinity` token does [`from_slice`]
//!   parse them again with the small tree parser below, which accepts those
//!   tokens and otherwise reads JSON as `serde_json` does.

use std::cell::Cell;
use std::fmt;
use std::io;

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};
use serde::{Deserializer as _, forward_to_deserialize_any};

use crate::error::BoxError;

/// The deepest nesting of arrays and objects `serde_json` decodes (its
/// recursion limit of 128 fails on the 128th level).
pub(crate) const MAX_DEPTH: usize = 127;

// ---------------------------------------------------------------- encoding

/// Encodes `value` as compact JSON, non-finite floats as Python writes them.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let pending = Cell::new(None);
    let mut out = Vec::with_capacity(128);
    let formatter = PyFormatter {
        pending: &pending,
        depth: 0,
    };
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(Intercept {
        inner: &mut ser,
        pending: &pending,
    })?;
    Ok(out)
}

/// The token [`Intercept`] wants written in place of the next `null`.
type Pending = Cell<Option<&'static [u8]>>;

/// `serde_json`'s compact format, but a `null` [`Intercept`] asked for is
/// written as `NaN`/`Infinity`/`-Infinity`, and nesting is bounded.
struct PyFormatter<'p> {
    pending: &'p Pending,
    depth: usize,
}

impl PyFormatter<'_> {
    #[inline]
    fn enter(&mut self) -> io::Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(too_deep());
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for PyFormatter<'_> {
    #[inline]
    fn write_null<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(self.pending.take().unwrap_or(b"null"))
    }
    #[inline]
    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.enter()?;
        writer.write_all(b"[")
    }
    #[inline]
    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.depth -= 1;
        writer.write_all(b"]")
    }
    #[inline]
    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.enter()?;
        writer.write_all(b"{")
    }
    #[inline]
    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.depth -= 1;
        writer.write_all(b"}")
    }
}

#[cold]
fn too_deep() -> io::Error {
    io::Error::other(format!(
        "nesting deeper than {MAX_DEPTH} levels (rc's JSON decoder refuses it)"
    ))
}

fn non_finite_token(v: f64) -> &'static [u8] {
    if v.is_nan() {
        b"NaN"
    } else if v > 0.0 {
        b"Infinity"
    } else {
        b"-Infinity"
    }
}

/// Forwards to `inner`, except that a non-finite float becomes a unit (`null`)
/// preceded by the token [`PyFormatter`] writes instead. Wraps every nested
/// value the same way. (A non-finite map key thus fails: keys must be strings.)
struct Intercept<'p, S> {
    inner: S,
    pending: &'p Pending,
}

/// A nested value, serialized through [`Intercept`].
struct Wrap<'p, 'v, T: ?Sized> {
    value: &'v T,
    pending: &'p Pending,
}

impl<T: Serialize + ?Sized> Serialize for Wrap<'_, '_, T> {
    #[inline]
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Intercept {
            inner: serializer,
            pending: self.pending,
        })
    }
}

/// A compound of `inner` whose elements go through [`Intercept`].
struct Compound<'p, C> {
    inner: C,
    pending: &'p Pending,
}

impl<'p, C> Compound<'p, C> {
    #[inline]
    fn wrap<'v, T: ?Sized>(&self, value: &'v T) -> Wrap<'p, 'v, T> {
        Wrap {
            value,
            pending: self.pending,
        }
    }
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[inline]
        fn $method(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> {
            self.inner.$method($($arg),*)
        }
    )*};
}

macro_rules! compound {
    ($($method:ident($($arg:ident: $ty:ty),*) -> $assoc:ident;)*) => {$(
        #[inline]
        fn $method(self, $($arg: $ty),*) -> Result<Self::$assoc, S::Error> {
            Ok(Compound { inner: self.inner.$method($($arg),*)?, pending: self.pending })
        }
    )*};
}

impl<'p, S: ser::Serializer> ser::Serializer for Intercept<'p, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<'p, S::SerializeSeq>;
    type SerializeTuple = Compound<'p, S::SerializeTuple>;
    type SerializeTupleStruct = Compound<'p, S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<'p, S::SerializeTupleVariant>;
    type SerializeMap = Compound<'p, S::SerializeMap>;
    type SerializeStruct = Compound<'p, S::SerializeStruct>;
    type SerializeStructVariant = Compound<'p, S::SerializeStructVariant>;

    #[inline]
    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            self.inner.serialize_f64(v)
        } else {
            self.pending.set(Some(non_finite_token(v)));
            let r = self.inner.serialize_unit();
            self.pending.set(None);
            r
        }
    }

    #[inline]
    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            self.inner.serialize_f32(v)
        } else {
            self.serialize_f64(v.into())
        }
    }

    forward! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    compound! {
        serialize_seq(len: Option<usize>) -> SerializeSeq;
        serialize_tuple(len: usize) -> SerializeTuple;
        serialize_tuple_struct(name: &'static str, len: usize) -> SerializeTupleStruct;
        serialize_tuple_variant(name: &'static str, index: u32, variant: &'static str, len: usize) -> SerializeTupleVariant;
        serialize_map(len: Option<usize>) -> SerializeMap;
        serialize_struct(name: &'static str, len: usize) -> SerializeStruct;
        serialize_struct_variant(name: &'static str, index: u32, variant: &'static str, len: usize) -> SerializeStructVariant;
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        let pending = self.pending;
        self.inner.serialize_some(&Wrap { value, pending })
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let pending = self.pending;
        self.inner
            .serialize_newtype_struct(name, &Wrap { value, pending })
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let pending = self.pending;
        self.inner
            .serialize_newtype_variant(name, index, variant, &Wrap { value, pending })
    }

    #[inline]
    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.collect_str(value)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! element {
    ($($trait:ident: $method:ident;)*) => {$(
        impl<C: ser::$trait> ser::$trait for Compound<'_, C> {
            type Ok = C::Ok;
            type Error = C::Error;
            #[inline]
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
                let value = self.wrap(value);
                self.inner.$method(&value)
            }
            #[inline]
            fn end(self) -> Result<C::Ok, C::Error> {
                self.inner.end()
            }
        }
    )*};
}

element! {
    SerializeSeq: serialize_element;
    SerializeTuple: serialize_element;
    SerializeTupleStruct: serialize_field;
    SerializeTupleVariant: serialize_field;
}

macro_rules! field {
    ($($trait:ident;)*) => {$(
        impl<C: ser::$trait> ser::$trait for Compound<'_, C> {
            type Ok = C::Ok;
            type Error = C::Error;
            #[inline]
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), C::Error> {
                let value = self.wrap(value);
                self.inner.serialize_field(key, &value)
            }
            #[inline]
            fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
                self.inner.skip_field(key)
            }
            #[inline]
            fn end(self) -> Result<C::Ok, C::Error> {
                self.inner.end()
            }
        }
    )*};
}

field! {
    SerializeStruct;
    SerializeStructVariant;
}

impl<C: ser::SerializeMap> ser::SerializeMap for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        let key = self.wrap(key);
        self.inner.serialize_key(&key)
    }
    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_value(&value)
    }
    #[inline]
    fn serialize_entry<K, V>(&mut self, key: &K, value: &V) -> Result<(), C::Error>
    where
        K: Serialize + ?Sized,
        V: Serialize + ?Sized,
    {
        let (key, value) = (self.wrap(key), self.wrap(value));
        self.inner.serialize_entry(&key, &value)
    }
    #[inline]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

// ---------------------------------------------------------------- decoding

/// Decodes JSON as `serde_json` does, and Python's non-finite float tokens.
#[inline]
pub(crate) fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BoxError> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(e) => retry_python(bytes, e),
    }
}

/// What [`from_slice`] does when serde_json fails: out of line, so the hot
/// path of a 1000-key `get_many` stays small.
#[cold]
fn retry_python<T: DeserializeOwned>(bytes: &[u8], e: serde_json::Error) -> Result<T, BoxError> {
    if e.is_syntax() && has_python_token(bytes) {
        match parse(bytes) {
            // The tree's error (say "NaN, expected i32") is the one that tells.
            Ok(tree) => T::deserialize(tree).map_err(Into::into),
            // Not Python's JSON either: serde_json's error has the position.
            Err(_) => Err(explain(e.into())),
        }
    } else {
        Err(explain(e.into()))
    }
}

/// Adds what serde_json's "unexpected end of hex escape" means when it
/// meets a lone surrogate (Python writes `u"\ud800"` as is).
pub(crate) fn explain(e: BoxError) -> BoxError {
    let msg = e.to_string();
    if msg.contains("hex escape") {
        format!(
            "{msg} (a lone UTF-16 surrogate such as \"\\ud800\" is not text a Rust String can hold)"
        )
        .into()
    } else {
        e
    }
}

/// True when `bytes` may hold a bare `NaN` or `Infinity` (strings included:
/// a cheap filter before the slower parse).
pub(crate) fn has_python_token(bytes: &[u8]) -> bool {
    bytes
        .windows(3)
        .enumerate()
        .any(|(i, w)| w == b"NaN" || (w == b"Inf" && bytes[i..].starts_with(b"Infinity")))
}

/// A parsed JSON document that may hold non-finite floats. Only for the
/// fallback: owned, and its depth is bounded like `serde_json`'s.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tree {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    U128(u128),
    I128(i128),
    F64(f64),
    Str(String),
    Array(Vec<Tree>),
    Object(Vec<(String, Tree)>),
}

/// A fallback parse error (the serde error type: `custom` and `Display`).
type DeError = de::value::Error;

/// Parses one JSON document (with Python's `NaN`, `Infinity`, `-Infinity`).
pub(crate) fn parse(bytes: &[u8]) -> Result<Tree, DeError> {
    let text = std::str::from_utf8(bytes).map_err(de::Error::custom)?;
    let mut p = Parser { s: text, pos: 0 };
    let tree = p.value(0)?;
    p.skip_ws();
    if p.pos != text.len() {
        return Err(p.err("trailing characters"));
    }
    Ok(tree)
}

struct Parser<'s> {
    s: &'s str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> DeError {
        de::Error::custom(format_args!("{what} at byte {}", self.pos))
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        let found = self.s[self.pos..].starts_with(lit);
        if found {
            self.pos += lit.len();
        }
        found
    }

    fn value(&mut self, depth: usize) -> Result<Tree, DeError> {
        self.skip_ws();
        let tree = match self.peek() {
            Some(b'"') => Tree::Str(self.string()?),
            Some(b'[' | b'{') if depth >= MAX_DEPTH => {
                return Err(self.err("recursion limit exceeded"));
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                if !self.close(b']') {
                    loop {
                        items.push(self.value(depth + 1)?);
                        if self.close(b']') {
                            break;
                        }
                        self.expect(b',')?;
                    }
                }
                Tree::Array(items)
            }
            Some(b'{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                if !self.close(b'}') {
                    loop {
                        self.skip_ws();
                        if self.peek() != Some(b'"') {
                            return Err(self.err("key must be a string"));
                        }
                        let key = self.string()?;
                        self.expect(b':')?;
                        entries.push((key, self.value(depth + 1)?));
                        if self.close(b'}') {
                            break;
                        }
                        self.expect(b',')?;
                    }
                }
                Tree::Object(entries)
            }
            _ if self.eat("null") => Tree::Null,
            _ if self.eat("true") => Tree::Bool(true),
            _ if self.eat("false") => Tree::Bool(false),
            _ if self.eat("NaN") => Tree::F64(f64::NAN),
            _ if self.eat("Infinity") => Tree::F64(f64::INFINITY),
            _ if self.eat("-Infinity") => Tree::F64(f64::NEG_INFINITY),
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return Err(self.err("expected value")),
        };
        Ok(tree)
    }

    /// Skips whitespace; consumes `close` if it is next.
    fn close(&mut self, close: u8) -> bool {
        self.skip_ws();
        let found = self.peek() == Some(close);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, c: u8) -> Result<(), DeError> {
        if self.close(c) {
            Ok(())
        } else {
            Err(self.err(&format!("expected `{}`", c as char)))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Tree, DeError> {
        let start = self.pos;
        self.eat("-");
        let int_start = self.pos;
        let int_len = self.digits();
        if int_len == 0 || (int_len > 1 && self.s.as_bytes()[int_start] == b'0') {
            return Err(self.err("invalid number"));
        }
        let mut float = false;
        if self.eat(".") {
            float = true;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            float = true;
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        let text = &self.s[start..self.pos];
        if text == "-0" {
            return Ok(Tree::F64(-0.0)); // as serde_json reads it
        }
        if !float {
            // Like serde_json: the smallest integer that holds it, then 128
            // bits (read by i128/u128 targets), then a float.
            if let Ok(n) = text.parse::<u64>() {
                return Ok(Tree::U64(n));
            } else if let Ok(n) = text.parse::<i64>() {
                return Ok(Tree::I64(n));
            } else if let Ok(n) = text.parse::<u128>() {
                return Ok(Tree::U128(n));
            } else if let Ok(n) = text.parse::<i128>() {
                return Ok(Tree::I128(n));
            }
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Tree::F64(f)),
            _ => Err(self.err("number out of range")),
        }
    }

    fn hex4(&mut self) -> Result<u16, DeError> {
        let hex = self.s.get(self.pos..self.pos + 4);
        match hex.and_then(|h| u16::from_str_radix(h, 16).ok()) {
            Some(n) if hex.is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())) => {
                self.pos += 4;
                Ok(n)
            }
            _ => Err(self.err("invalid escape")),
        }
    }

    fn string(&mut self) -> Result<String, DeError> {
        self.pos += 1; // the opening quote
        let mut out = String::new();
        loop {
            let rest = &self.s[self.pos..];
            let run = rest
                .bytes()
                .position(|b| b == b'"' || b == b'\\' || b < 0x20)
                .ok_or_else(|| self.err("EOF while parsing a string"))?;
            out.push_str(&rest[..run]);
            self.pos += run;
            match self.s.as_bytes()[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.pos += 1;
                    let c = self.peek().ok_or_else(|| self.err("EOF in escape"))?;
                    self.pos += 1;
                    out.push(match c {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(self.err("invalid escape")),
                    });
                }
                _ => return Err(self.err("control character in string")),
            }
        }
    }

    /// The character of a `\u` escape (the `\u` consumed), surrogate pairs joined.
    fn unicode_escape(&mut self) -> Result<char, DeError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.eat("\\u") {
                    return Err(self.err("lone leading surrogate in hex escape"));
                }
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.err("lone leading surrogate in hex escape"));
                }
                0x10000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(second) - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.err("lone trailing surrogate in hex escape")),
            n => u32::from(n),
        };
        char::from_u32(code).ok_or_else(|| self.err("invalid unicode code point"))
    }
}

impl<'de> de::Deserializer<'de> for Tree {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Tree::Null => visitor.visit_unit(),
            Tree::Bool(b) => visitor.visit_bool(b),
            Tree::U64(n) => visitor.visit_u64(n),
            Tree::I64(n) => visitor.visit_i64(n),
            // Beyond 64 bits: a float, as serde_json gives (i128/u128 targets
            // read them exactly, below).
            Tree::U128(n) => visitor.visit_f64(n as f64),
            Tree::I128(n) => visitor.visit_f64(n as f64),
            Tree::F64(f) => visitor.visit_f64(f),
            Tree::Str(s) => visitor.visit_string(s),
            Tree::Array(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter());
                let v = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(v)
            }
            Tree::Object(entries) => {
                let mut map = MapDeserializer::new(entries.into_iter().map(|(k, v)| (Key(k), v)));
                let v = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(v)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Tree::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self {
            Tree::Str(variant) => visitor.visit_enum(Enum {
                variant,
                value: None,
            }),
            Tree::Object(mut entries) if entries.len() == 1 => {
                let (variant, value) = entries.pop().expect("one entry");
                visitor.visit_enum(Enum {
                    variant,
                    value: Some(value),
                })
            }
            other => Err(de::Error::invalid_type(other.unexpected(), &"enum")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Tree::U128(n) => visitor.visit_u128(n),
            Tree::I128(n) => visitor.visit_i128(n),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_i128(visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

impl Tree {
    fn unexpected(&self) -> de::Unexpected<'_> {
        match self {
            Tree::Null => de::Unexpected::Unit,
            Tree::Bool(b) => de::Unexpected::Bool(*b),
            Tree::U64(n) => de::Unexpected::Unsigned(*n),
            Tree::I64(n) => de::Unexpected::Signed(*n),
            Tree::U128(_) | Tree::I128(_) => de::Unexpected::Other("128-bit integer"),
            Tree::F64(f) => de::Unexpected::Float(*f),
            Tree::Str(s) => de::Unexpected::Str(s),
            Tree::Array(_) => de::Unexpected::Seq,
            Tree::Object(_) => de::Unexpected::Map,
        }
    }
}

impl<'de> IntoDeserializer<'de, DeError> for Tree {
    type Deserializer = Tree;
    fn into_deserializer(self) -> Tree {
        self
    }
}

/// An object key: a string, read as a number or bool when the target asks
/// for one (`{"1": ..}` into a `HashMap<u32, _>`), as `serde_json` does.
struct Key(String);

impl<'de> IntoDeserializer<'de, DeError> for Key {
    type Deserializer = Key;
    fn into_deserializer(self) -> Key {
        self
    }
}

macro_rules! parsed_key {
    ($($method:ident => $visit:ident: $ty:ty,)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self.0.parse::<$ty>() {
                Ok(v) => visitor.$visit(v),
                Err(_) => Err(de::Error::invalid_type(de::Unexpected::Str(&self.0), &visitor)),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Key {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_string(self.0)
    }

    parsed_key! {
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_enum(Enum {
            variant: self.0,
            value: None,
        })
    }

    forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct
        map struct identifier ignored_any
    }
}

/// An enum: `"Variant"`, or `{"Variant": value}`.
struct Enum {
    variant: String,
    value: Option<Tree>,
}

impl<'de> de::EnumAccess<'de> for Enum {
    type Error = DeError;
    type Variant = Variant;

    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Variant), DeError> {
        let variant = seed.deserialize(self.variant.into_deserializer())?;
        Ok((variant, Variant(self.value)))
    }
}

/// The value of an enum's variant: none for `"Variant"`.
struct Variant(Option<Tree>);

impl<'de> de::VariantAccess<'de> for Variant {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.0 {
            None | Some(Tree::Null) => Ok(()),
            Some(other) => Err(de::Error::invalid_type(other.unexpected(), &"unit variant")),
        }
    }

    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, DeError> {
        match self.0 {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::invalid_type(
                de::Unexpected::UnitVariant,
                &"newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Some(value) => value.deserialize_seq(visitor),
            None => Err(de::Error::invalid_type(
                de::Unexpected::UnitVariant,
                &"tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            Some(value) => value.deserialize_map(visitor),
            None => Err(de::Error::invalid_type(
                de::Unexpected::UnitVariant,
                &"struct variant",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use std::collections::{BTreeMap, HashMap};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Unit,
        New(f64),
        Tuple(f64, f32),
        Struct { x: f64, y: Option<f64> },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Nested {
        v: Vec<f64>,
        o: Option<f64>,
        m: BTreeMap<String, f64>,
        k: BTreeMap<u32, f32>,
        s: Vec<Shape>,
        t: (f64, String),
    }

    fn text<T: Serialize + ?Sized>(v: &T) -> String {
        String::from_utf8(to_vec(v).unwrap()).unwrap()
    }

    /// Compares floats bit for bit, any NaN equal to any NaN.
    fn same(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
    }

    #[test]
    fn non_finite_floats_are_pythons_tokens() {
        assert_eq!(
            text(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1.5]),
            "[NaN,Infinity,-Infinity,-0.0,1.5]"
        );
        assert_eq!(text(&[f32::NAN, f32::NEG_INFINITY]), "[NaN,-Infinity]");
        assert_eq!(text(&Some(f64::NAN)), "NaN");
        assert_eq!(text(&None::<f64>), "null");
        assert_eq!(text(&(f64::INFINITY, ())), "[Infinity,null]");
        assert_eq!(
            text(&BTreeMap::from([("a", f64::NAN), ("b", f64::INFINITY)])),
            r#"{"a":NaN,"b":Infinity}"#
        );
        let nested = Nested {
            v: vec![f64::NAN, 2.0],
            o: Some(f64::NEG_INFINITY),
            m: BTreeMap::from([("x".into(), f64::INFINITY)]),
            k: BTreeMap::from([(7, f32::NAN)]),
            s: vec![
                Shape::Unit,
                Shape::New(f64::NAN),
                Shape::Tuple(f64::INFINITY, f32::NEG_INFINITY),
                Shape::Struct {
                    x: f64::NAN,
                    y: Some(f64::NAN),
                },
            ],
            t: (f64::NAN, "NaN".into()),
        };
        let json = text(&nested);
        assert_eq!(
            json,
            r#"{"v":[NaN,2.0],"o":-Infinity,"m":{"x":Infinity},"k":{"7":NaN},"s":["Unit",{"New":NaN},{"Tuple":[Infinity,-Infinity]},{"Struct":{"x":NaN,"y":NaN}}],"t":[NaN,"NaN"]}"#
        );
        let back: Nested = from_slice(json.as_bytes()).unwrap();
        assert!(back.v[0].is_nan() && back.v[1] == 2.0);
        assert_eq!(back.o, Some(f64::NEG_INFINITY));
        assert_eq!(back.m["x"], f64::INFINITY);
        assert!(back.k[&7].is_nan());
        assert_eq!(back.s[0], Shape::Unit);
        assert!(matches!(back.s[1], Shape::New(x) if x.is_nan()));
        assert_eq!(back.s[2], Shape::Tuple(f64::INFINITY, f32::NEG_INFINITY));
        assert!(matches!(back.s[3], Shape::Struct { x, y: Some(y) } if x.is_nan() && y.is_nan()));
        assert!(back.t.0.is_nan() && back.t.1 == "NaN");
    }

    #[test]
    fn finite_values_encode_as_serde_json_does() {
        let values = serde_json::json!({
            "s": "é \" \\ \n \u{1}", "i": -5, "u": u64::MAX, "f": 0.1, "z": -0.0,
            "a": [null, true, false, [], {}], "big": 1e308, "tiny": 5e-324,
        });
        assert_eq!(
            to_vec(&values).unwrap(),
            serde_json::to_vec(&values).unwrap()
        );
        let shapes = vec![
            Shape::Unit,
            Shape::New(1.0),
            Shape::Struct { x: 2.0, y: None },
        ];
        assert_eq!(
            to_vec(&shapes).unwrap(),
            serde_json::to_vec(&shapes).unwrap()
        );
        assert_eq!(to_vec(&(1u128 << 70)).unwrap(), b"1180591620717411303424");
        assert_eq!(to_vec(&b"ab"[..]).unwrap(), b"[97,98]");
    }

    #[test]
    fn unrepresentable_values_fail_to_encode() {
        let tuple_keys = HashMap::from([((1, 2), 3)]);
        assert!(
            to_vec(&tuple_keys)
                .unwrap_err()
                .to_string()
                .contains("key must be")
        );
        let nan_key = HashMap::from([(ordered(f64::NAN), 1)]);
        assert!(to_vec(&nan_key).is_err());
        assert_eq!(text(&HashMap::from([(ordered(1.5), 1)])), r#"{"1.5":1}"#);
        // Numbers and bools as keys are strings, as Python writes them.
        assert_eq!(text(&BTreeMap::from([(1, 2)])), r#"{"1":2}"#);
    }

    /// A float map key (f64 is not `Ord`/`Hash`).
    #[derive(PartialEq, Eq, Hash)]
    struct FloatKey(u64);
    fn ordered(f: f64) -> FloatKey {
        FloatKey(f.to_bits())
    }
    impl Serialize for FloatKey {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_f64(f64::from_bits(self.0))
        }
    }

    fn nested(depth: usize, inner: &str) -> String {
        format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn depth_is_bounded_alike_both_ways() {
        for inner in ["1", "NaN"] {
            let ok = nested(MAX_DEPTH, inner);
            let v: serde_json::Value = from_slice(ok.replace("NaN", "2").as_bytes()).unwrap();
            assert_eq!(to_vec(&v).unwrap(), ok.replace("NaN", "2").as_bytes());
            assert!(parse(ok.as_bytes()).is_ok());
            let deep = nested(MAX_DEPTH + 1, inner);
            assert!(serde_json::from_str::<serde_json::Value>(&deep).is_err());
            let err = parse(deep.as_bytes()).unwrap_err().to_string();
            assert!(err.contains("recursion limit"), "{err}");
        }
        let v: serde_json::Value = serde_json::from_str(&nested(MAX_DEPTH, "1")).unwrap();
        let too_deep = serde_json::Value::Array(vec![v]);
        let err = to_vec(&too_deep).unwrap_err().to_string();
        assert!(err.contains("nesting deeper than 127"), "{err}");
    }

    /// Exactly what `json.dumps` of Python 2.7.18 writes.
    const PYTHON: &str = r#"{"a": NaN, "c": 1e+308, "b": [Infinity, -Infinity], "e": 1180591620717411303424, "d": "\u00e9", "g": -0.0, "f": 0.1, "h": 5e-324, "j": {"1": 2}}"#;

    #[derive(Debug, Deserialize)]
    struct Py {
        a: f64,
        b: Vec<f64>,
        c: f64,
        d: String,
        e: u128,
        f: f64,
        g: f64,
        h: f64,
        j: HashMap<u8, i8>,
    }

    #[test]
    fn reads_pythons_output() {
        let py: Py = from_slice(PYTHON.as_bytes()).unwrap();
        assert!(py.a.is_nan());
        assert_eq!(py.b, [f64::INFINITY, f64::NEG_INFINITY]);
        assert_eq!((py.c, py.f, py.h), (1e308, 0.1, 5e-324));
        assert!(same(py.g, -0.0));
        assert_eq!(py.d, "é");
        assert_eq!(py.e, 1 << 70);
        assert_eq!(py.j, HashMap::from([(1, 2)]));
        // The same through the erased path custom serializers take.
        let any: HashMap<String, Option<Vec<f64>>> =
            from_slice(br#"{"x": [NaN, -Infinity, 1e+16], "y": null}"#).unwrap();
        assert!(any["x"].as_ref().unwrap()[0].is_nan());
        assert_eq!(any["x"].as_ref().unwrap()[1..], [f64::NEG_INFINITY, 1e16]);
        assert_eq!(any["y"], None);
    }

    /// JSON without Python's tokens reads the same through the fallback
    /// parser as through serde_json, and the same documents fail.
    #[test]
    fn fallback_reads_json_as_serde_json_does() {
        let good = [
            "null",
            "true",
            " false ",
            "0",
            "-0",
            "-1",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775809",
            "1.5e3",
            "1E-2",
            "-0.0",
            "2.2250738585072014e-308",
            "4.9406564584124654e-324",
            "1.7976931348623157e308",
            r#""""#,
            r#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude80é""#,
            "[]",
            "{}",
            r#"[1, [2, {"a": [3, {}]}], "x"]"#,
            r#"{"a": 1, "a": 2}"#,
            "\t[\n1 ,\r2 ]",
            "123456789012345678901234567890",
        ];
        for doc in good {
            let want: serde_json::Value = serde_json::from_str(doc).unwrap();
            let got = serde_json::Value::deserialize(parse(doc.as_bytes()).unwrap()).unwrap();
            assert_eq!(got, want, "{doc}");
            if let (Some(a), Some(b)) = (got.as_f64(), want.as_f64()) {
                assert!(same(a, b), "{doc}");
            }
        }
        let bad = [
            "",
            "nul",
            "01",
            "1.",
            ".5",
            "1e",
            "-",
            "+1",
            "[1,]",
            "[1 2]",
            "{\"a\" 1}",
            "{1: 2}",
            "{\"a\":1,}",
            r#""\ud800""#,
            r#""\udc00x""#,
            r#""\ud800\u0041""#,
            r#""\x""#,
            "\"a\u{1}\"",
            "\"abc",
            "[1] 2",
            "1e400",
            "nan",
            "inf",
            "-NaN",
            "[NaN,]",
            r#""\u12""#,
        ];
        for doc in bad {
            assert!(
                serde_json::from_str::<serde_json::Value>(doc).is_err(),
                "{doc}"
            );
            let tree = parse(doc.as_bytes());
            assert!(
                tree.is_err() || matches!(doc, "nan" | "inf"),
                "{doc}: {tree:?}"
            );
        }
        assert!(parse(b"\"\xff\"").is_err());
    }

    #[test]
    fn fallback_reads_typed_values() {
        let v: (i128, u128, i64, Option<f64>, char) =
            from_slice(br#"[-1180591620717411303424, 1180591620717411303424, -3, NaN, "x"]"#)
                .unwrap();
        assert_eq!((v.0, v.1, v.2, v.4), (-(1 << 70), 1 << 70, -3, 'x'));
        assert!(v.3.unwrap().is_nan());
        // Beyond 64 bits into a float, as serde_json reads it.
        let f: Vec<f64> = from_slice(b"[1180591620717411303424, Infinity]").unwrap();
        assert_eq!(f, [1180591620717411303424.0, f64::INFINITY]);
        let s: BTreeMap<bool, f64> = from_slice(br#"{"true": NaN}"#).unwrap();
        assert!(s[&true].is_nan());
        let unit: ((), Shape) = from_slice(br#"[null, {"Unit": null}]"#).unwrap();
        assert_eq!(unit.1, Shape::Unit);
        #[derive(Deserialize)]
        struct Wrapper(f64);
        assert!(from_slice::<Wrapper>(b"NaN").unwrap().0.is_nan());
    }

    #[test]
    fn fallback_errors_say_what_is_wrong() {
        // NaN where an integer is wanted: the fallback's type error.
        let err = from_slice::<Vec<i32>>(b"[1, NaN]").unwrap_err().to_string();
        assert!(err.contains("NaN") && err.contains("i32"), "{err}");
        let err = from_slice::<i64>(b"1180591620717411303424")
            .unwrap_err()
            .to_string();
        assert!(err.contains("i64") || err.contains("integer"), "{err}");
        // Not JSON with tokens either: serde_json's error, with its position.
        let err = from_slice::<Vec<f64>>(br#"[NaN, ]"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1 column 2"), "{err}");
        let err = from_slice::<String>(br#""NaN \ud800""#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("surrogate"), "{err}");
        let err = from_slice::<Vec<String>>(br#"["\ud800", NaN]"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("surrogate"), "{err}");
        assert!(!has_python_token(b"[1, null, \"Nab\", Infinit]"));
        assert!(has_python_token(b"[-Infinity]") && has_python_token(b"NaN"));
    }

    #[test]
    fn every_float_kind_round_trips() {
        let specials = [
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            f64::from_bits(0x000f_ffff_ffff_ffff),
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            0.1,
            1.0 / 3.0,
            1e16,
            1e-7,
            123_456_789.123_456_79,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
        ];
        let bytes = to_vec(&specials).unwrap();
        let back: Vec<f64> = from_slice(&bytes).unwrap();
        for (a, b) in specials.iter().zip(&back) {
            assert!(same(*a, *b), "{a:e} came back {b:e}");
        }
        // 2^16 bit patterns spread over the whole range, finite ones on the fast path.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..65_536 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            let back: f64 = from_slice(&to_vec(&f).unwrap()).unwrap();
            assert!(same(f, back), "{f:e} ({x:#x}) came back {back:e}");
        }
    }

    /// `JsonSerializer` used through the `Serializer` trait (as a custom
    /// serializer wrapping it would) reads and writes the same.
    #[test]
    fn the_trait_path_agrees() {
        use crate::serializer::{Decode, JsonSerializer, Serializer as _};
        fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BoxError> {
            let mut value = None;
            let mut sink = |de: &mut dyn erased_serde::Deserializer<'_>| {
                value = Some(erased_serde::deserialize::<T>(de)?);
                Ok(())
            };
            JsonSerializer.decode(bytes, Decode { sink: &mut sink })?;
            Ok(value.unwrap())
        }
        let v = vec![f64::NAN, f64::NEG_INFINITY, -0.0];
        let bytes = JsonSerializer.encode(&v).unwrap();
        assert_eq!(bytes, b"[NaN,-Infinity,-0.0]");
        let back: Vec<f64> = decode(&bytes).unwrap();
        assert!(back[0].is_nan() && back[1] == f64::NEG_INFINITY && same(back[2], -0.0));
        let py: Py = decode(PYTHON.as_bytes()).unwrap();
        assert_eq!(py.e, 1 << 70);
        assert!(decode::<Vec<i32>>(b"[1, NaN]").is_err());
        assert!(decode::<i32>(b"1 2").is_err());
        let err = decode::<String>(br#""\ud800""#).unwrap_err().to_string();
        assert!(err.contains("surrogate"), "{err}");
    }
}
