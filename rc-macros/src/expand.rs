//! Code generation: the cached wrapper, `invalidate_<fn>`,
//! `try_invalidate_<fn>` and `batch_<fn>`.
//!
//! Generated code names runtime items only through the facade
//! (`::rc::__private::..`, `::rc::Batch`, ..), so users depend on `rc` alone.
//! Locals introduced here use [`Span::mixed_site`] so they can neither shadow
//! nor be shadowed by the user's names.
//!
//! Whether a `Result`'s `Err` is cached is not decided here from the return
//! type's spelling: the generated code asks the compiler
//! (`(&Returns::<R>::new()).kind()`, through a local), which sees through
//! aliases.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, Block, Expr, FnArg, Ident, Item, ItemFn, Meta, Pat, PatType, Receiver, ReturnType,
    Signature, Token, Type, Visibility,
};

use crate::args::CacheArgs;
use crate::errors::Errors;
use crate::lifetimes::{self, Outlives};

/// Entry point: expands `#[rc::cache(attr)] item`.
///
/// Errors come back as `compile_error!`s next to the unchanged function and
/// stand-ins for its generated siblings, with their usual signatures, so that
/// one misuse of the attribute gives one error, not one more at every caller
/// of the function or of a sibling. Every error found is reported.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let parsed_item: Item = match syn::parse2(item.clone()) {
        Ok(i) => i,
        Err(e) => return with_item(e, item),
    };
    let func = match parsed_item {
        Item::Fn(f) => f,
        Item::Verbatim(v) => {
            let msg = "#[rc::cache] needs a function with a body";
            return with_item(syn::Error::new_spanned(&v, msg), item);
        }
        other => return with_item(not_a_function(&other), item),
    };
    let mut errors = Errors::default();
    let args = CacheArgs::parse(attr, &mut errors);
    let cached = Cached::new(args, func, &mut errors);
    match errors.finish() {
        None => cached.generate(),
        Some(e) => cached.fallback(e),
    }
}

