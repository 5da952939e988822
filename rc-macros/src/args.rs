//! Parsing of the attribute's own arguments: `#[rc::cache(key_prefix = "..",
//! expire = 3600, include_self = true, cache = EXPR, skip(a, b))]`.
//!
//! Every misuse is a [`syn::Error`] spanned on the offending token.

use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Ident, Lit, LitBool, Token};

/// The parsed arguments of one `#[rc::cache(...)]`.
#[derive(Default)]
pub(crate) struct CacheArgs {
    /// `key_prefix = "v2"` (or a `&str` constant): put first in every key.
    pub(crate) key_prefix: Option<Expr>,
    /// `expire = 3600` (or a `u64` constant): expiry in seconds.
    pub(crate) expire: Option<Expr>,
    /// `include_self = true`: put `self` (by `Display`) first in the key.
    pub(crate) include_self: Option<LitBool>,
    /// `cache = EXPR`: the cache to use instead of the installed default.
    pub(crate) cache: Option<Expr>,
    /// `skip(a, b)`: arguments left out of the key.
    pub(crate) skip: Vec<Ident>,
}

impl CacheArgs {
    /// Whether `include_self = true` was given.
    pub(crate) fn include_self(&self) -> bool {
        self.include_self.as_ref().is_some_and(|b| b.value)
    }
}

const KNOWN: &str = "expected one of `key_prefix = \"..\"`, `expire = <seconds>`, \
                     `include_self = <bool>`, `cache = <expr>`, `skip(<arg>, ..)`";

impl Parse for CacheArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = CacheArgs::default();
        // Spans of the names already seen, to reject duplicates.
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            // `Ident::parse_any` so that a keyword (`type = ..`) gets our
            // message instead of syn's "expected identifier".
            let name = input.call(Ident::parse_any).map_err(|e| {
                syn::Error::new(
                    e.span(),
                    format!("unexpected token in #[rc::cache(..)]: {KNOWN}"),
                )
            })?;
            let key = name.to_string();
            if seen.contains(&key) {
                return Err(syn::Error::new_spanned(
                    &name,
                    format!("duplicate rc::cache argument `{key}`"),
                ));
            }
            match key.as_str() {
                "key_prefix" => {
                    let value = parse_value(input, &name)?;
                    if let Expr::Lit(ExprLit { lit, .. }) = &value
                        && !matches!(lit, Lit::Str(_))
                    {
                        return Err(syn::Error::new_spanned(
                            lit,
                            "`key_prefix` must be a string, e.g. `key_prefix = \"v2\"`",
                        ));
                    }
                    args.key_prefix = Some(value);
                }
                "expire" => {
                    let value = parse_value(input, &name)?;
                    check_expire(&value)?;
                    args.expire = Some(value);
                }
                "include_self" => {
                    let value = parse_value(input, &name)?;
                    match value {
                        Expr::Lit(ExprLit {
                            lit: Lit::Bool(b), ..
                        }) => args.include_self = Some(b),
                        other => {
                            return Err(syn::Error::new_spanned(
                                other,
                                "`include_self` must be `true` or `false`",
                            ));
                        }
                    }
                }
                "cache" => {
                    args.cache = Some(parse_value(input, &name)?);
                }
                "skip" => {
                    if !input.peek(syn::token::Paren) {
                        return Err(syn::Error::new_spanned(
                            &name,
                            "`skip` takes a list of argument names: `skip(db, conn)`",
                        ));
                    }
                    let content;
                    syn::parenthesized!(content in input);
                    let names = Punctuated::<Ident, Token![,]>::parse_terminated_with(
                        &content,
                        Ident::parse_any,
                    )?;
                    for ident in names {
                        if args.skip.contains(&ident) {
                            return Err(syn::Error::new_spanned(
                                &ident,
                                format!("`{ident}` is already skipped"),
                            ));
                        }
                        args.skip.push(ident);
                    }
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        &name,
                        format!("unknown rc::cache argument `{key}`: {KNOWN}"),
                    ));
                }
            }
            seen.push(key);
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

/// Parses `= <expr>` after `name`.
fn parse_value(input: ParseStream<'_>, name: &Ident) -> syn::Result<Expr> {
    if !input.peek(Token![=]) {
        return Err(syn::Error::new_spanned(
            name,
            format!("`{name}` needs a value: `{name} = ..`"),
        ));
    }
    input.parse::<Token![=]>()?;
    input.parse::<Expr>()
}

/// `expire` is a whole number of seconds: an integer literal of at least 1,
/// or any other expression of type `u64` (a constant, `60 * 60`).
fn check_expire(value: &Expr) -> syn::Result<()> {
    const HELP: &str = "`expire` must be a whole number of seconds, e.g. `expire = 3600`";
    let lit = match value {
        Expr::Lit(ExprLit { lit, .. }) => lit,
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => {
            return Err(syn::Error::new_spanned(value, HELP));
        }
        _ => return Ok(()),
    };
    match lit {
        Lit::Int(int) => {
            let n: u64 = int
                .base10_parse()
                .map_err(|_| syn::Error::new(lit.span(), HELP))?;
            if !matches!(int.suffix(), "" | "u64") {
                return Err(syn::Error::new_spanned(
                    lit,
                    "`expire` is a number of seconds: write it without a type suffix",
                ));
            }
            if n == 0 {
                return Err(syn::Error::new_spanned(
                    lit,
                    "`expire` must be at least 1 second (Redis rejects an expiry of 0)",
                ));
            }
            Ok(())
        }
        _ => Err(syn::Error::new_spanned(lit, HELP)),
    }
}
