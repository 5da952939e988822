//! Keys of decorated functions: `[key_prefix ]<module_path> <fn_name> <arg>...`.
//!
//! rc 0.3.1 joins the arguments' string forms with spaces, so `("a b", "c")`
//! and `("a", "b c")` share a key. Here an argument's space is written `%20`
//! and its `%` is written `%25`, which keeps every key injective while the
//! keys of arguments free of both characters stay exactly rc's.

use std::fmt::{self, Display, Write};

use crate::python_arg::PythonArg;

/// Accumulates the key of one decorated call.
#[derive(Debug, Clone)]
pub struct KeyBuilder {
    key: String,
}

/// A value that can be part of a decorated function's key: anything `Display`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of an rc cache key: it does not implement `Display`",
    label = "this argument is part of the cache key, so it must implement `Display`",
    note = "leave it out of the key with `#[rc::cache(skip(<argument>))]`, or implement `Display` for it"
)]
pub trait KeyArg {
    /// Writes the argument's key form (its `Display` output, escaped).
    fn write_key(&self, out: &mut KeyBuilder);
}

impl<T: Display + ?Sized> KeyArg for T {
    fn write_key(&self, out: &mut KeyBuilder) {
        // Display into a String cannot fail unless the impl itself errors; a
        // failing impl leaves a partial (still deterministic) key.
        let _ = write!(Escaped(&mut out.key), "{self}");
    }
}

impl KeyBuilder {
    /// Starts a key with the optional prefix, the module path and the fn name.
    pub fn new(key_prefix: Option<&str>, module_path: &str, fn_name: &str) -> Self {
        let cap = key_prefix.map_or(0, |p| p.len() + 1) + module_path.len() + fn_name.len() + 24;
        let mut key = String::with_capacity(cap);
        if let Some(p) = key_prefix {
            key.push_str(p);
            key.push(' ');
        }
        key.push_str(module_path);
        key.push(' ');
        key.push_str(fn_name);
        KeyBuilder { key }
    }

    /// Appends one argument.
    pub fn arg<A: KeyArg + ?Sized>(&mut self, arg: &A) -> &mut Self {
        self.key.push(' ');
        arg.write_key(self);
        self
    }

    /// Appends one argument as Python rc writes it (`python_args`): as is,
    /// no escaping, so the key is byte for byte rc's.
    pub fn python_arg<A: PythonArg + ?Sized>(&mut self, arg: &A) -> &mut Self {
        self.key.push(' ');
        arg.write_python(&mut self.key);
        self
    }

    /// The finished key.
    pub fn finish(self) -> String {
        self.key
    }
}

/// Escapes `%` and space as it writes.
struct Escaped<'a>(&'a mut String);

impl Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find([' ', '%']) {
            self.0.push_str(&rest[..i]);
            self.0.push_str(if rest.as_bytes()[i] == b' ' {
                "%20"
            } else {
                "%25"
            });
            rest = &rest[i + 1..];
        }
        self.0.push_str(rest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(args: &[&str]) -> String {
        let mut k = KeyBuilder::new(None, "app::models", "load");
        for a in args {
            k.arg(a);
        }
        k.finish()
    }

    #[test]
    fn plain_args_keep_rcs_format() {
        assert_eq!(key(&["name", "10"]), "app::models load name 10");
        let mut k = KeyBuilder::new(Some("v2"), "m", "f");
        k.arg(&3).arg("x");
        assert_eq!(k.finish(), "v2 m f 3 x");
        assert_eq!(key(&[]), "app::models load");
    }

    #[test]
    fn spaces_do_not_collide() {
        assert_ne!(key(&["a b", "c"]), key(&["a", "b c"]));
        assert_eq!(key(&["a b"]), "app::models load a%20b");
        assert_ne!(key(&["a%20b"]), key(&["a b"]));
    }

    use proptest::prelude::*;

    /// Strings rich in the characters that matter: separators, escapes, unicode.
    fn arg() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[ a=%\\\\b%2025é😀]{0,6}").unwrap()
    }

    proptest! {
        #[test]
        fn distinct_argument_lists_never_share_a_key(
            a in proptest::collection::vec(arg(), 0..4),
            b in proptest::collection::vec(arg(), 0..4),
        ) {
            let (ka, kb) = (key(&a.iter().map(String::as_str).collect::<Vec<_>>()),
                            key(&b.iter().map(String::as_str).collect::<Vec<_>>()));
            prop_assert_eq!(a == b, ka == kb, "{:?} {:?} -> {:?} {:?}", a, b, ka, kb);
        }

        #[test]
        fn plain_arguments_give_rcs_key(a in proptest::collection::vec("[a-z0-9=\\\\é]{0,6}", 0..4)) {
            let args: Vec<&str> = a.iter().map(String::as_str).collect();
            let rc_key = ["app::models", "load"].iter().copied().chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
            prop_assert_eq!(key(&args), rc_key);
        }
    }
}
