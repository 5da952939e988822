//! How values become bytes: the [`Serializer`] trait and the built-in formats.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{BoxError, Error, Result};

mod json;

/// Turns values into bytes and back.
///
/// rc ships [`JsonSerializer`] (the default, readable by Python rc) and
/// [`CborSerializer`] (compact binary). Implement this trait to use another
/// format; values reach you type-erased through
/// [`erased_serde`](https://docs.rs/erased-serde), so a `Cache` stays one
/// concrete type whatever its serializer.
///
/// ```
/// use rc::{BoxError, Decode, Serializer};
///
/// /// JSON, pretty-printed (easier to read in redis-cli).
/// struct PrettyJson;
///
/// impl Serializer for PrettyJson {
///     fn name(&self) -> &'static str { "pretty-json" }
///     fn encode(&self, value: &dyn rc::erased_serde::Serialize) -> Result<Vec<u8>, BoxError> {
///         Ok(serde_json::to_vec_pretty(value)?)
///     }
///     fn decode(&self, bytes: &[u8], out: Decode<'_>) -> Result<(), BoxError> {
///         out.from(&mut serde_json::Deserializer::from_slice(bytes))
///     }
/// }
///
/// let cache = rc::Cache::builder().serializer(PrettyJson).build_with_backend(
///     std::sync::Arc::new(rc::MemoryBackend::default()),
/// ).unwrap();
/// cache.set("k", &vec![1, 2], None).unwrap();
/// assert_eq!(cache.get::<Vec<i32>>("k").unwrap(), Some(vec![1, 2]));
/// ```
pub trait Serializer: Send + Sync + 'static {
    /// A short name used in error messages.
    fn name(&self) -> &'static str;

    /// Encodes `value`. `&dyn rc::erased_serde::Serialize` implements `serde::Serialize`.
    fn encode(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, BoxError>;

    /// Decodes `bytes` by handing a deserializer over them to `out`.
    fn decode(&self, bytes: &[u8], out: Decode<'_>) -> Result<(), BoxError>;
}

/// Where a [`Serializer`] sends the deserializer for the bytes it decodes.
pub struct Decode<'a> {
    sink: &'a mut dyn FnMut(
        &mut dyn erased_serde::Deserializer<'_>,
    ) -> Result<(), erased_serde::Error>,
}

impl Decode<'_> {
    /// Deserializes the requested value from `deserializer`.
    pub fn from<'de, D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), BoxError> {
        let mut erased = <dyn erased_serde::Deserializer>::erase(deserializer);
        (self.sink)(&mut erased).map_err(Into::into)
    }
}

/// JSON via `serde_json`: the default, and the format Python rc reads and writes.
///
/// Written as Python's `json` module writes it, so that each side reads the
/// other's values exactly:
///
/// * every `f64` comes back bit for bit (`-0.0` included); non-finite floats
///   are the bare tokens Python writes, `NaN`, `Infinity` and `-Infinity`
///   (not `null`), read back as NaN and the infinities, wherever they are
///   nested;
/// * integers beyond 64 bits (Python's `2**70`) decode into `i128`/`u128`;
///   non-ASCII strings, written by Python as `\uXXXX` escapes, decode;
/// * what JSON cannot hold is an [`Error::Encode`](crate::Error::Encode) from
///   `set`, never a silent change: a map whose keys are not strings, numbers
///   or bools, a non-finite map key, nesting deeper than 127 arrays/objects;
/// * what Rust cannot hold is an [`Error::Decode`](crate::Error::Decode)
///   naming the key: a lone surrogate (`"\ud800"`) in a string, an integer
///   too large for the requested type, nesting deeper than 127 levels (Python
///   writes up to ~1000; rc keeps `serde_json`'s recursion limit rather than
///   risk the stack on a shared value).
///
/// ```
/// let cache = rc::Cache::builder()
///     .build_with_backend(std::sync::Arc::new(rc::MemoryBackend::default()))?;
/// cache.set("floats", &vec![f64::NAN, f64::NEG_INFINITY, -0.0, 0.1], None)?;
/// let back: Vec<f64> = cache.get("floats")?.unwrap();
/// assert!(back[0].is_nan());
/// assert_eq!(back[1], f64::NEG_INFINITY);
/// assert!(back[2] == 0.0 && back[2].is_sign_negative());
/// assert_eq!(back[3], 0.1);
/// # Ok::<(), rc::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonSerializer;

