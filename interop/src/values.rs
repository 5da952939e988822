//! What both sides write and read: a table of values written as Rust
//! literals here and as Python literals in `interop/rc_side.py` (same ids),
//! and seeded random JSON documents for volume.

use serde_json::{Map, Value, json};

/// One value of the table, with the Rust type it is written and read as.
#[derive(Debug, Clone)]
pub enum Val {
    /// Read back as a `serde_json::Value`.
    Json(Value),
    /// An `f64`, compared bit for bit (NaN to NaN).
    Float(f64),
    /// An integer beyond 64 bits.
    Big(i128),
}

/// The table; `VALUES` in `rc_side.py` holds the same values in the same order.
pub fn table() -> Vec<Val> {
    use Val::{Big, Float, Json};
    vec![
        Json(Value::Null),
        Json(json!(true)),
        Json(json!(false)),
        Json(json!(0)),
        Json(json!(-1)),
        Json(json!(1u64 << 31)),
        Json(json!((1u64 << 53) + 1)),
        Json(json!(i64::MAX)),
        Json(json!(i64::MIN)),
        Json(json!(u64::MAX)),
        Big(12345678901234567890123456789),
        Big(i128::MIN),
        Float(0.1),
        Float(1.0),
        Float(-0.0),
        Float(1e16),
        Float(5e-324),
        Float(f64::MAX),
        Float(1.0 / 3.0),
        Float(f64::NAN),
        Float(f64::INFINITY),
        Float(f64::NEG_INFINITY),
        Json(json!("")),
        Json(json!("café 中文 😀")),
        Json(json!("quotes \" ' \\ / \n\t\r\0\u{1f}")),
        Json(json!("\u{d7ff}\u{e000}\u{ffff}")),
        Json(json!([])),
        Json(json!([1, 2.5, "x", null, true, ["nested", []]])),
        Json(json!({})),
        Json(json!({"a": 1, "b": [1, 2, {"c": null}], "é😀": {"deep": {"deeper": [1e-7, -3]}}})),
        Json(
            json!({"post": {"id": 7, "title": "Hello, \"world\"", "tags": ["rust", "python"],
                             "score": 4.25, "draft": false}}),
        ),
        Float(123456789.125),
        Float(-2.5e-300),
    ]
}

/// A small seeded generator (xorshift64*), so runs are repeatable.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (not 0).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A string of 0..`max` characters from a pool rich in what keys and
    /// values trip on: spaces, quotes, escapes, `%`, CJK, emoji, controls.
    pub fn text(&mut self, max: u64) -> String {
        const POOL: &[&str] = &[
            "a",
            "b",
            "z",
            "Q",
            "0",
            "9",
            " ",
            "  ",
            "%",
            "%20",
            "\"",
            "'",
            "\\",
            "/",
            ":",
            "=",
            "é",
            "ß",
            "中",
            "文",
            "日本",
            "😀",
            "👍🏽",
            "\t",
            "\n",
            "\u{1}",
            "\u{7f}",
            "\u{a0}",
            "\u{ffff}",
            "\u{10ffff}",
            "post",
            "user_42",
        ];
        let n = self.below(max + 1);
        (0..n).map(|_| *self.pick(POOL)).collect()
    }

    /// A finite `f64` of any magnitude: random bits, whole numbers, powers of
    /// ten, short decimals, and 12/13-digit values that round at the edge.
    pub fn finite(&mut self) -> f64 {
        loop {
            let x = self.float();
            if x.is_finite() {
                return x;
            }
        }
    }

    /// Any `f64`, non-finite ones included.
    pub fn float(&mut self) -> f64 {
        let sign = if self.below(2) == 0 { 1.0 } else { -1.0 };
        match self.below(7) {
            0 => f64::from_bits(self.next()),
            1 => sign * self.below(1 << 40) as f64,
            2 => sign * 10f64.powi(self.below(40) as i32 - 20),
            3 => sign * self.below(1_000_000) as f64 / 1000.0,
            4 => sign * (self.below(10_000_000_000_000) as f64 + 0.5),
            5 => *self.pick(&[
                0.0,
                -0.0,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::MIN_POSITIVE,
                f64::EPSILON,
                5e-324,
                1e11,
                99999999999.0,
                123456789012.5,
                999999999999.5,
                0.0001,
                0.00001,
            ]),
            _ => sign * f64::from_bits(self.next() >> 2 | 0x3000_0000_0000_0000),
        }
    }

    /// A random JSON document of nesting up to `depth`.
    pub fn json(&mut self, depth: u32) -> Value {
        let top = if depth == 0 { 6 } else { 8 };
        match self.below(top) {
            0 => Value::Null,
            1 => Value::Bool(self.below(2) == 0),
            2 => json!(self.next() as i64 >> self.below(64)),
            3 => json!(self.next() >> self.below(64)),
            4 => json!(self.finite()),
            5 => Value::String(self.text(12)),
            6 => Value::Array((0..self.below(5)).map(|_| self.json(depth - 1)).collect()),
            _ => Value::Object(
                (0..self.below(5))
                    .map(|_| (self.text(8), self.json(depth - 1)))
                    .collect::<Map<_, _>>(),
            ),
        }
    }
}
