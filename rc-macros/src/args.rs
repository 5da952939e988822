//! Parsing of the attribute's own arguments: `#[rc::cache(key_prefix = "..",
//! expire = 3600, include_self = true, python_args, cache = EXPR, skip(a, b))]`.
//!
//! Every misuse is a [`syn::Error`] spanned on the offending token, and all
//! of them are reported.

use proc_macro2::{TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Ident, Lit, LitBool, LitStr, Token};

use crate::errors::Errors;

/// The parsed arguments of one `#[rc::cache(...)]`.
#[derive(Default)]
pub(crate) struct CacheArgs {
    /// `key_prefix = "v2"` (or a `&str` constant): put first in every key.
    pub(crate) key_prefix: Option<Expr>,
    /// `expire = 3600` (or a `u64` constant): expiry in seconds.
    pub(crate) expire: Option<Expr>,
    /// `include_self = true`: put `self` (by `Display`) first in the key.
    pub(crate) include_self: Option<LitBool>,
    /// `single_flight = false`: concurrent misses of one key each compute.
    pub(crate) single_flight: Option<LitBool>,
    /// `stale_while_revalidate = 30` (seconds): serve a value this long past
    /// its expiry while it is refreshed in the background.
    pub(crate) stale_while_revalidate: Option<Expr>,
    /// `stale_if_error = 3600` (seconds): a value this long past its expiry
    /// stands in for an `Err`.
    pub(crate) stale_if_error: Option<Expr>,
    /// `expire_jitter = 0.1`: shorten each stored expiry by up to this fraction.
    pub(crate) expire_jitter: Option<Expr>,
    /// `module = "blog.models"`: the module part of the key, instead of the
    /// Rust module path (to share the entries of a Python rc function).
    pub(crate) module: Option<LitStr>,
    /// `name = "get_post"`: the function part of the key, instead of its name.
    pub(crate) name: Option<LitStr>,
    /// `python_args`: key arguments written as Python rc writes them
    /// (`::rc::PythonArg`), not by `Display` with escapes.
    pub(crate) python_args: bool,
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

    /// Whether the function refreshes stale values in the background: it
    /// names `stale_while_revalidate`, other than `= 0`.
    pub(crate) fn refreshes(&self) -> bool {
        match &self.stale_while_revalidate {
            Some(Expr::Lit(ExprLit {
                lit: Lit::Int(i), ..
            })) => i.base10_digits() != "0",
            Some(_) => true,
            None => false,
        }
    }
}

const KNOWN: &str = "expected one of `key_prefix = \"..\"`, `expire = <seconds>`, \
                     `include_self = <bool>`, `single_flight = <bool>`, \
                     `stale_while_revalidate = <seconds>`, `stale_if_error = <seconds>`, \
                     `expire_jitter = <fraction>`, `module = \"..\"`, \
                     `name = \"..\"`, `python_args`, `cache = <expr>`, `skip(<arg>, ..)`";