/// CBOR via `cbor4ii`: compact, binary-safe, more types than JSON (map keys
/// of any type, byte strings). The safe stand-in for rc's pickle.
#[derive(Debug, Clone, Copy, Default)]
pub struct CborSerializer;

impl Serializer for JsonSerializer {
    fn name(&self) -> &'static str {
        "json"
    }
    fn encode(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, BoxError> {
        Ok(json::to_vec(value)?)
    }
    fn decode(&self, bytes: &[u8], out: Decode<'_>) -> Result<(), BoxError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let first = (out.sink)(&mut <dyn erased_serde::Deserializer>::erase(&mut de))
            .map_err(BoxError::from)
            .and_then(|()| Ok(de.end()?));
        match first {
            // Python's NaN/Infinity: parse again with the tokens (see `json`).
            Err(e) if json::has_python_token(bytes) => match json::parse(bytes) {
                Ok(tree) => out.from(tree),
                Err(_) => Err(json::explain(e)),
            },
            r => r.map_err(json::explain),
        }
    }
}

impl Serializer for CborSerializer {
    fn name(&self) -> &'static str {
        "cbor"
    }
    fn encode(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, BoxError> {
        Ok(cbor4ii::serde::to_vec(Vec::new(), &value)?)
    }
    fn decode(&self, bytes: &[u8], out: Decode<'_>) -> Result<(), BoxError> {
        let reader = cbor4ii::core::utils::SliceReader::new(bytes);
        out.from(&mut cbor4ii::serde::Deserializer::new(reader))
    }
}

/// The serializer a front holds; built-ins skip type erasure on the hot path.
#[derive(Clone)]
pub(crate) enum Codec {
    Json,
    Cbor,
    Custom(Arc<dyn Serializer>),
}

impl Codec {
    pub(crate) fn new<S: Serializer>(s: S) -> Self {
        let any: &dyn std::any::Any = &s;
        if any.is::<JsonSerializer>() {
            Codec::Json
        } else if any.is::<CborSerializer>() {
            Codec::Cbor
        } else {
            Codec::Custom(Arc::new(s))
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Codec::Json => "json",
            Codec::Cbor => "cbor",
            Codec::Custom(s) => s.name(),
        }
    }

    pub(crate) fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>> {
        let r: Result<Vec<u8>, BoxError> = match self {
            Codec::Json => json::to_vec(value).map_err(Into::into),
            Codec::Cbor => cbor4ii::serde::to_vec(Vec::new(), &value).map_err(Into::into),
            Codec::Custom(s) => s.encode(&value as &dyn erased_serde::Serialize),
        };
        r.map_err(|e| Error::Encode {
            serializer: self.name(),
            source: e.into(),
        })
    }

    #[inline]
    pub(crate) fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T> {
        // JSON inline, the others out of line: the whole match in one function
        // cost 48 instructions a key of a 1000-key `get_many` (callgrind).
        let r = match self {
            Codec::Json => json::from_slice(bytes),
            Codec::Cbor => cbor_decode(bytes),
            Codec::Custom(s) => custom_decode(&**s, bytes),
        };
        r.map_err(|e| self.decode_error(key, e))
    }

    #[cold]
    fn decode_error(&self, key: &str, e: BoxError) -> Error {
        Error::Decode {
            key: key.to_owned(),
            serializer: self.name(),
            source: e.into(),
        }
    }
}

#[inline(never)]
fn cbor_decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BoxError> {
    cbor4ii::serde::from_slice(bytes).map_err(Into::into)
}

#[inline(never)]
fn custom_decode<T: DeserializeOwned>(s: &dyn Serializer, bytes: &[u8]) -> Result<T, BoxError> {
    let mut value = None;
    let mut sink = |de: &mut dyn erased_serde::Deserializer<'_>| {
        value = Some(erased_serde::deserialize::<T>(de)?);
        Ok(())
    };
    s.decode(bytes, Decode { sink: &mut sink })
        .and_then(|()| value.ok_or_else(|| "serializer produced no value".into()))
}