fn with_item(err: syn::Error, item: TokenStream) -> TokenStream {
    let err = err.to_compile_error();
    quote!(#err #item)
}

/// The error for the attribute on something else than a function, spanned on
/// the item's keyword and name.
fn not_a_function(item: &Item) -> syn::Error {
    fn pair(a: &dyn ToTokens, b: &dyn ToTokens) -> TokenStream {
        let mut t = a.to_token_stream();
        b.to_tokens(&mut t);
        t
    }
    let head: TokenStream = match item {
        Item::Struct(i) => pair(&i.struct_token, &i.ident),
        Item::Enum(i) => pair(&i.enum_token, &i.ident),
        Item::Union(i) => pair(&i.union_token, &i.ident),
        Item::Const(i) => pair(&i.const_token, &i.ident),
        Item::Static(i) => pair(&i.static_token, &i.ident),
        Item::Type(i) => pair(&i.type_token, &i.ident),
        Item::Trait(i) => pair(&i.trait_token, &i.ident),
        Item::TraitAlias(i) => pair(&i.trait_token, &i.ident),
        Item::Mod(i) => pair(&i.mod_token, &i.ident),
        Item::Impl(i) => pair(&i.impl_token, &i.self_ty),
        Item::Use(i) => i.use_token.to_token_stream(),
        Item::ExternCrate(i) => pair(&i.extern_token, &i.crate_token),
        Item::ForeignMod(i) => i.abi.to_token_stream(),
        Item::Macro(i) => i.mac.path.to_token_stream(),
        other => other.to_token_stream(),
    };
    syn::Error::new_spanned(
        head,
        "#[rc::cache] can only be applied to a function or method",
    )
}

/// One argument of the decorated function.
struct Arg {
    /// The argument as written (attributes, `mut`, type).
    typed: PatType,
    /// Its name; `None` for a pattern, which is an error (reported), and
    /// then only stand-in siblings are generated.
    ident: Option<Ident>,
    /// Whether `skip(..)` leaves it out of the key.
    skipped: bool,
}

/// How a generated sibling's body is made.
#[derive(Clone, Copy, PartialEq)]
enum Body {
    /// The real thing.
    Real,
    /// `unreachable!()`: the attribute was misused, the error is reported,
    /// and the sibling only exists so that its callers still type-check.
    Stub,
}

/// Everything needed to generate the four functions.
struct Cached {
    args: CacheArgs,
    func: ItemFn,
    receiver: Option<Receiver>,
    inputs: Vec<Arg>,
    /// The return type (`()` when there is none).
    ret: Type,
    /// The return type contains `impl Trait` (an error): no `batch_<fn>`
    /// stand-in can name it.
    ret_impl_trait: bool,
    is_async: bool,
}

impl Cached {
    /// Checks the function against the arguments; every problem goes to
    /// `errors`, and what is returned can always generate stand-ins.
    fn new(args: CacheArgs, func: ItemFn, errors: &mut Errors) -> Self {
        let sig = &func.sig;
        if let Some(c) = &sig.constness {
            errors.push(syn::Error::new_spanned(
                c,
                "#[rc::cache] cannot be used on a `const fn`: a cached call talks to Redis at run time",
            ));
        }
        if let Some(v) = &sig.variadic {
            errors.push(syn::Error::new_spanned(
                v,
                "#[rc::cache] does not support variadic functions",
            ));
        }
        let mut ret_impl_trait = false;
        if let ReturnType::Type(_, ty) = &sig.output
            && contains_impl_trait(ty)
        {
            ret_impl_trait = true;
            errors.push(syn::Error::new_spanned(
                ty,
                "a cached function must return a concrete type (cached values are deserialized), not `impl Trait`",
            ));
        }

        let mut receiver = None;
        let mut inputs = Vec::new();
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(r) => receiver = Some(r.clone()),
                FnArg::Typed(t) => {
                    let ident = match &*t.pat {
                        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                            Some(p.ident.clone())
                        }
                        Pat::Wild(w) => {
                            errors.push(syn::Error::new_spanned(
                                w,
                                "#[rc::cache] needs a name for each argument (it is part of \
                                 the cache key): name it, and leave it out of the key with \
                                 `skip(<name>)` if it should not be part of it",
                            ));
                            None
                        }
                        other => {
                            errors.push(syn::Error::new_spanned(
                                other,
                                "#[rc::cache] needs a plain identifier for each argument \
                                 (it is part of the cache key); bind the argument to a name \
                                 and destructure it in the body",
                            ));
                            None
                        }
                    };
                    inputs.push(Arg {
                        typed: t.clone(),
                        ident,
                        skipped: false,
                    });
                }
            }
        }

        for s in &args.skip {
            if s == "self" {
                errors.push(syn::Error::new_spanned(
                    s,
                    "`self` is never part of the key unless `include_self = true`; no need to skip it",
                ));
                continue;
            }
            match inputs.iter_mut().find(|a| a.ident.as_ref() == Some(s)) {
                Some(a) => a.skipped = true,
                None => {
                    let names: Vec<String> = inputs
                        .iter()
                        .filter_map(|a| a.ident.as_ref().map(Ident::to_string))
                        .collect();
                    let known = if names.is_empty() && inputs.is_empty() {
                        "it has none".to_owned()
                    } else if names.is_empty() {
                        "it has no named argument".to_owned()
                    } else {
                        format!("its arguments are: {}", names.join(", "))
                    };
                    errors.push(syn::Error::new_spanned(
                        s,
                        format!(
                            "cannot skip `{s}`: `{}` has no argument named `{s}` ({known})",
                            sig.ident
                        ),
                    ));
                }
            }
        }

        if let Some(flag) = &args.include_self
            && flag.value
            && receiver.is_none()
        {
            errors.push(syn::Error::new_spanned(
                flag,
                format!(
                    "`include_self = true` needs a method: `{}` has no `self` argument",
                    sig.ident
                ),
            ));
        }

        if args.refreshes() {
            let swr = args.stale_while_revalidate.as_ref();
            if receiver.is_some() {
                errors.push(syn::Error::new_spanned(
                    swr,
                    "`stale_while_revalidate` needs a function without `self`: its background \
                     refresh runs the body on its own, with owned copies of the arguments \
                     (a cache-wide default still applies to methods, refreshed by one caller)",
                ));
            }
            for arg in &inputs {
                if let Type::Reference(r) = &*arg.typed.ty
                    && r.mutability.is_some()
                {
                    errors.push(syn::Error::new_spanned(
                        &arg.typed.ty,
                        "`stale_while_revalidate` cannot refresh with a `&mut` argument: \
                         its background refresh runs the body on an owned copy of each argument",
                    ));
                }
            }
        }

        let ret: Type = match &sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => (**ty).clone(),
        };
        let is_async = sig.asyncness.is_some();
        Cached {
            args,
            func,
            receiver,
            inputs,
            ret,
            ret_impl_trait,
            is_async,
        }
    }

    fn generate(&self) -> TokenStream {
        let wrapper = self.wrapper();
        let invalidate = self.invalidate_fn(false, Body::Real);
        let try_invalidate = self.invalidate_fn(true, Body::Real);
        let batch = self.batch_fn(Body::Real);
        quote!(#wrapper #invalidate #try_invalidate #batch)
    }

    /// After a misuse: the errors, the function unchanged, and stand-ins for
    /// the siblings with their usual signatures.
    fn fallback(&self, err: syn::Error) -> TokenStream {
        let err = err.to_compile_error();
        let func = &self.func;
        let invalidate = self.invalidate_fn(false, Body::Stub);
        let try_invalidate = self.invalidate_fn(true, Body::Stub);
        let batch = (!self.ret_impl_trait).then(|| self.batch_fn(Body::Stub));
        quote!(#err #func #invalidate #try_invalidate #batch)
    }

    fn name(&self) -> &Ident {
        &self.func.sig.ident
    }

    /// `{ let mut k = KeyBuilder::new(..); k.arg(..); ..; k.finish() }`.
    /// `self_expr` is how to reach `self` for `include_self`.
    fn key_expr(&self, self_expr: Option<TokenStream>) -> TokenStream {
        let k = Ident::new("__rc_k", Span::mixed_site());
        let prefix = match &self.args.key_prefix {
            Some(p) => quote!(::core::option::Option::Some(#p)),
            None => quote!(::core::option::Option::None),
        };
        let name = match &self.args.name {
            Some(n) => n.value(),
            None => self.name().to_string(),
        };
        let module = match &self.args.module {
            Some(m) => quote!(#m),
            None => quote!(::core::module_path!()),
        };
        let mut pushes = Vec::new();
        if self.args.include_self()
            && let Some(s) = self_expr
        {
            let span = self
                .receiver
                .as_ref()
                .map_or_else(Span::call_site, |r| r.self_token.span);
            pushes.push(self.push_arg(&k, span, s));
        }
        for arg in self.inputs.iter().filter(|a| !a.skipped) {
            let Some(ident) = &arg.ident else { continue };
            let span = ident.span();
            // `&*x` for `x: &T`, so that a missing `Display` names `T`, not `&T`.
            let value = if matches!(&*arg.typed.ty, Type::Reference(_)) {
                quote_spanned!(span=> &*#ident)
            } else {
                quote_spanned!(span=> &#ident)
            };
            pushes.push(self.push_arg(&k, span, value));
        }
        let new = quote!(::rc::__private::KeyBuilder::new(#prefix, #module, #name));
        if pushes.is_empty() {
            quote!(::rc::__private::KeyBuilder::finish(#new))
        } else {
            quote!({
                let mut #k = #new;
                #(#pushes)*
                ::rc::__private::KeyBuilder::finish(#k)
            })
        }
    }

    /// `k.arg(..)` for one key argument, or `k.python_arg(..)` with `python_args`.
    fn push_arg(&self, k: &Ident, span: Span, value: TokenStream) -> TokenStream {
        if self.args.python_args {
            quote_spanned!(span=> #k.python_arg(::rc::__private::python_arg(#value));)
        } else {
            quote_spanned!(span=> #k.arg(::rc::__private::key_arg(#value));)
        }
    }

    /// How `include_self` reaches a `Display` value from the receiver `r`.
    fn self_key_expr(r: &Receiver) -> TokenStream {
        let self_token = &r.self_token;
        let span = self_token.span;
        let by_value = r.reference.is_none()
            && (r.colon_token.is_none()
                || matches!(&*r.ty, Type::Path(p) if p.path.is_ident("Self")));
        if by_value {
            quote_spanned!(span=> &#self_token)
        } else {
            quote_spanned!(span=> &*#self_token)
        }
    }

    /// The per-function `Options`, as a `const fn` chain.
    fn options_expr(&self) -> TokenStream {
        let mut opts = quote!(::rc::__private::Options::new());
        if let Some(e) = &self.args.expire {
            opts.extend(quote!(.expire(#e)));
        }
        if let Some(b) = &self.args.single_flight {
            opts.extend(quote!(.single_flight(#b)));
        }
        if let Some(e) = &self.args.stale_while_revalidate {
            opts.extend(quote!(.stale_while_revalidate(#e)));
        }
        if let Some(e) = &self.args.stale_if_error {
            opts.extend(quote!(.stale_if_error(#e)));
        }
        if let Some(e) = &self.args.expire_jitter {
            opts.extend(quote!(.expire_jitter(#e)));
        }
        // The Rust path, whatever `module`/`name` say of the key: it labels metrics.
        let name = self.func.sig.ident.to_string();
        opts.extend(quote!(.function(::core::concat!(::core::module_path!(), "::", #name))));
        opts
    }

    /// Statements binding the cache, and the `Option<&Cache>` expression.
    fn cache_binding(&self) -> (TokenStream, TokenStream) {
        let cache = Ident::new("__rc_cache", Span::mixed_site());
        match &self.args.cache {
            Some(expr) => {
                let ty = if self.is_async {
                    quote!(::rc::AsyncCache)
                } else {
                    quote!(::rc::Cache)
                };
                let borrow = reference_to(expr);
                (
                    quote!(let #cache: &#ty = #borrow;),
                    quote!(::core::option::Option::Some(#cache)),
                )
            }
            None => {
                let default = if self.is_async {
                    quote!(::rc::__private::default_async_cache())
                } else {
                    quote!(::rc::__private::default_cache())
                };
                (quote!(let #cache = #default;), quote!(#cache.get()))
            }
        }
    }

    /// Where a return type that cannot be cached is reported: the last
    /// segment's name for a path (`Post`, `Result` in `io::Result<Post>`),
    /// else the type's first token; the call site without a return type.
    ///
    /// Everything that may fail on that account is spanned here, the check
    /// (`assert_cacheable`) and the entry point's own bound alike: rustc
    /// then reports it once per body, and identically for the wrapper and
    /// `batch_<fn>`, so once in all.
    fn ret_span(&self) -> Span {
        let ReturnType::Type(_, ty) = &self.func.sig.output else {
            return Span::call_site();
        };
        match &**ty {
            Type::Path(p) => p
                .path
                .segments
                .last()
                .map_or_else(|| ty.span(), |s| s.ident.span()),
            other => other.span(),
        }
    }

    /// `<kind>.<method>(args)`: the entry point for the return type, picked by the
    /// compiler from the resolved type (`Fallible` for any `Result`, aliases
    /// included, `Plain` otherwise). For an explicit return type, the kind
    /// goes through `assert_cacheable`, so that a type without
    /// `Serialize`/`Deserialize` is reported on the return type. All of it
    /// is spanned at [`Self::ret_span`], with no macro-local names, so that
    /// whichever part rustc blames is shown there.
    ///
    /// `args` are the entry point's arguments; `.await` is added for
    /// `call_async`. The parentheses and `.await` are spanned there too: the
    /// whole call's span is then the return type's, which is where rustc
    /// reports an unmet bound of the awaited future.
    fn invoke(&self, method: &str, args: TokenStream) -> TokenStream {
        let ret = &self.ret;
        let span = self.ret_span();
        // Through a local, not `(&Returns::<R>::new()).kind()`, which
        // clippy's `needless_borrow` flags (wrongly) in the user's crate.
        let returns = Ident::new("__rc_returns", span);
        let kind = quote_spanned!(span=> {
            #[allow(unused_imports)]
            use ::rc::__private::{ReturnsResult as _, ReturnsValue as _};
            let #returns = &::rc::__private::Returns::<#ret>::new();
            #returns.kind()
        });
        let kind = if matches!(self.func.sig.output, ReturnType::Type(..)) {
            quote_spanned!(span=> ::rc::__private::assert_cacheable(#kind))
        } else {
            kind
        };
        let method = Ident::new(method, span);
        let call = quote_spanned!(span=> #kind.#method(#args));
        if method.to_string().starts_with("call_async") {
            quote_spanned!(span=> #call.await)
        } else {
            call
        }
    }

    /// For a function that refreshes in the background: statements taking
    /// an owned copy of each borrowed argument (`ToOwned`), and the
    /// statements, put first in the body, that borrow them back under the
    /// arguments' names, so the body is `'static`.
    fn owned_args(&self) -> (TokenStream, TokenStream) {
        let (mut own, mut reborrow) = (TokenStream::new(), TokenStream::new());
        if !self.args.refreshes() {
            return (own, reborrow);
        }
        for (i, arg) in self.inputs.iter().enumerate() {
            let (Some(ident), Type::Reference(r)) = (&arg.ident, &*arg.typed.ty) else {
                continue;
            };
            let copy = format_ident!("__rc_own{}", i, span = Span::mixed_site());
            let mut ty = (*r.elem).clone();
            lifetimes::elide(&mut ty);
            let pat = &arg.typed.pat;
            own.extend(quote!(let #copy = ::std::borrow::ToOwned::to_owned(#ident);));
            reborrow.extend(quote!(
                let #pat: &#ty = ::core::borrow::Borrow::borrow(&#copy);
            ));
        }
        (own, reborrow)
    }

    /// The body as a closure (sync) or an `async move` block (async);
    /// `prelude` goes first in it.
    fn deferred_body(&self, prelude: TokenStream) -> TokenStream {
        let block: &Block = &self.func.block;
        let explicit_ret = matches!(self.func.sig.output, ReturnType::Type(..));
        let ret = &self.ret;
        if self.is_async {
            // An async block cannot name its output type; this unreachable
            // `return` tells inference what it is, so `?` in the body works
            // exactly as in the original `async fn`.
            let fake = if explicit_ret {
                let fake_ident = Ident::new("__rc_ret", Span::mixed_site());
                quote!(
                    #[allow(
                        unknown_lints,
                        unreachable_code,
                        clippy::diverging_sub_expression,
                        clippy::empty_loop,
                        clippy::let_unit_value,
                        clippy::needless_return,
                        clippy::unreachable
                    )]
                    if false {
                        let #fake_ident: #ret = loop {};
                        return #fake_ident;
                    }
                )
            } else {
                TokenStream::new()
            };
            // The statements are spliced (not nested as `{ #block }`) so that
            // `unused_braces` does not fire on the user's body.
            // Spanned on the function's `async`: what is wrong with the future
            // as a whole (not `Send`, for `batch_<fn>`) is reported there.
            let stmts = &block.stmts;
            let span = self
                .func
                .sig
                .asyncness
                .map_or_else(Span::call_site, |a| a.span);
            quote_spanned!(span=> async move { #prelude #fake #(#stmts)* })
        } else {
            let arrow = explicit_ret.then(|| quote!(-> #ret));
            if prelude.is_empty() {
                quote!(move || #arrow #block)
            } else {
                let stmts = &block.stmts;
                quote!(move || #arrow { #prelude #(#stmts)* })
            }
        }
    }

    /// The decorated function itself: same signature, cached body.
    fn wrapper(&self) -> TokenStream {
        let ItemFn {
            attrs, vis, sig, ..
        } = &self.func;
        let key_ident = Ident::new("__rc_key", Span::mixed_site());
        let key = self.key_expr(self.receiver.as_ref().map(Self::self_key_expr));
        let (cache_lets, cache) = self.cache_binding();
        let opts = self.options_expr();
        let (own, reborrow) = self.owned_args();
        let body = self.deferred_body(reborrow);
        let method = match (self.is_async, self.args.refreshes()) {
            (false, false) => "call",
            (false, true) => "call_refreshing",
            (true, false) => "call_async",
            (true, true) => "call_async_refreshing",
        };
        let invoke = self.invoke(method, quote!(#cache, #key_ident, #opts, #body));
        quote!(
            #(#attrs)*
            #vis #sig {
                let #key_ident: ::std::string::String = #key;
                #cache_lets
                #own
                #invoke
            }
        )
    }

    /// Lints about a signature allowed on the generated functions: their
    /// signatures mirror the user's, who sees these lints on the original already.
    fn signature_lints() -> TokenStream {
        quote!(
            clippy::too_many_arguments,
            clippy::ptr_arg,
            clippy::type_complexity,
            clippy::needless_pass_by_value,
            clippy::trivially_copy_pass_by_ref
        )
    }

    /// Attributes copied from the decorated function to the generated ones:
    /// `cfg`, `allow`, `deprecated`, and `doc(hidden)` (alone: other `doc`
    /// attributes are about the function, not its siblings).
    fn sibling_attrs(&self) -> Vec<TokenStream> {
        let mut out = Vec::new();
        let mut hidden = false;
        for a in &self.func.attrs {
            let p = a.path();
            if p.is_ident("cfg") || p.is_ident("allow") || p.is_ident("deprecated") {
                out.push(a.to_token_stream());
            } else if is_doc_hidden(a) && !hidden {
                hidden = true;
                out.push(quote!(#[doc(hidden)]));
            }
        }
        out
    }

    /// Lints allowed on a stand-in, whose body ignores its arguments.
    fn stub_lints(body: Body) -> TokenStream {
        match body {
            Body::Real => TokenStream::new(),
            Body::Stub => quote!(#[allow(unused, clippy::unused_self)]),
        }
    }

    /// `invalidate_<fn>` (`-> bool`), or `try_invalidate_<fn>` (`->
    /// rc::Result<bool>`) when `try_`: same arguments (a `&self` receiver for
    /// methods), deletes the cached value.
    fn invalidate_fn(&self, try_: bool, body: Body) -> TokenStream {
        let attrs = self.sibling_attrs();
        let lints = Self::signature_lints();
        let stub_lints = Self::stub_lints(body);
        let vis: &Visibility = &self.func.vis;
        let sig = &self.func.sig;
        let name = if try_ {
            format_ident!("try_invalidate_{}", sig.ident)
        } else {
            format_ident!("invalidate_{}", sig.ident)
        };
        let generics = &sig.generics;
        let where_clause = &sig.generics.where_clause;
        let receiver = self.receiver.as_ref().map(|r| {
            let self_token = &r.self_token;
            quote!(&#self_token,)
        });
        let params = self.inputs.iter().map(|a| {
            let mut typed = a.typed.clone();
            if let Pat::Ident(p) = &mut *typed.pat {
                p.mutability = None;
            }
            quote!(#typed)
        });
        let doc = if try_ {
            format!(
                " Deletes the value cached by `{0}` for these arguments: `Ok(true)` if one was \
                 deleted, `Ok(false)` if none was cached, `Err` if the cache failed (Redis \
                 unreachable, ..) or there is none to use (no `cache =` and no default \
                 installed).\n\n Generated by `#[rc::cache]`. Unlike `invalidate_{0}`, tells \
                 a failure from nothing cached.",
                sig.ident
            )
        } else {
            format!(
                " Deletes the value cached by `{}` for these arguments; `true` if one was \
                 deleted.\n\n Generated by `#[rc::cache]`. Redis errors are logged and \
                 counted, and give `false`.",
                sig.ident
            )
        };
        let output = if try_ {
            quote!(::rc::Result<bool>)
        } else {
            quote!(bool)
        };
        let asyncness = self.is_async.then(|| quote!(async));
        let block = match body {
            Body::Stub => quote!(::core::unreachable!()),
            Body::Real => {
                let unused = self
                    .inputs
                    .iter()
                    .filter(|a| a.skipped)
                    .filter_map(|a| a.ident.as_ref())
                    .map(|ident| quote!(let _ = &#ident;));
                let self_expr = self.receiver.as_ref().map(|r| {
                    let self_token = &r.self_token;
                    let span = self_token.span;
                    quote_spanned!(span=> &*#self_token)
                });
                let key = self.key_expr(self_expr);
                let key_ident = Ident::new("__rc_key", Span::mixed_site());
                let (cache_lets, cache) = self.cache_binding();
                let invoke = match (try_, self.is_async) {
                    (false, false) => quote!(::rc::__private::invalidate(#cache, #key_ident)),
                    (false, true) => {
                        quote!(::rc::__private::invalidate_async(#cache, #key_ident).await)
                    }
                    (true, false) => quote!(::rc::__private::try_invalidate(#cache, #key_ident)),
                    (true, true) => {
                        quote!(::rc::__private::try_invalidate_async(#cache, #key_ident).await)
                    }
                };
                quote!(
                    #(#unused)*
                    let #key_ident: ::std::string::String = #key;
                    #cache_lets
                    #invoke
                )
            }
        };
        quote!(
            #(#attrs)*
            #[doc = #doc]
            #[allow(#lints)]
            #stub_lints
            #vis #asyncness fn #name #generics(#receiver #(#params),*) -> #output #where_clause {
                #block
            }
        )
    }

    /// `batch_<fn>`: records the call in a batch and returns its promise.
    fn batch_fn(&self, body: Body) -> TokenStream {
        let attrs = self.sibling_attrs();
        let lints = Self::signature_lints();
        let stub_lints = Self::stub_lints(body);
        let vis: &Visibility = &self.func.vis;
        let sig: &Signature = &self.func.sig;
        let name = format_ident!("batch_{}", sig.ident);
        let unsafety = &sig.unsafety;
        let rc = lifetimes::batch_lifetime();

        let mut outlives = Outlives::default();
        let receiver = self.receiver.as_ref().map(|r| {
            let mut r = r.clone();
            if let Some((_, lifetime)) = &mut r.reference
                && lifetime.is_none()
            {
                *lifetime = Some(rc.clone());
            }
            lifetimes::rewrite_arg_type(&mut r.ty);
            if let Some((_, Some(l))) = &r.reference {
                outlives.collect(&syn::parse_quote!(&#l ()));
            }
            if r.colon_token.is_some() {
                outlives.collect(&r.ty);
            }
            quote!(#r,)
        });
        let params: Vec<TokenStream> = self
            .inputs
            .iter()
            .map(|a| {
                let mut typed = a.typed.clone();
                lifetimes::rewrite_arg_type(&mut typed.ty);
                outlives.collect(&typed.ty);
                quote!(#typed)
            })
            .collect();
        outlives.collect(&self.ret);
        let mut generics = sig.generics.clone();
        lifetimes::add_batch_bounds(&mut generics, &outlives, self.receiver.is_some());
        let where_clause = &generics.where_clause;

        let batch_name = if self
            .inputs
            .iter()
            .any(|a| a.ident.as_ref().is_some_and(|i| i == "batch"))
        {
            "__rc_batch"
        } else {
            "batch"
        };
        let batch = Ident::new(batch_name, Span::mixed_site());
        let batch_ty = if self.is_async {
            quote!(::rc::AsyncBatch<#rc>)
        } else {
            quote!(::rc::Batch<#rc>)
        };
        let ret = &self.ret;
        let block = match body {
            Body::Stub => quote!(::core::unreachable!()),
            Body::Real => {
                let key_ident = Ident::new("__rc_key", Span::mixed_site());
                let key = self.key_expr(self.receiver.as_ref().map(Self::self_key_expr));
                let opts = self.options_expr();
                let deferred = self.deferred_body(TokenStream::new());
                let method = if self.is_async {
                    "batch_async"
                } else {
                    "batch"
                };
                let record = self.invoke(method, quote!(#batch, #key_ident, #opts, #deferred));
                quote!(
                    let #key_ident: ::std::string::String = #key;
                    #record
                )
            }
        };
        let doc = format!(
            " Records a call of `{}` in `batch` and returns its promise, resolved when the \
             batch runs: one multi-get for all recorded calls, then the misses are computed \
             and stored.\n\n Generated by `#[rc::cache]`. The batch's own cache is used.",
            sig.ident
        );
        quote!(
            #(#attrs)*
            #[doc = #doc]
            #[allow(#lints)]
            #stub_lints
            #vis #unsafety fn #name #generics(
                #receiver
                #batch: &#batch_ty,
                #(#params),*
            ) -> ::rc::Promise<#ret> #where_clause {
                #block
            }
        )
    }
}

/// Whether `attr` is `#[doc(hidden)]` (possibly among other `doc(..)` items).
fn is_doc_hidden(attr: &Attribute) -> bool {
    let Meta::List(list) = &attr.meta else {
        return false;
    };
    list.path.is_ident("doc")
        && list
            .parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
            .is_ok_and(|items| {
                items
                    .iter()
                    .any(|m| matches!(m, Meta::Path(p) if p.is_ident("hidden")))
            })
}

/// `&EXPR` with the `&` spanned on the expression, so that a type mismatch is
/// reported on the user's expression. Parenthesized when precedence needs it.
fn reference_to(expr: &Expr) -> TokenStream {
    let span = expr
        .to_token_stream()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span());
    let needs_parens = !matches!(
        expr,
        Expr::Path(_)
            | Expr::Field(_)
            | Expr::Call(_)
            | Expr::MethodCall(_)
            | Expr::Index(_)
            | Expr::Paren(_)
            | Expr::Macro(_)
            | Expr::Block(_)
            | Expr::Tuple(_)
            | Expr::Array(_)
            | Expr::Lit(_)
            | Expr::Reference(_)
            | Expr::Unary(_)
            | Expr::Try(_)
            | Expr::Await(_)
    );
    if needs_parens {
        quote_spanned!(span=> &(#expr))
    } else {
        quote_spanned!(span=> &#expr)
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    struct Find(bool);
    impl<'ast> syn::visit::Visit<'ast> for Find {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut f = Find(false);
    syn::visit::Visit::visit_type(&mut f, ty);
    f.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expands and returns the code as text, for inspection and checks.
    fn expand_str(attr: &str, item: &str) -> String {
        expand(attr.parse().unwrap(), item.parse().unwrap()).to_string()
    }

    #[test]
    fn expansion_shape() {
        // `cargo test -p rc-macros --lib -- --nocapture expansion_shape` prints it.
        let out = expand_str(
            "expire = 3600, key_prefix = \"v2\"",
            "pub fn load(name: &str, offset: u32) -> Post { body(name, offset) }",
        );
        println!("{out}");
        for want in [
            ":: rc :: __private :: KeyBuilder :: new (:: core :: option :: Option :: Some (\"v2\") , :: core :: module_path ! () , \"load\")",
            "key_arg (& * name)",
            "key_arg (& offset)",
            ":: rc :: __private :: assert_cacheable ({ # [allow (unused_imports)] use :: rc :: __private :: { ReturnsResult as _ , ReturnsValue as _ } ; let __rc_returns = & :: rc :: __private :: Returns :: < Post > :: new () ; __rc_returns . kind () }) . call (__rc_cache . get () , __rc_key , :: rc :: __private :: Options :: new () . expire (3600) . function (:: core :: concat ! (:: core :: module_path ! () , \"::\" , \"load\")) , move || -> Post { body (name , offset) })",
            "pub fn invalidate_load (name : & str , offset : u32) -> bool",
            ":: rc :: __private :: invalidate (__rc_cache . get () , __rc_key)",
            "pub fn try_invalidate_load (name : & str , offset : u32) -> :: rc :: Result < bool >",
            ":: rc :: __private :: try_invalidate (__rc_cache . get () , __rc_key)",
            "pub fn batch_load < '__rc > (batch : & :: rc :: Batch < '__rc > , name : & '__rc str , offset : u32) -> :: rc :: Promise < Post >",
        ] {
            assert!(out.contains(want), "missing `{want}` in {out}");
        }

        let out = expand_str(
            "include_self = true, cache = self.cache",
            "async fn get(&self, id: u32) -> Result<Vec<u8>, E> { body() }",
        );
        println!("{out}");
        for want in [
            "key_arg (& * self)",
            "let __rc_cache : & :: rc :: AsyncCache = & self . cache ;",
            "Returns :: < Result < Vec < u8 > , E > > :: new ()",
            ". call_async (:: core :: option :: Option :: Some (__rc_cache) , __rc_key , :: rc :: __private :: Options :: new () . function (:: core :: concat ! (:: core :: module_path ! () , \"::\" , \"get\")) , async move {",
            "}) . await",
            "async fn invalidate_get (& self , id : u32) -> bool",
            ":: rc :: __private :: invalidate_async (:: core :: option :: Option :: Some (__rc_cache) , __rc_key) . await",
            "async fn try_invalidate_get (& self , id : u32) -> :: rc :: Result < bool >",
            ":: rc :: __private :: try_invalidate_async (:: core :: option :: Option :: Some (__rc_cache) , __rc_key) . await",
            "fn batch_get < '__rc > (& '__rc self , batch : & :: rc :: AsyncBatch < '__rc > , id : u32)",
            ". batch_async (batch , __rc_key , :: rc :: __private :: Options :: new () . function (:: core :: concat ! (:: core :: module_path ! () , \"::\" , \"get\")) , async move {",
        ] {
            assert!(out.contains(want), "missing `{want}` in {out}");
        }
        // Whether `Err` is cached is the compiler's call, not the spelling's.
        assert!(!out.contains("_result"), "{out}");

        // `python_args`: every key argument through `PythonArg`, `self` included.
        let out = expand_str(
            "python_args, include_self = true, module = \"blog.models\"",
            "fn get(&self, id: i64, live: bool) -> u32 { body() }",
        );
        for want in [
            "KeyBuilder :: new (:: core :: option :: Option :: None , \"blog.models\" , \"get\")",
            "__rc_k . python_arg (:: rc :: __private :: python_arg (& * self))",
            "__rc_k . python_arg (:: rc :: __private :: python_arg (& id))",
            "__rc_k . python_arg (:: rc :: __private :: python_arg (& live))",
        ] {
            assert!(out.contains(want), "missing `{want}` in {out}");
        }
        assert!(!out.contains("key_arg"), "{out}");

        // No return type: `()`, no check needed.
        let out = expand_str("", "fn touch(n: u8) { body(n) }");
        for want in [
            "fn touch (n : u8) { let __rc_key",
            "{ # [allow (unused_imports)] use :: rc :: __private :: { ReturnsResult as _ , ReturnsValue as _ } ; let __rc_returns = & :: rc :: __private :: Returns :: < () > :: new () ; __rc_returns . kind () } . call (__rc_cache . get () , __rc_key , :: rc :: __private :: Options :: new () . function (:: core :: concat ! (:: core :: module_path ! () , \"::\" , \"touch\")) , move || { body (n) })",
            "-> :: rc :: Promise < () >",
        ] {
            assert!(out.contains(want), "missing `{want}` in {out}");
        }
        assert!(!out.contains("assert_cacheable"), "{out}");
    }

    #[test]
    fn batch_signature_rewrites_lifetimes() {
        let out = expand_str(
            "",
            "fn f<'a, T>(&self, a: &'a str, b: &str, c: Foo<'_>, d: T, e: impl X, g: fn(&str), h: &dyn Fn(&str), i: Box<U>) -> Out<V> {}",
        );
        let batch = &out[out.find("fn batch_f").unwrap()..];
        let sig = &batch[..batch.find("__rc_key").unwrap()];
        for want in [
            "< '__rc , 'a : '__rc , T : '__rc >",
            "& '__rc self",
            "a : & 'a str",
            "b : & '__rc str",
            "c : Foo < '__rc >",
            "e : impl X + '__rc",
            "g : fn (& str)",
            "h : & '__rc dyn Fn (& str)",
            "Self : '__rc",
            "U : '__rc",
            "V : '__rc",
        ] {
            assert!(sig.contains(want), "missing `{want}` in {sig}");
        }
        assert!(!sig.contains("Out : '__rc"), "{sig}");
    }

    #[test]
    fn batch_bounds_go_where_the_user_put_them() {
        let out = expand_str(
            "",
            "fn f<'a, 'b, T, U: X>(a: &'a T, b: &'b U) -> u8 where T: Y, 'b: 'a {}",
        );
        let batch = &out[out.find("fn batch_f").unwrap()..];
        let sig = &batch[..batch.find("__rc_key").unwrap()];
        for want in [
            "< '__rc , 'a : '__rc , 'b , T , U : X + '__rc >",
            "where T : Y + '__rc , 'b : 'a + '__rc",
        ] {
            assert!(sig.contains(want), "missing `{want}` in {sig}");
        }
    }

    #[test]
    fn errors_keep_the_item_and_its_siblings() {
        let out = expand_str("nope = 1", "pub fn f(id: u32) -> u32 { id }");
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        for want in [
            "pub fn f (id : u32) -> u32 { id }",
            "pub fn invalidate_f (id : u32) -> bool { :: core :: unreachable ! () }",
            "pub fn try_invalidate_f (id : u32) -> :: rc :: Result < bool > { :: core :: unreachable ! () }",
            "pub fn batch_f < '__rc > (batch : & :: rc :: Batch < '__rc > , id : u32) -> :: rc :: Promise < u32 > { :: core :: unreachable ! () }",
        ] {
            assert!(out.contains(want), "missing `{want}` in {out}");
        }
        assert!(!out.contains("__private"), "{out}");

        // A pattern argument stays a pattern in the stand-ins.
        let out = expand_str("", "async fn g((a, b): (u8, u8)) -> u8 { a + b }");
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        for want in [
            "async fn g ((a , b) : (u8 , u8)) -> u8 { a + b }",
            "async fn invalidate_g ((a , b) : (u8 , u8)) -> bool",
            "async fn try_invalidate_g ((a , b) : (u8 , u8)) -> :: rc :: Result < bool >",
            "fn batch_g < '__rc > (batch : & :: rc :: AsyncBatch < '__rc > , (a , b) : (u8 , u8)) -> :: rc :: Promise < u8 >",
        ] {
            assert!(out.contains(want), "missing `{want}` in {out}");
        }

        // `impl Trait` cannot be named in a stand-in `batch_<fn>`.
        let out = expand_str("", "fn h() -> impl X { 1 }");
        assert!(out.contains("fn invalidate_h"), "{out}");
        assert!(!out.contains("fn batch_h"), "{out}");

        // Not a function: the item alone.
        let out = expand_str("", "struct S;");
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(!out.contains("fn "), "{out}");
    }

    #[test]
    fn every_error_is_reported() {
        let count =
            |attr: &str, item: &str| expand_str(attr, item).matches("compile_error").count();
        let f = "fn f(id: u32) -> u32 { id }";
        assert_eq!(count("nope = 1, expire = 0", f), 2);
        assert_eq!(
            count("expire = \"1h\", key_prefix = 2, include_self = 1", f),
            3
        );
        assert_eq!(
            count("skip(conn), skip(id)", f),
            2,
            "unknown skip + duplicate"
        );
        assert_eq!(count("skip(id, id), skip(x)", f), 2);
        // A syntax error in one argument: the others are still checked.
        assert_eq!(count("expire = 1 +, nope", f), 2);
        assert_eq!(count("skip(a b), expire = 0", f), 2);
        assert_eq!(count("expire = 1 key_prefix = \"v\", nope = 2", f), 2);
        assert_eq!(count(", expire = 0", f), 2);
        // Attribute and function errors together.
        assert_eq!(
            count(
                "include_self = true, skip(zz)",
                "const fn f((a, b): (u8, u8), _: u8) -> u8 { a }"
            ),
            5
        );
        assert_eq!(count("expire = 60, key_prefix = \"v2\", skip(id)", f), 0);
    }

    #[test]
    fn doc_hidden_is_parsed() {
        // The attributes of `invalidate_f`: between the wrapper's body and
        // the generated doc.
        let sibling_attrs = |attrs: &str| {
            let out = expand_str("", &format!("{attrs}\nfn f() -> u8 {{ 1 }}"));
            let before = &out[..out.find("# [doc = \" Deletes").unwrap()];
            before[before.rfind('}').unwrap() + 1..].trim().to_owned()
        };
        assert_eq!(sibling_attrs("#[doc(hidden)]"), "# [doc (hidden)]");
        assert_eq!(
            sibling_attrs("/// Docs.\n#[doc(alias = \"g\", hidden)]\n#[allow(dead_code)]"),
            "# [doc (hidden)] # [allow (dead_code)]"
        );
        assert_eq!(sibling_attrs("/// This is hidden from no one."), "");
        assert_eq!(sibling_attrs("#[doc = \"hidden\"]"), "");
        assert_eq!(sibling_attrs("#[doc(alias = \"hidden\")]"), "");
    }
}