impl CacheArgs {
    /// Parses the attribute's arguments. Every error is recorded in `errors`
    /// and parsing goes on at the next argument, so that all mistakes of one
    /// attribute are reported together; what parsed is kept.
    pub(crate) fn parse(attr: TokenStream, errors: &mut Errors) -> CacheArgs {
        let mut args = CacheArgs::default();
        let mut errs = Errors::default();
        let parser = |input: ParseStream<'_>| {
            // The names already seen, to reject duplicates.
            let mut seen: Vec<String> = Vec::new();
            while !input.is_empty() {
                if let Err(e) = args.parse_one(input, &mut seen, &mut errs) {
                    errs.push(e);
                    skip_to_comma(input);
                }
                if input.is_empty() {
                    break;
                }
                if let Err(e) = input.parse::<Token![,]>() {
                    errs.push(e);
                    skip_to_comma(input);
                    let _ = input.parse::<Option<Token![,]>>();
                }
            }
            Ok(())
        };
        let result = parser.parse2(attr);
        // After a recovered error syn may also complain about the tokens
        // left in a group the failed parse was in: a consequence, not news.
        if let Err(e) = result
            && errs.is_empty()
        {
            errs.push(e);
        }
        errors.append(errs);
        args
    }

    /// Parses one `name = value` or `skip(..)`. An `Err` leaves the rest of
    /// the argument unparsed; mistakes in a value that parsed are pushed to
    /// `errors` instead.
    fn parse_one(
        &mut self,
        input: ParseStream<'_>,
        seen: &mut Vec<String>,
        errors: &mut Errors,
    ) -> syn::Result<()> {
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
                    errors.push(syn::Error::new_spanned(
                        lit,
                        "`key_prefix` must be a string, e.g. `key_prefix = \"v2\"`",
                    ));
                } else {
                    self.key_prefix = Some(value);
                }
            }
            "expire" => {
                let value = parse_value(input, &name)?;
                match check_secs(&value, "expire", 1) {
                    Ok(()) => self.expire = Some(value),
                    Err(e) => errors.push(e),
                }
            }
            "stale_while_revalidate" | "stale_if_error" => {
                let value = parse_value(input, &name)?;
                match check_secs(&value, &key, 0) {
                    Ok(()) if key == "stale_if_error" => self.stale_if_error = Some(value),
                    Ok(()) => self.stale_while_revalidate = Some(value),
                    Err(e) => errors.push(e),
                }
            }
            "expire_jitter" => {
                let value = parse_value(input, &name)?;
                match check_fraction(&value) {
                    Ok(()) => self.expire_jitter = Some(value),
                    Err(e) => errors.push(e),
                }
            }
            "include_self" => match parse_value(input, &name)? {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }) => self.include_self = Some(b),
                other => errors.push(syn::Error::new_spanned(
                    other,
                    "`include_self` must be `true` or `false`",
                )),
            },
            "single_flight" => match parse_value(input, &name)? {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }) => self.single_flight = Some(b),
                other => errors.push(syn::Error::new_spanned(
                    other,
                    "`single_flight` must be `true` or `false`",
                )),
            },
            "module" | "name" => match parse_value(input, &name)? {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(text),
                    ..
                }) if !text.value().is_empty() && !text.value().contains(' ') => {
                    if key == "module" {
                        self.module = Some(text);
                    } else {
                        self.name = Some(text);
                    }
                }
                other => errors.push(syn::Error::new_spanned(
                    other,
                    format!(
                        "`{key}` must be a non-empty string literal without spaces, \
                         e.g. `{key} = \"{}\"`",
                        if key == "module" {
                            "blog.models"
                        } else {
                            "get_post"
                        }
                    ),
                )),
            },
            "python_args" => {
                if input.peek(Token![=]) || input.peek(syn::token::Paren) {
                    return Err(syn::Error::new_spanned(
                        &name,
                        "`python_args` takes no value: write `#[rc::cache(python_args)]`",
                    ));
                }
                self.python_args = true;
            }
            "cache" => {
                self.cache = Some(parse_value(input, &name)?);
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
                    if self.skip.contains(&ident) {
                        errors.push(syn::Error::new_spanned(
                            &ident,
                            format!("`{ident}` is already skipped"),
                        ));
                    } else {
                        self.skip.push(ident);
                    }
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
        Ok(())
    }
}

/// Skips the rest of a malformed argument: up to the next top-level comma
/// (left in place) or the end.
fn skip_to_comma(input: ParseStream<'_>) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            if matches!(&tt, TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    });
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

/// `expire` and the stale windows are whole numbers of seconds: an
/// integer literal of at least `min`, or any other expression of type `u64`
/// (a constant, `60 * 60`).
fn check_secs(value: &Expr, name: &str, min: u64) -> syn::Result<()> {
    let help = format!("`{name}` must be a whole number of seconds, e.g. `{name} = 3600`");
    let lit = match value {
        Expr::Lit(ExprLit { lit, .. }) => lit,
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => {
            return Err(syn::Error::new_spanned(value, help));
        }
        _ => return Ok(()),
    };
    match lit {
        Lit::Int(int) => {
            let n: u64 = int
                .base10_parse()
                .map_err(|_| syn::Error::new(lit.span(), &help))?;
            if !matches!(int.suffix(), "" | "u64") {
                return Err(syn::Error::new_spanned(
                    lit,
                    format!("`{name}` is a number of seconds: write it without a type suffix"),
                ));
            }
            if n < min {
                return Err(syn::Error::new_spanned(
                    lit,
                    format!("`{name}` must be at least 1 second (Redis rejects an expiry of 0)"),
                ));
            }
            Ok(())
        }
        _ => Err(syn::Error::new_spanned(lit, help)),
    }
}

/// `expire_jitter` is a fraction in `[0, 1)`: a float literal, or any other
/// expression of type `f64` (checked when the call runs).
fn check_fraction(value: &Expr) -> syn::Result<()> {
    const HELP: &str = "`expire_jitter` must be a fraction in [0, 1), e.g. `expire_jitter = 0.1`";
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) if f.suffix().is_empty() || f.suffix() == "f64" => match f.base10_parse::<f64>() {
            Ok(x) if (0.0..1.0).contains(&x) => Ok(()),
            _ => Err(syn::Error::new_spanned(value, HELP)),
        },
        Expr::Lit(_) | Expr::Unary(_) => Err(syn::Error::new_spanned(value, HELP)),
        _ => Ok(()),
    }
}
