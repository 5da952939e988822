//! Serializers: how values become bytes in Redis.
//!
//! - `JsonSerializer` (the default): readable, and shared with Python rc.
//! - `CborSerializer`: compact binary, and more types than JSON (here, a map
//!   with tuple keys). rc's answer to Python's pickle, without its risks.
//! - Your own: implement `rc::Serializer`.
//!
//! Run: `cargo run --example custom_serializer` (Redis at `REDIS_URL`,
//! default `redis://127.0.0.1:6379`).

use std::collections::BTreeMap;

use rc::{BoxError, Cache, CborSerializer, Decode, Serializer};

/// JSON behind a format tag, `json1:`. A value written by another format (or
/// an older version of this one) is then refused rather than misread: a
/// direct `get` reports a decode error, and a decorated function treats it as
/// a miss and computes (and stores) a fresh value.
struct TaggedJson;

const TAG: &[u8] = b"json1:";

impl Serializer for TaggedJson {
    fn name(&self) -> &'static str {
        "tagged-json"
    }

    /// Values arrive type-erased (`erased_serde`), which keeps `Cache` a
    /// single type whatever its serializer; serde_json takes them as they are.
    fn encode(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, BoxError> {
        let mut out = TAG.to_vec();
        serde_json::to_writer(&mut out, value)?;
        Ok(out)
    }

    /// Hands a deserializer over the bytes to `out`, which builds the value
    /// the caller asked for.
    fn decode(&self, bytes: &[u8], out: Decode<'_>) -> Result<(), BoxError> {
        let json = bytes.strip_prefix(TAG).ok_or("not tagged json1:")?;
        out.from(&mut serde_json::Deserializer::from_slice(json))
    }
}

fn main() -> Result<(), rc::Error> {
    examples::init_logs();
    let url = examples::redis_url();
    let builder = Cache::builder()
        .url(&url)
        .namespace("rc-example:serializer:");
    let json = builder.clone().build()?;
    let cbor = builder.clone().serializer(CborSerializer).build()?;
    let tagged = builder.serializer(TaggedJson).build()?;

    // A map keyed by (x, y): CBOR stores it, JSON cannot (its keys are strings).
    let mut board = BTreeMap::new();
    board.insert((0, 0), "rook".to_owned());
    board.insert((4, 0), "king".to_owned());
    cbor.set("board", &board, None)?;
    let back: Option<BTreeMap<(i32, i32), String>> = cbor.get("board")?;
    println!("cbor:   board -> {back:?}");
    assert_eq!(back.as_ref(), Some(&board));
    let refused = json.set("board-json", &board, None);
    println!(
        "json:   board -> {}",
        refused
            .as_ref()
            .map_or_else(|e| format!("error: {e}"), |_| "stored".into())
    );
    assert!(refused.is_err());

    // The tagged format round-trips like any other.
    let point = vec![1, 2, 3];
    json.set("point", &point, None)?;
    tagged.set("point-tagged", &point, None)?;
    println!(
        "tagged: point -> {:?}",
        tagged.get::<Vec<i32>>("point-tagged")?
    );

    // Plain JSON written by the default serializer has no tag: refused.
    let mismatch = tagged.get::<Vec<i32>>("point");
    println!(
        "tagged reading untagged bytes -> {}",
        mismatch
            .as_ref()
            .map_or_else(|e| format!("error: {e}"), |v| format!("{v:?}"))
    );
    assert!(mismatch.is_err());

    json.delete_many(["point", "point-tagged", "board"])?;
    println!("custom_serializer: ok");
    Ok(())
}
